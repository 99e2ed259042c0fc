//! Starting trworker in a test, always through [`trworker::start::start`] (the function the command line
//! uses), on port 0 or, for a restart, a port given back: the engine alone ([`start_engine`]), the worker
//! app with its embedded engine ([`start_local`]) or the app alone against an upstream TaskRouter
//! ([`start_app`]).
//!
//! [`place_call`] creates a task as an incoming call would, for the harnesses that place calls.
//!
//! Engines run on a manual clock and the app never reconciles on a timer: time moves only when a test
//! moves it. Each test binary includes this file with `#[path = "../support/mod.rs"] mod support;`.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::Clock;
use tokio::net::TcpListener;
use trworker::app::{AppConfig, AppState};
use trworker::embedded::{self, Embedded, Seed};
use trworker::start::{start, Role, Settings, Started};

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A fresh, empty directory named after `what`.
    pub fn new(what: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("trworker-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create the test's directory");
        TempDir { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Listens on `127.0.0.1:port` (0: any free port). A port just released by a stopped server may take a
/// moment to be free again, so a taken one is tried again for up to five seconds.
pub async fn bind(port: u16) -> TcpListener {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut last = None;
    for _ in 0..100 {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot listen on {addr}: {last:?}");
}

/// A running server, stopped when dropped (or by [`Server::stop`], which waits until it has saved).
pub struct Server {
    /// `http://127.0.0.1:PORT`, where this machine reaches it; no trailing slash.
    pub base: String,
    pub addr: SocketAddr,
    started: Option<Started>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Starts what `settings` asks for on `listener`.
    pub async fn start(listener: TcpListener, settings: Settings) -> Server {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let started = start(listener, settings, async move {
            let _ = stopped.await;
        })
        .await
        .expect("trworker starts");
        Server {
            base: started.listening.clone(),
            addr: started.addr,
            started: Some(started),
            stop: Some(stop),
        }
    }

    fn started(&self) -> &Started {
        self.started.as_ref().expect("a running server")
    }

    /// The worker app's state.
    pub fn app(&self) -> &AppState {
        self.started().app.as_ref().expect("the worker app")
    }

    /// The embedded engine.
    pub fn engine(&self) -> &Arc<Embedded> {
        self.started().engine.as_ref().expect("an embedded engine")
    }

    /// Stops serving (sockets are told, connections closed) and waits until the engine's state is saved and
    /// its directory released.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(started) = self.started.take() {
            // Connections drain and sockets close promptly; a hang is a failure, not a wait.
            tokio::time::timeout(Duration::from_secs(10), started.stopped())
                .await
                .expect("the server stops within 10 s")
                .expect("the server stops cleanly");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The embedded engine's settings for `dir`: generated credentials, a manual clock.
pub fn engine_settings(dir: &Path, seed: Seed) -> embedded::Settings {
    embedded::Settings {
        data_dir: dir.to_owned(),
        account_sid: None,
        auth_token: None,
        seed,
        manual_clock: true,
    }
}

/// Settings for `role` with the defaults every test wants.
fn settings(role: Role, engine: Option<embedded::Settings>) -> Settings {
    Settings { reconcile: false, ..Settings::new(role, engine) }
}

/// The engine alone, as `trworker engine` (its `local.env` written), with its credentials.
pub struct Engine {
    pub server: Server,
    /// Its base URL (the server's), no trailing slash.
    pub url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The demo workspace, or the oldest; empty when there is none.
    pub workspace_sid: String,
    /// The data directory when it is the engine's own (after `server`: removed once the server is told
    /// to stop).
    dir: Option<TempDir>,
}

/// Opens the engine in `dir` (with `seed` when new) and serves it on port 0.
pub async fn start_engine(dir: &Path, seed: Seed) -> Engine {
    let server = Server::start(bind(0).await, settings(Role::Engine, Some(engine_settings(dir, seed)))).await;
    let engine = server.engine();
    Engine {
        url: server.base.clone(),
        account_sid: engine.credentials.account_sid.clone(),
        auth_token: engine.credentials.auth_token.clone(),
        workspace_sid: engine.workspace_sid.map(|s| s.to_string()).unwrap_or_default(),
        server,
        dir: None,
    }
}

/// As [`start_engine`], in a data directory of its own named after `what`, removed when the engine is
/// dropped.
pub async fn start_engine_in_temp(what: &str, seed: Seed) -> Engine {
    let dir = TempDir::new(what);
    let engine = start_engine(dir.path(), seed).await;
    Engine { dir: Some(dir), ..engine }
}

impl Engine {
    /// A client of the engine's REST API with its credentials, for no workspace yet.
    pub fn client(&self) -> twilio::Client {
        let config = twilio::Config::new(&self.account_sid, &self.auth_token).base_urls(&self.url, &self.url);
        twilio::Client::new(config).expect("client")
    }

    /// Moves the engine's manual clock by `seconds` and fires what became due (`POST /trworker/v1/Clock`).
    pub async fn advance(&self, seconds: u32) {
        let response = reqwest::Client::new()
            .post(format!("{}/trworker/v1/Clock", self.url))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&[("AdvanceSeconds", seconds.to_string())])
            .send()
            .await
            .expect("advance the engine's clock");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    /// Stops the engine and waits until its state is saved.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// The worker app in local mode on `listener`: with its embedded engine in `dir` (the demo workspace when
/// new, a manual clock the app shares), as `trworker serve` runs it. The account, token, workspace and URLs
/// come from the engine; the rest of `config` is used as given.
pub async fn start_local(dir: &Path, listener: TcpListener, config: AppConfig) -> Server {
    let role = Role::Serve(Box::new(config));
    Server::start(listener, settings(role, Some(engine_settings(dir, Seed::Demo)))).await
}

/// The worker app alone on `listener`, on `clock`, against the TaskRouter `config` names, reachable from
/// outside at `config.public_url` (what webhook signatures are checked against).
pub async fn start_app(listener: TcpListener, config: AppConfig, clock: Arc<dyn Clock>) -> Server {
    let public_url = Some(config.public_url.clone());
    let settings =
        Settings { public_url, app_clock: Some(clock), ..settings(Role::Serve(Box::new(config)), None) };
    Server::start(listener, settings).await
}

/// Places a call as TaskRouter sees one: a task on `workflow_sid` with a fresh call SID, the caller in
/// `from`, plus the `extra` attributes (an object, or `null` for none).
pub async fn place_call(
    admin: &twilio::Client,
    workflow_sid: &str,
    from: &str,
    extra: serde_json::Value,
) -> twilio::models::Task {
    let mut attributes = serde_json::json!({
        "call_sid": call_sid(),
        "from": from,
        "to": "+15005550001",
        "type": "inbound",
    });
    if let (Some(all), Some(more)) = (attributes.as_object_mut(), extra.as_object()) {
        all.extend(more.clone());
    }
    let task = twilio::client::taskrouter::CreateTask {
        attributes: Some(attributes),
        workflow_sid: Some(workflow_sid.to_owned()),
        ..Default::default()
    };
    admin.create_task(&task).await.expect("create task")
}

/// Signs in as supervisor `name` at the server at `base`: the supervisor token.
pub async fn supervisor_token(base: &str, name: &str, password: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/supervisor/token"))
        .json(&serde_json::json!({ "name": name, "password": password }))
        .send()
        .await
        .expect("supervisor sign-in")
        .json()
        .await
        .expect("JSON");
    answer["token"].as_str().expect("a supervisor token").to_owned()
}

/// A call SID no other call of this process has.
fn call_sid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("CA{:032x}", (u128::from(std::process::id()) << 64) | u128::from(n))
}
