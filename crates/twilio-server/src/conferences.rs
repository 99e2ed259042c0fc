//! API 2010 Conferences and Participants at `/2010-04-01/Accounts/{AccountSid}/Conferences...json`.
//!
//! The router cannot match a `{Sid}.json` segment (no suffixes after parameters), so handlers take the whole
//! segment and strip `.json`; a path without it is a 404 like any unknown path. Conference recordings are
//! listed as empty: the simulated telephony records nothing.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::Sid;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{deleted, json, Segments};
use super::handle::ConferenceFilter;
use super::page::{Envelope, List};
use super::params::{Form, Params, Query};
use super::render::{parse_day, rfc2822};
use super::{twilio_path, ApiError, ApiResult, ServerState};
use engine::command::{Command, CreateParticipantParams, UpdateParticipantParams};
use engine::model::{Conference, ConferenceStatus, Participant};
use engine::Prefix;

pub fn router() -> Router<ServerState> {
    let acc = "/2010-04-01/Accounts/{account}";
    Router::new()
        .route(&format!("{acc}/Conferences.json"), get(list_conferences))
        .route(&format!("{acc}/Conferences/{{conf}}"), get(fetch_conference).post(update_conference))
        .route(
            &format!("{acc}/Conferences/{{conf}}/Participants.json"),
            get(list_participants).post(create_participant),
        )
        .route(
            &format!("{acc}/Conferences/{{conf}}/Participants/{{call}}"),
            get(fetch_participant).post(update_participant).delete(delete_participant),
        )
        .route(&format!("{acc}/Conferences/{{conf}}/Recordings.json"), get(list_recordings))
        .route(
            &format!("{acc}/Conferences/{{conf}}/Recordings/{{sid}}"),
            get(no_recording).post(no_recording).delete(no_recording),
        )
}

/// Options of a participant's call and of its conference (status callbacks, recording, hold music, SIP,
/// region) that the simulated telephony accepts and does not act on: in a participant create and in a
/// reservation's conference instruction.
pub(crate) const MEDIA_OPTIONS: &[&str] = &[
    "StatusCallback",
    "StatusCallbackMethod",
    "StatusCallbackEvent",
    "Record",
    "Beep",
    "WaitUrl",
    "WaitMethod",
    "EarlyMedia",
    "MaxParticipants",
    "ConferenceRecord",
    "ConferenceTrim",
    "ConferenceStatusCallback",
    "ConferenceStatusCallbackMethod",
    "ConferenceStatusCallbackEvent",
    "RecordingChannels",
    "RecordingStatusCallback",
    "RecordingStatusCallbackMethod",
    "ConferenceRecordingStatusCallback",
    "ConferenceRecordingStatusCallbackMethod",
    "SipAuthUsername",
    "SipAuthPassword",
    "Region",
    "JitterBufferSize",
];

/// The other participant create parameters the simulation accepts and does not act on.
const CALL_OPTIONS: &[&str] = &[
    "Hold",
    "Coaching",
    "CallSidToCoach",
    "Timeout",
    "RecordingStatusCallbackEvent",
    "ConferenceRecordingStatusCallbackEvent",
    "Byoc",
    "CallerId",
    "CallReason",
    "RecordingTrack",
    "TimeLimit",
    "MachineDetection",
    "MachineDetectionTimeout",
    "MachineDetectionSpeechThreshold",
    "MachineDetectionSpeechEndThreshold",
    "MachineDetectionSilenceTimeout",
    "AmdStatusCallback",
    "AmdStatusCallbackMethod",
    "Trim",
    "CallToken",
    "ClientNotificationUrl",
    "CallerDisplayName",
    "HoldUrl",
    "HoldMethod",
    "AnnounceUrl",
    "AnnounceMethod",
];

/// Participant update parameters the simulation accepts and does not act on.
const UPDATE_OPTIONS: [&str; 7] =
    ["HoldUrl", "HoldMethod", "AnnounceUrl", "AnnounceMethod", "WaitUrl", "WaitMethod", "BeepOnExit"];

pub(crate) fn account_path(state: &ServerState) -> String {
    format!("/2010-04-01/Accounts/{}", state.credentials().account_sid)
}

/// The account of an API 2010 path (`/2010-04-01/Accounts/{account}/...`), checked to be this engine's:
/// another account's path is a 404, as an unknown path is. Keeps the request's path for the 404s of the
/// segments after the account.
pub(crate) struct Account {
    path: String,
}

impl FromRequestParts<ServerState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ServerState) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        struct Named {
            account: String,
        }
        let Segments(Named { account }) = Segments::from_request_parts(parts, state).await?;
        let path = parts.uri.path().to_owned();
        if account != state.credentials().account_sid {
            return Err(ApiError::not_found(&path));
        }
        Ok(Account { path })
    }
}

impl Account {
    /// The 404 of this path.
    pub(crate) fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.path)
    }

    /// A `{Sid}.json` segment without its `.json`; a segment without it names nothing (404).
    fn strip_json(&self, segment: &str) -> ApiResult<String> {
        segment.strip_suffix(".json").map(str::to_owned).ok_or_else(|| self.not_found())
    }
}

/// `{conf}`: a conference's SID or friendly name, with `.json` where the route ends in it.
#[derive(Deserialize)]
struct ConferencePath {
    conf: String,
}

/// `{conf}` and `{call}`: a participant's call SID or label, with `.json`.
#[derive(Deserialize)]
struct ParticipantPath {
    conf: String,
    call: String,
}

fn render_conference(state: &ServerState, c: &Conference) -> Value {
    let uri = format!("{}/Conferences/{}", account_path(state), c.sid);
    json!({
        "account_sid": state.credentials().account_sid,
        "date_created": rfc2822(c.date_created),
        "date_updated": rfc2822(c.date_updated),
        "api_version": c.api_version,
        "friendly_name": c.friendly_name,
        "region": c.region,
        "sid": c.sid.to_string(),
        "status": c.status.as_str(),
        "uri": format!("{uri}.json"),
        "subresource_uris": {
            "participants": format!("{uri}/Participants.json"),
            "recordings": format!("{uri}/Recordings.json"),
        },
        "reason_conference_ended": c.reason_conference_ended,
        "call_sid_ending_conference": c.call_sid_ending_conference.map(|s| s.to_string()),
    })
}

fn render_participant(state: &ServerState, p: &Participant, queue_time: Option<&str>) -> Value {
    json!({
        "account_sid": state.credentials().account_sid,
        "call_sid": p.call_sid.to_string(),
        "label": p.label,
        "call_sid_to_coach": p.call_sid_to_coach.map(|s| s.to_string()),
        "coaching": p.coaching,
        "conference_sid": p.conference_sid.to_string(),
        "date_created": rfc2822(p.date_created),
        "date_updated": rfc2822(p.date_updated),
        "end_conference_on_exit": p.end_conference_on_exit,
        "muted": p.muted,
        "hold": p.hold,
        "start_conference_on_enter": p.start_conference_on_enter,
        "status": p.status.as_str(),
        "queue_time": queue_time,
        "uri": format!("{}/Conferences/{}/Participants/{}.json", account_path(state), p.conference_sid, p.call_sid),
    })
}

fn day(p: &mut Params, name: &str) -> ApiResult<Option<engine::Timestamp>> {
    p.parsed(name, parse_day, "a date like 2024-01-31")
}

const DAY_MS: i64 = 86_400_000;

async fn list_conferences(
    State(state): State<ServerState>,
    _: Account,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let list = List::from_params(&mut p)?;
    let status = p.choice("Status", &["init", "in-progress", "completed"])?;
    let created_on = day(&mut p, "DateCreated")?;
    let created_before = day(&mut p, "DateCreated<")?;
    let created_after = day(&mut p, "DateCreated>")?;
    let updated_on = day(&mut p, "DateUpdated")?;
    let updated_before = day(&mut p, "DateUpdated<")?;
    let updated_after = day(&mut p, "DateUpdated>")?;
    let filter = ConferenceFilter {
        status: match status.as_deref() {
            Some("init") => Some(ConferenceStatus::Init),
            Some("in-progress") => Some(ConferenceStatus::InProgress),
            Some("completed") => Some(ConferenceStatus::Completed),
            _ => None,
        },
        friendly_name: p.str("FriendlyName"),
        created_from: created_on.or(created_after),
        created_until: created_on.or(created_before).map(|d| d.plus_millis(DAY_MS - 1)),
        updated_from: updated_on.or(updated_after),
        updated_until: updated_on.or(updated_before).map(|d| d.plus_millis(DAY_MS - 1)),
    };
    p.finish()?;
    let items = state.engine().conferences(filter).await?;
    Ok(list.respond(
        Envelope::V2010,
        &format!("{}/Conferences.json", account_path(&state)),
        "conferences",
        &items,
        |c| c.sid.to_string(),
        |c| render_conference(&state, c),
    ))
}

async fn fetch_conference(
    State(state): State<ServerState>,
    account: Account,
    Segments(ConferencePath { conf }): Segments<ConferencePath>,
) -> ApiResult<Response> {
    let key = account.strip_json(&conf)?;
    let c = state.engine().conference(key).await?;
    Ok(json(StatusCode::OK, render_conference(&state, &c)))
}

async fn update_conference(
    State(state): State<ServerState>,
    account: Account,
    Segments(ConferencePath { conf }): Segments<ConferencePath>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let key = account.strip_json(&conf)?;
    let status = p.str("Status");
    p.ignore(&["AnnounceUrl", "AnnounceMethod"]);
    p.finish()?;
    let c = match status.as_deref() {
        Some("completed") => {
            let sid = conference_sid(&state, key).await?;
            state.engine().apply::<Conference>(Command::UpdateConference { sid, status }).await?
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid parameter Status: '{other}' cannot be set; the only value allowed is completed"
            )))
        }
        None => state.engine().conference(key).await?,
    };
    Ok(json(StatusCode::OK, render_conference(&state, &c)))
}

/// The SID of a conference named by SID or friendly name.
async fn conference_sid(state: &ServerState, key: String) -> ApiResult<Sid> {
    if let Ok(sid) = Sid::parse_as(&key, Prefix::Conference) {
        return Ok(sid);
    }
    Ok(state.engine().conference(key).await?.sid)
}

/// The conference and call SIDs of a participant named by call SID or label.
async fn participant_sids(
    state: &ServerState,
    conference: String,
    call_key: String,
) -> ApiResult<(Sid, Sid)> {
    if let (Ok(c), Ok(p)) =
        (Sid::parse_as(&conference, Prefix::Conference), Sid::parse_as(&call_key, Prefix::Call))
    {
        return Ok((c, p));
    }
    let part = state.engine().participant(conference, call_key).await?;
    Ok((part.conference_sid, part.call_sid))
}

async fn create_participant(
    State(state): State<ServerState>,
    _: Account,
    Segments(ConferencePath { conf: conference }): Segments<ConferencePath>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let params = CreateParticipantParams {
        from: p.required("From")?,
        to: p.required("To")?,
        label: p.str("Label"),
        muted: p.bool("Muted"),
        start_conference_on_enter: p.bool("StartConferenceOnEnter"),
        end_conference_on_exit: p.bool("EndConferenceOnExit"),
    };
    p.ignore(MEDIA_OPTIONS);
    p.ignore(CALL_OPTIONS);
    p.finish()?;
    let op = Command::CreateParticipant { conference, params };
    let part = state.engine().apply::<Participant>(op).await?;
    // The simulated call is placed at once: no time in queue.
    Ok(json(StatusCode::CREATED, render_participant(&state, &part, Some("0"))))
}

async fn fetch_participant(
    State(state): State<ServerState>,
    account: Account,
    Segments(ParticipantPath { conf: conference, call }): Segments<ParticipantPath>,
) -> ApiResult<Response> {
    let call_key = account.strip_json(&call)?;
    let part = state.engine().participant(conference, call_key).await?;
    Ok(json(StatusCode::OK, render_participant(&state, &part, None)))
}

async fn update_participant(
    State(state): State<ServerState>,
    account: Account,
    Segments(ParticipantPath { conf: conference, call }): Segments<ParticipantPath>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let call_key = account.strip_json(&call)?;
    let params = UpdateParticipantParams {
        muted: p.bool("Muted"),
        hold: p.bool("Hold"),
        end_conference_on_exit: p.bool("EndConferenceOnExit"),
        coaching: p.bool("Coaching"),
        call_sid_to_coach: super::extract::opt_sid(p.str("CallSidToCoach"), Prefix::Call, "CallSidToCoach")?,
    };
    p.ignore(&UPDATE_OPTIONS);
    p.finish()?;
    let (conference_sid, call_sid) = participant_sids(&state, conference, call_key).await?;
    let op = Command::UpdateParticipant { conference_sid, call_sid, params };
    let part = state.engine().apply::<Participant>(op).await?;
    Ok(json(StatusCode::OK, render_participant(&state, &part, None)))
}

async fn delete_participant(
    State(state): State<ServerState>,
    account: Account,
    Segments(ParticipantPath { conf: conference, call }): Segments<ParticipantPath>,
) -> ApiResult<Response> {
    let call_key = account.strip_json(&call)?;
    let (conference_sid, call_sid) = participant_sids(&state, conference, call_key).await?;
    deleted(state.engine().apply(Command::DeleteParticipant { conference_sid, call_sid }).await?)
}

async fn list_participants(
    State(state): State<ServerState>,
    _: Account,
    Segments(ConferencePath { conf: conference }): Segments<ConferencePath>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let list = List::from_params(&mut p)?;
    let (muted, hold, coaching) = (p.bool("Muted"), p.bool("Hold"), p.bool("Coaching"));
    p.finish()?;
    let items = state.engine().participants(conference.clone(), muted, hold, coaching).await?;
    let sid = items.first().map(|x| x.conference_sid.to_string()).unwrap_or(conference);
    Ok(list.respond(
        Envelope::V2010,
        &format!("{}/Conferences/{sid}/Participants.json", account_path(&state)),
        "participants",
        &items,
        |x| x.call_sid.to_string(),
        |x| render_participant(&state, x, None),
    ))
}

async fn list_recordings(
    State(state): State<ServerState>,
    _: Account,
    Segments(ConferencePath { conf: conference }): Segments<ConferencePath>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let list = List::from_params(&mut p)?;
    p.ignore(&["DateCreated", "DateCreated<", "DateCreated>"]);
    p.finish()?;
    // The conference must exist even though it has no recordings.
    let c = state.engine().conference(conference).await?;
    let none: [Sid; 0] = [];
    Ok(list.respond(
        Envelope::V2010,
        &format!("{}/Conferences/{}/Recordings.json", account_path(&state), c.sid),
        "recordings",
        &none,
        |s| s.to_string(),
        |s| json!(s.to_string()),
    ))
}

async fn no_recording(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        super::error::NOT_FOUND,
        format!(
            "The requested resource {} was not found: the simulated telephony records no conferences",
            twilio_path(uri.path())
        ),
    )
}
