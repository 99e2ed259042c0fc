//! The embedded engine's data directory as the operating system sees it: who may read its files, and what a
//! client is told when the disk under it refuses a write.

use serde_json::Value;
use trworker::embedded::Seed;

#[path = "support/mod.rs"]
mod support;

/// A directory under the system temp dir, removed on drop, whose `data` trworker makes: the test also sees
/// the root left as it was.
struct TempDir(support::TempDir);

impl TempDir {
    fn new(name: &str) -> TempDir {
        TempDir(support::TempDir::new(&format!("datadir-{name}")))
    }

    /// The data directory, one level below the root.
    fn data(&self) -> std::path::PathBuf {
        self.0.path().join("data")
    }
}

async fn send(
    engine: &support::Engine,
    request: reqwest::RequestBuilder,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.basic_auth(&engine.account_sid, Some(&engine.auth_token)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[cfg(unix)]
#[tokio::test]
async fn every_file_in_a_new_data_dir_is_the_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = TempDir::new("modes");
    let data = root.data();
    // As `trworker engine` starts it: `local.env` written.
    let engine = support::start_engine(&data, Seed::Demo).await;
    trworker::config::local_token_password(&data).unwrap();
    // A change after the seed, so the running engine has written to its WAL.
    let (ws, base) = (&engine.workspace_sid, &engine.url);
    let client = reqwest::Client::new();
    let form = [("Attributes", r#"{"from":"+15551234567"}"#)];
    let (status, _, body) =
        send(&engine, client.post(format!("{base}/v1/Workspaces/{ws}/Tasks")).form(&form)).await;
    assert_eq!(status, 201, "{body}");

    let mut modes: Vec<(String, u32)> = std::fs::read_dir(&data)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata().unwrap().permissions().mode() & 0o777,
            )
        })
        .collect();
    modes.sort();
    let expected: Vec<(String, u32)> = [
        "credentials.env",
        "engine.db",
        "engine.db-shm",
        "engine.db-wal",
        "engine.lock",
        "local.env",
        "token_password.env",
    ]
    .iter()
    .map(|name| (name.to_string(), 0o600))
    .collect();
    assert_eq!(modes, expected);
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    engine.stop().await;
}

/// The facade over the engine kept in `data_dir`, its store opened with `store` (capped or not), on port 0.
/// Returns the engine and the base URL; the server stops with the test's runtime.
async fn serve_store(store: engine::store::Store) -> (engine::Handle, String) {
    let loaded = store.load().unwrap();
    let records = loaded.records.into_iter().map(|r| (r.kind, r.key, r.value));
    let core = engine::Core::restore(
        engine::Sid::parse(ACCOUNT).unwrap(),
        Box::new(engine::RandomSids::new()),
        engine::CoreConfig::default(),
        records,
        loaded.last_event_seq,
    )
    .unwrap();
    let clock = engine::ManualClock::new(engine::Timestamp::from_secs(1_700_000_000));
    let handle = engine::Handle::start(core, Some(store), std::sync::Arc::new(clock), Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let engine = twilio_server::Engine::new(handle.clone());
    let credentials = twilio_server::Credentials { account_sid: ACCOUNT.into(), auth_token: TOKEN.into() };
    let state = twilio_server::ServerState::new(engine, credentials, &base);
    tokio::spawn(twilio_server::serve(listener, state, std::future::pending()));
    (handle, base)
}

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "test-auth-token";

async fn call(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.basic_auth(ACCOUNT, Some(TOKEN)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// A full disk as SQLite meets it: the store is capped at the size of its file (`PRAGMA max_page_count`), so
/// a change that needs a new page fails inside SQLite with SQLITE_FULL, the error a disk with no space left
/// gives, and goes the whole way up to the client.
#[tokio::test]
async fn a_full_disk_answers_503_and_saves_nothing() {
    let root = TempDir::new("full");
    let data = root.data();
    let client = reqwest::Client::new();
    let ws = {
        let (handle, _) = serve_store(engine::store::Store::open(&data).unwrap()).await;
        let ws = handle.seed_demo().await.unwrap().to_string();
        handle.stop().await.unwrap();
        ws
    };
    let (handle, base) = serve_store(engine::store::Store::open_capped(&data, Some(0)).unwrap()).await;
    // Tasks of 4 KB of attributes (the most Twilio takes) soon do not: the first that needs a new page is
    // refused. Those before it were acknowledged and must survive.
    let tasks = format!("{base}/v1/Workspaces/{ws}/Tasks");
    let attributes = serde_json::json!({ "from": "+15551234567", "notes": "x".repeat(4000) }).to_string();
    let form = [("Attributes", attributes.as_str())];
    let mut saved = Vec::new();
    let (status, headers, body) = loop {
        let (status, headers, body) = call(client.post(&tasks).form(&form)).await;
        if status != 201 || saved.len() == 10 {
            break (status, headers, body);
        }
        saved.push(body["sid"].as_str().unwrap().to_owned());
    };
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], twilio_server::error::RETRY_AFTER_SECONDS.to_string().as_str());
    assert_eq!(body["status"], 503);
    assert_eq!(body["code"], 20503);
    assert_eq!(body["more_info"], "https://www.twilio.com/docs/errors/20503");
    // Says what happened without the server's paths (they go to the server's log).
    assert_eq!(
        body["message"], "the engine could not save the change: its disk is full; nothing was changed",
        "{body}"
    );
    // The engine reloaded what is on disk: a read right after the 503 lists the acknowledged tasks and
    // not the refused one, with no restart.
    let listed = |body: &Value| {
        let mut sids: Vec<String> =
            body["tasks"].as_array().unwrap().iter().map(|t| t["sid"].as_str().unwrap().to_owned()).collect();
        sids.sort();
        sids
    };
    saved.sort();
    let (status, _, body) = call(client.get(format!("{tasks}?PageSize=50"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(listed(&body), saved);
    let _ = handle.stop().await;

    // Nothing of the refused change is on disk: restarted with room, the workspace has the acknowledged
    // tasks and no other.
    let (handle, base) = serve_store(engine::store::Store::open(&data).unwrap()).await;
    let (status, _, body) = call(client.get(format!("{base}/v1/Workspaces/{ws}/Tasks?PageSize=50"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(listed(&body), saved);
    let small = [("Attributes", r#"{"from":"+15551234567"}"#)];
    let (status, _, body) = call(client.post(format!("{base}/v1/Workspaces/{ws}/Tasks")).form(&small)).await;
    assert_eq!(status, 201, "{body}");
    handle.stop().await.unwrap();
}
