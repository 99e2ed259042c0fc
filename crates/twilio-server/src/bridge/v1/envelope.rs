//! The REST envelope of v1 addressing (eb §7): `POST /v1/wschannels/{AccountSid}/{ChannelSid}` with the
//! JSON body `{url, method, params, token[, event_type]}`, answered `200 {"payload": …}` with the resource's
//! **public** REST JSON (taskrouter.js v1 reads `meta.key` and `next_page_url` of lists, eb §7), plus
//! `event_type` echoed when the request had one: that is how v1's `ready` works (on open the SDK posts
//! `{url: {ws}/Workers/{WK}, method: "GET", event_type: "ready"}` and emits the answer's `event_type`).
//!
//! The call itself is the REST API's: after the token's checks the envelope becomes an in-process request
//! to the TaskRouter routes (without Basic auth, the token standing for it), so every route, parser, error
//! and rendering is the one `/v1/Workspaces/…` has. `url` may name Twilio's host, the engine's base or be a
//! bare path; it is routed by path, its query (a list's `next_page_url`) merged before `params`. A 2xx
//! becomes 200, since the SDK treats any other status as a failure (`xhr.status == 200`, \[V1\] module 1);
//! an error keeps its status and Twilio's body, `{message, code, status, more_info}`.
//!
//! Checked before the call, in order: the body is JSON of the right shape (400), the token (401), the token
//! may POST to this channel (403), the call's workspace is the token's (403), the token's policies allow the
//! call (403), and, for a worker's token, a reservation or task it changes is its own (403, see [`own`]).
//!
//! An updated token (taskrouter.js v1's `updateToken`, which sends nothing on the socket): once the token
//! passed the first three checks, and may also GET the channel (what holding the socket takes), it moves the
//! expiry of the channel's open sockets to its own, if later. A token that fails them moves nothing.

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use engine::{Prefix, Sid};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::capability::{self, path_of, Capability, Channel};
use crate::bridge::envelope::{allow_origin, error_response, forbidden, params, ENVELOPE_LIMIT};
use crate::extract::json as json_response;
use crate::handle::Parent;
use crate::params::Params;
use crate::{ApiError, ApiResult, ServerState};

/// The largest REST answer carried back (a page of 1,000 tasks with 4 KiB attributes each fits).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// The envelope's body (eb §7): v2's, and the `event_type` v1 echoes.
#[derive(Deserialize)]
struct Envelope {
    #[serde(flatten)]
    call: crate::bridge::envelope::Envelope,
    /// Echoed in the answer, so the SDK emits it (v1's `ready`).
    #[serde(default)]
    event_type: Option<String>,
}

/// The TaskRouter routes the envelope calls, built once: the same `resources::router()` `/v1/Workspaces`
/// serves, with the facade's Twilio-style 404 and 405.
static REST: LazyLock<Router<ServerState>> = LazyLock::new(|| {
    crate::resources::router()
        .method_not_allowed_fallback(crate::method_not_allowed)
        .fallback(crate::not_found)
});

/// `POST /v1/wschannels/{AccountSid}/{ChannelSid}`.
pub(crate) async fn post_envelope(
    State(state): State<ServerState>,
    Path((account, channel)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = match axum::body::to_bytes(body, ENVELOPE_LIMIT).await {
        Ok(bytes) => answer(&state, &account, &channel, &headers, &bytes).await,
        Err(_) => Err(ApiError::too_large(ENVELOPE_LIMIT)),
    };
    let mut response = match answer {
        Ok(response) => response,
        Err(e) => return error_response(e, Some(&headers)),
    };
    allow_origin(response.headers_mut(), &headers);
    response
}

async fn answer(
    state: &ServerState,
    account: &str,
    channel: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!(
            "The envelope must be JSON {{\"url\",\"method\",\"params\",\"token\"[,\"event_type\"]}} with string url, method and token and object params ({e})"
        ))
    })?;
    let cap = capability::verify(state, &envelope.call.token, state.engine().now(), account, channel)?;
    let channel_path = format!("/v1/wschannels/{account}/{channel}");
    if !cap.allows("POST", &channel_path, &[]) {
        return Err(forbidden(format!("the token's policies do not allow POST {channel_path}")));
    }
    // taskrouter.js v1's `updateToken` keeps the new token for later envelopes and reconnects and sends
    // nothing on the socket (eb §7), so this is where an open channel learns of it: a token that may still
    // hold the channel (GET on its URL, as on upgrade) moves the channel's expiry to its own, if later.
    if cap.allows("GET", &channel_path, &[]) {
        let deadline = crate::bridge::deadline_in(cap.lifetime_ms(state.engine().now()));
        state.bridge().sessions.extend(cap.channel_sid, crate::bridge::Addressing::V1, deadline);
    }
    let method = envelope.call.method.to_ascii_uppercase();
    let path = rest_path(&envelope.call.url);
    let mut pairs = match envelope.call.url.split_once('?') {
        Some((_, query)) => Params::parse(query.split('#').next().unwrap_or(""))?.pairs().to_vec(),
        None => Vec::new(),
    };
    pairs.extend(params(envelope.call.params.unwrap_or_default()).pairs().iter().cloned());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let ["v1", "Workspaces", ws, ..] = segments.as_slice() {
        if *ws != cap.workspace_sid.to_string() {
            return Err(forbidden(format!("the token is for workspace {}, not {ws}", cap.workspace_sid)));
        }
    }
    if !cap.allows(&method, &path, &pairs) {
        return Err(forbidden(format!("the token's policies do not allow {method} {path}")));
    }
    if method == "POST" {
        own(state, &cap, &segments).await?;
    }
    let response = call(state, &method, &path, Params::from_pairs(pairs).encode(), headers).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
        .await
        .map_err(|e| ApiError::internal(&format!("reading the REST answer: {e}")))?;
    let payload: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(&format!("a REST answer is not JSON: {e}")))?
    };
    if !status.is_success() {
        return Ok(json_response(status, payload));
    }
    let mut answer = json!({ "payload": payload });
    if let Some(event_type) = envelope.event_type {
        answer["event_type"] = Value::String(event_type);
    }
    Ok(json_response(StatusCode::OK, answer))
}

/// The REST path of an envelope's `url`: `/v1/…` whether the URL names Twilio's host, the engine's base or
/// is a bare path (with or without `v1/`).
pub(in crate::bridge) fn rest_path(url: &str) -> String {
    let path = path_of(url);
    match path.strip_prefix("/v1/") {
        Some(_) => path,
        None => format!("/v1{path}"),
    }
}

/// The in-process REST call: the parameters in the query of a `GET` or `DELETE`, as the form of a `POST`;
/// `If-Match` passed on.
async fn call(
    state: &ServerState,
    method: &str,
    path: &str,
    form: String,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| {
        ApiError::invalid(format!("Invalid envelope method '{method}': use GET, POST or DELETE"))
    })?;
    let post = method == Method::POST;
    let uri = if post || form.is_empty() { path.to_owned() } else { format!("{path}?{form}") };
    let mut request = Request::builder().method(method).uri(&uri);
    if let Some(tag) = headers.get("if-match") {
        request = request.header("if-match", tag);
    }
    let request = if post {
        request
            .header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .body(Body::from(form))
    } else {
        request.body(Body::empty())
    };
    let request = request.map_err(|e| ApiError::invalid(format!("Invalid envelope url '{path}': {e}")))?;
    let router = REST.clone().with_state::<()>(state.clone());
    Ok(router.oneshot(request).await.unwrap_or_else(|never| match never {}))
}

/// A worker's token changes only its own reservations and the tasks reserved to it. The default worker
/// policies with reservation updates allow `POST {ws}/Tasks/**` (tr §11.1), which would let any worker
/// accept any reservation through `Tasks/{WT}/Reservations/{WR}` (the path taskrouter.js v1's
/// `Reservation` uses); Twilio's own check is not documented, so the engine adds this one. Reads stay as the
/// policies say (`GET {ws}/Tasks/**` is a default). A path whose task or reservation does not exist is left
/// to the REST route's 404.
async fn own(state: &ServerState, cap: &Capability, segments: &[&str]) -> ApiResult<()> {
    let Channel::Worker(wk) = cap.channel else { return Ok(()) };
    let ws = cap.workspace_sid;
    let engine = state.engine();
    let parse = |s: &str, p| Sid::parse_as(s, p).ok();
    match segments {
        ["v1", "Workspaces", _, "Tasks", wt, "Reservations", wr] => {
            let (Some(wt), Some(wr)) = (parse(wt, Prefix::Task), parse(wr, Prefix::Reservation)) else {
                return Ok(());
            };
            if let Ok(r) = engine.reservation(ws, Parent::Task(wt), wr).await {
                if r.worker_sid != wk {
                    return Err(forbidden(format!("reservation {wr} is not worker {wk}'s")));
                }
            }
        }
        ["v1", "Workspaces", _, "Tasks", wt, ..] => {
            let Some(wt) = parse(wt, Prefix::Task) else { return Ok(()) };
            if engine.task(ws, wt).await.is_ok() {
                let theirs = engine.reservations(ws, Parent::Task(wt), None, Some(wk)).await?;
                if theirs.is_empty() {
                    return Err(forbidden(format!("task {wt} is not reserved to worker {wk}")));
                }
            }
        }
        _ => {}
    }
    Ok(())
}
