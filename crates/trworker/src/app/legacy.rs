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
//! - `GET /conferenceEndFn.php?conferenceName=CF…|NAME`: `Ended conference CF….` or
//!   `Conference not found.`; `0` without a name.
//! - `GET /taskReservationTaskFix.php?taskSid=WT…`: `Task assignmentStatus: STATUS.` and, when it was
//!   wrapping, a second line `Task assignmentStatus set to: completed.`; `0` without a SID or on failure.
//!
//! The last two did not check anything in the seed. Here, a request with a bearer token may only act on the
//! worker's own conference or task (as the JSON API); one without a token acts as the seed did unless
//! `legacy_requires_token` is set, then it gets `0` with status 401.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

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

fn zero(status: StatusCode) -> Response {
    text(status, "0".to_owned())
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

async fn activities(State(state): State<AppState>) -> Response {
    match snapshot::workspace(&state).await {
        Ok(workspace) => text(StatusCode::OK, activities_line(&workspace)),
        Err(error) => {
            tracing::warn!(%error, "getTrActivites.php failed");
            zero(error.status())
        }
    }
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
            let mut response = zero(error.status());
            if let AppError::RateLimited { retry_after } = error {
                if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            response
        }
    }
}

/// The worker a legacy request acts for: `Ok(Some)` with a valid token, `Ok(None)` without one when that
/// is allowed, else the status to answer `0` with.
fn legacy_worker(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, StatusCode> {
    match auth::bearer_token(headers) {
        Some(token) => auth::verify(state, token).map(|b| Some(b.worker_sid)).map_err(|e| e.status()),
        None if state.config().legacy_requires_token => Err(StatusCode::UNAUTHORIZED),
        None => Ok(None),
    }
}

#[derive(Deserialize)]
struct ConferenceQuery {
    #[serde(default, rename = "conferenceName")]
    conference_name: String,
}

async fn conference_end(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ConferenceQuery>,
) -> Response {
    if query.conference_name.is_empty() {
        return zero(StatusCode::BAD_REQUEST);
    }
    let worker = match legacy_worker(&state, &headers) {
        Ok(worker) => worker,
        Err(status) => return zero(status),
    };
    match api::end_conference_of(&state, worker.as_deref(), &query.conference_name).await {
        Ok(conference) => text(StatusCode::OK, format!("Ended conference {}.\n", conference.sid)),
        Err(AppError::NotFound(_)) => text(StatusCode::OK, "Conference not found.\n".to_owned()),
        Err(error) => zero(error.status()),
    }
}

#[derive(Deserialize)]
struct TaskQuery {
    #[serde(default, rename = "taskSid")]
    task_sid: String,
}

async fn task_fix(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TaskQuery>,
) -> Response {
    if query.task_sid.is_empty() {
        return zero(StatusCode::BAD_REQUEST);
    }
    let worker = match legacy_worker(&state, &headers) {
        Ok(worker) => worker,
        Err(status) => return zero(status),
    };
    if let Some(worker) = &worker {
        if let Err(error) = api::own_task(&state, worker, &query.task_sid).await {
            return zero(error.status());
        }
    }
    let before = match state.client().fetch_task(&query.task_sid).await {
        Ok(task) => task,
        Err(error) => return zero(AppError::upstream("read the task", error).status()),
    };
    let status = before.assignment_status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let mut body = format!("Task assignmentStatus: {status}.\n");
    if status == "wrapping" {
        match wrapup::fix_task(&state, &query.task_sid).await {
            Ok(_) => body.push_str("Task assignmentStatus set to: completed.\n"),
            Err(error) => return zero(error.status()),
        }
    }
    text(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;
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
