//! The seed's server programs at their old URLs, answering in plain text as the seed did, for pages written
//! against it. Same operations as the JSON API, without the seed's bugs (it echoed the configured password
//! back on a wrong one).
//!
//! Formats (`text/plain; charset=utf-8`):
//!
//! - `GET /getTrActivites.php` (sic): fields joined by `:`, no trailing separator: the workspace name, the
//!   literal `workspacefriendlyname`, then `ActivitySid:ActivityName` for every activity in the API's order:
//!   `Support:workspacefriendlyname:WA…:Offline:WA…:Available:WA…:Unavailable`. A `:` inside a name is
//!   sent as a space so the list still splits. On failure: `0`.
//! - `GET /generateTrToken.php?clientid=IDENTITY&tokenPassword=PASSWORD`: the worker token alone, or `0` on
//!   any failure (wrong password, unknown identity, rate limit with status 429 and `Retry-After`).
//! - `GET /conferenceEndFn.php?conferenceName=CF…|NAME[&token=…]`: `Ended conference CF….` or
//!   `Conference not found.`; `0` without a name.
//! - `GET /taskReservationTaskFix.php?taskSid=WT…[&token=…]`: `Task assignmentStatus: STATUS.` and, when it was
//!   wrapping, a second line `Task assignmentStatus set to: completed.`; `0` without a SID or on failure.
//!
//! The last two did not check anything in the seed: any page, any stranger could end anyone's call or read
//! any task. Here they act for a worker, who must show the token `generateTrToken.php` issued, as
//! `Authorization: Bearer …` or as a `token` query parameter (what an old page can add most easily), and may
//! only act on their own conference or task, as in the JSON API. Without a token: `0` with status 401.
//!
//! Being GETs, they could be fired by any web page a worker opens. Every legacy action therefore also
//! refuses (403, `0`) a request the browser marks as coming from another site (`Sec-Fetch-Site:
//! cross-site` or `same-site`, or an `Origin` other than this server's).
//!
//! `AppConfig::legacy_open` restores the seed's behaviour without a token, for an unmodified old page on a
//! trusted network. It is an explicit opt-in (`TRWORKER_LEGACY_OPEN=1`), the server logs a warning at start,
//! and the same-site check still applies.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use twilio::models::TaskAssignmentStatus;

use super::auth::{self, ClientIp};
use super::{api, snapshot, wrapup, AppError, AppState};

/// The legacy routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/getTrActivites.php", get(activities))
        .route("/generateTrToken.php", get(generate_token))
        .route("/conferenceEndFn.php", get(conference_end))
        .route("/taskReservationTaskFix.php", get(task_fix))
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// A legacy program's failure. The seed answered `0` whatever went wrong; the status code says what.
struct Zero(StatusCode);

impl From<StatusCode> for Zero {
    fn from(status: StatusCode) -> Self {
        Zero(status)
    }
}

impl From<AppError> for Zero {
    fn from(error: AppError) -> Self {
        Zero(error.status())
    }
}

impl IntoResponse for Zero {
    fn into_response(self) -> Response {
        text(self.0, "0".to_owned())
    }
}

/// The seed's activity list line.
pub(crate) fn activities_line(workspace: &snapshot::WorkspaceView) -> String {
    let clean = |s: &str| s.replace(':', " ");
    let mut fields = vec![clean(&workspace.friendly_name), "workspacefriendlyname".to_owned()];
    for activity in &workspace.activities {
        fields.push(clean(&activity.sid));
        fields.push(clean(&activity.friendly_name));
    }
    fields.join(":")
}

async fn activities(State(state): State<AppState>) -> Result<Response, Zero> {
    let workspace = snapshot::workspace(&state)
        .await
        .inspect_err(|error| tracing::warn!(%error, "getTrActivites.php failed"))?;
    Ok(text(StatusCode::OK, activities_line(&workspace)))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    clientid: String,
    #[serde(default, rename = "tokenPassword")]
    token_password: String,
}

async fn generate_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<TokenQuery>,
) -> Response {
    match api::sign_in(&state, ip, &query.clientid, &query.token_password).await {
        Ok(signed_in) => text(StatusCode::OK, signed_in.token),
        Err(error) => {
            let mut response = Zero(error.status()).into_response();
            if let AppError::RateLimited { retry_after } = error {
                if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            response
        }
    }
}

/// The worker a legacy request acts for: `Ok(Some)` with a valid token, `Ok(None)` without one when the
/// server is configured open, else the status to answer `0` with.
fn legacy_worker(
    state: &AppState,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Option<String>, StatusCode> {
    if from_another_site(headers, &state.config().public_url) {
        return Err(StatusCode::FORBIDDEN);
    }
    let token = auth::bearer_token(headers).or(token.filter(|t| !t.is_empty()));
    match token {
        Some(token) => auth::verify(state, token).map(|b| Some(b.worker_sid)).map_err(|e| e.status()),
        None if state.config().legacy_open => Ok(None),
        None => Err(StatusCode::UNAUTHORIZED),
    }
}

/// Whether the browser says the request comes from a page of another site. Browsers send
/// `Sec-Fetch-Site` with every request (Chromium since 76, Firefox 90, Safari 16.4) and `Origin` with
/// cross-origin `fetch`es; a client that sends neither (curl, an old browser) is not a site at all. An
/// `Origin` is this server's when it names the request's `Host` or the configured public URL.
fn from_another_site(headers: &HeaderMap, public_url: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if matches!(header("sec-fetch-site"), Some("cross-site" | "same-site")) {
        return true;
    }
    match (header("origin"), header("host")) {
        (Some("null"), _) => true,
        (Some(origin), host) => {
            let ours = host.is_some_and(|host| authority(origin).eq_ignore_ascii_case(host))
                || origin.eq_ignore_ascii_case(public_url.trim_end_matches('/'));
            !ours
        }
        (None, _) => false,
    }
}

/// The query of the original's two GET URLs: the conference or the task it names, and the worker's token
/// where the request carries no `Authorization`.
#[derive(Deserialize)]
struct LegacyQuery {
    #[serde(default, rename = "conferenceName")]
    conference_name: String,
    #[serde(default, rename = "taskSid")]
    task_sid: String,
    #[serde(default)]
    token: Option<String>,
}

impl LegacyQuery {
    /// The worker the call acts for ([`legacy_worker`]) once its named parameter (`value`) is there; the
    /// status to answer otherwise (400 without it).
    fn worker(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        value: &str,
    ) -> Result<Option<String>, StatusCode> {
        if value.is_empty() {
            return Err(StatusCode::BAD_REQUEST);
        }
        legacy_worker(state, headers, self.token.as_deref())
    }
}

async fn conference_end(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LegacyQuery>,
) -> Result<Response, Zero> {
    let worker = query.worker(&state, &headers, &query.conference_name)?;
    let body = match api::end_conference_of(&state, worker.as_deref(), &query.conference_name).await {
        Ok(conference) => format!("Ended conference {}.\n", conference.sid),
        Err(AppError::NotFound(_)) => "Conference not found.\n".to_owned(),
        Err(error) => return Err(error.into()),
    };
    Ok(text(StatusCode::OK, body))
}

async fn task_fix(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LegacyQuery>,
) -> Result<Response, Zero> {
    let worker = query.worker(&state, &headers, &query.task_sid)?;
    if !twilio::models::is_sid("WT", &query.task_sid) {
        return Err(Zero(StatusCode::BAD_REQUEST));
    }
    if let Some(worker) = &worker {
        api::own_task(&state, worker, &query.task_sid).await?;
    }
    let before = wrapup::read_task(&state, &query.task_sid).await?;
    let status = before.assignment_status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let mut body = format!("Task assignmentStatus: {status}.\n");
    if before.assignment_status == Some(TaskAssignmentStatus::Wrapping) {
        wrapup::complete_if_wrapping(&state, before).await?;
        body.push_str("Task assignmentStatus set to: completed.\n");
    }
    Ok(text(StatusCode::OK, body))
}

/// `host[:port]` of an origin `scheme://host[:port]`.
fn authority(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_other_sites_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let public = "https://app.example.com";
        assert!(!from_another_site(&headers(&[]), public), "curl");
        assert!(!from_another_site(&headers(&[("sec-fetch-site", "same-origin")]), public));
        assert!(!from_another_site(&headers(&[("sec-fetch-site", "none")]), public), "typed in the bar");
        assert!(from_another_site(&headers(&[("sec-fetch-site", "cross-site")]), public));
        assert!(from_another_site(&headers(&[("sec-fetch-site", "same-site")]), public));
        let same = [("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")];
        assert!(!from_another_site(&headers(&same), public));
        assert!(!from_another_site(&headers(&[("origin", "https://app.example.com")]), public));
        let other = [("origin", "https://evil.example"), ("host", "127.0.0.1:8080")];
        assert!(from_another_site(&headers(&other), public));
        assert!(from_another_site(&headers(&[("origin", "null")]), public), "sandboxed frames");
    }
    use crate::app::snapshot::{ActivityView, WorkspaceView};

    #[test]
    fn the_activity_line_is_colon_separated_without_a_trailing_colon() {
        let workspace = WorkspaceView {
            sid: "WS1".into(),
            friendly_name: "Support: EU".into(),
            activities: vec![
                ActivityView { sid: "WA1".into(), friendly_name: "Offline".into(), available: false },
                ActivityView { sid: "WA2".into(), friendly_name: "Available".into(), available: true },
            ],
        };
        assert_eq!(
            activities_line(&workspace),
            "Support  EU:workspacefriendlyname:WA1:Offline:WA2:Available"
        );
    }
}
