//! API 2010 API Keys at `/2010-04-01/Accounts/{AccountSid}/Keys[.json]` and `/Keys/{Sid}[.json]`: create,
//! fetch, list, rename, delete. A key's SID and secret sign AccessTokens, the way Twilio's helper libraries
//! make them for the worker SDKs (see [`crate::Engine::api_key_secret`]).
//!
//! As Twilio does, the secret is in the create answer only: fetch and list show `sid`, `friendly_name` and
//! the dates. Both spellings of each path are served, with and without `.json`, since clients use both.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::command::Command;
use engine::model::{ApiKey, Secret};
use engine::{Prefix, Sid};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::conferences::{account_path, Account};
use super::extract::{deleted, json, Segments};
use super::page::{Envelope, List};
use super::params::{Form, Query};
use super::render::rfc2822;
use super::{ApiResult, ServerState};

pub fn router() -> Router<ServerState> {
    let acc = "/2010-04-01/Accounts/{account}";
    Router::new()
        .route(&format!("{acc}/Keys"), get(list_keys).post(create_key))
        .route(&format!("{acc}/Keys.json"), get(list_keys).post(create_key))
        .route(&format!("{acc}/Keys/{{key}}"), get(fetch_key).post(update_key).delete(delete_key))
}

/// Characters of a secret: Twilio's secrets are 32 letters and digits.
const SECRET_LEN: usize = 32;

/// A new secret: 32 letters and digits (about 190 bits) from the operating system's random source, drawn
/// without bias. The shape of Twilio's own secrets, so code that checks one accepts ours.
fn new_secret() -> Secret {
    let text = rand::rngs::OsRng.sample_iter(rand::distributions::Alphanumeric).take(SECRET_LEN);
    Secret::new(text.map(char::from).collect())
}

fn render(k: &ApiKey) -> Value {
    json!({
        "sid": k.sid.to_string(),
        "friendly_name": k.friendly_name,
        "date_created": rfc2822(k.date_created),
        "date_updated": rfc2822(k.date_updated),
    })
}

/// `{key}`: a key's SID, with or without `.json`.
#[derive(Deserialize)]
struct KeyPath {
    key: String,
}

/// The key a `{Sid}` or `{Sid}.json` segment names; anything else is no key (404).
fn key_sid(segment: &str, account: &Account) -> ApiResult<Sid> {
    let text = segment.strip_suffix(".json").unwrap_or(segment);
    Sid::parse_as(text, Prefix::ApiKey).map_err(|_| account.not_found())
}

async fn create_key(State(state): State<ServerState>, _: Account, Form(mut p): Form) -> ApiResult<Response> {
    let friendly_name = p.str("FriendlyName");
    p.finish()?;
    let key =
        state.engine().apply::<ApiKey>(Command::CreateApiKey { friendly_name, secret: new_secret() }).await?;
    let mut body = render(&key);
    body["secret"] = json!(key.secret.expose());
    Ok(json(StatusCode::CREATED, body))
}

async fn fetch_key(
    State(state): State<ServerState>,
    account: Account,
    Segments(KeyPath { key }): Segments<KeyPath>,
) -> ApiResult<Response> {
    let key = state.engine().api_key(key_sid(&key, &account)?).await?;
    Ok(json(StatusCode::OK, render(&key)))
}

async fn update_key(
    State(state): State<ServerState>,
    account: Account,
    Segments(KeyPath { key }): Segments<KeyPath>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let sid = key_sid(&key, &account)?;
    let friendly_name = p.str("FriendlyName");
    p.finish()?;
    let key = state.engine().apply::<ApiKey>(Command::UpdateApiKey { sid, friendly_name }).await?;
    Ok(json(StatusCode::OK, render(&key)))
}

async fn delete_key(
    State(state): State<ServerState>,
    account: Account,
    Segments(KeyPath { key }): Segments<KeyPath>,
) -> ApiResult<Response> {
    let sid = key_sid(&key, &account)?;
    deleted(state.engine().apply(Command::DeleteApiKey { sid }).await?)
}

async fn list_keys(State(state): State<ServerState>, _: Account, Query(mut p): Query) -> ApiResult<Response> {
    let list = List::from_params(&mut p)?;
    p.finish()?;
    let items = state.engine().api_keys().await?;
    Ok(list.respond(
        Envelope::V2010,
        &format!("{}/Keys.json", account_path(&state)),
        "keys",
        &items,
        |k| k.sid.to_string(),
        render,
    ))
}
