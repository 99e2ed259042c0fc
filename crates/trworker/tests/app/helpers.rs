//! `spawn_app()`: an upstream TaskRouter (trworker's engine behind its Twilio-compatible facade) with a
//! seeded workspace, the worker app on port 0 pointed at it, and typed helpers for requests and sockets.
//!
//! Only [`start_upstream`] knows how the upstream is started; everything else talks to it with the
//! `twilio` client, as the app does. Both are started by `crate::support` (`trworker::start`); the app has
//! a manual clock of its own, and reconciles only when a test calls it.

use std::sync::Arc;
use std::time::Duration;

use engine::{Clock, ManualClock, SystemClock};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use trworker::app::{AppConfig, AppState, Mode};
use twilio::client::taskrouter::{
    ActivityFilter, CreateActivity, CreateWorker, CreateWorkflow, CreateWorkspace, ReservationFilter,
    UpdateWorker,
};
use twilio::models::{Reservation, ReservationStatus, Task};

pub const PASSWORD: &str = "correct horse battery staple";

pub use crate::upstream::Upstream;

/// Starts the TaskRouter the app talks to (see `upstream.rs`, the one place that knows it is trworker's
/// own engine).
pub async fn start_upstream() -> Upstream {
    crate::upstream::start().await
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub upstream: Upstream,
    /// An administrator's client of the upstream (not the app's).
    pub admin: twilio::Client,
    pub workspace_sid: String,
    pub workflow_sid: String,
    pub alice: String,
    pub bob: String,
    _server: crate::support::Server,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Seeds a workspace like the seed's (Offline/Available/Unavailable, a `support` queue, a workflow with a
/// 10 s reservation timeout, workers alice and bob offline), then starts the app with `adjust`ed config.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut AppConfig)) -> TestApp {
    let upstream = start_upstream().await;
    let listener = crate::support::bind(0).await;
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let root = upstream.client();
    let workspace = root
        .create_workspace(&CreateWorkspace {
            friendly_name: "Tiger Support".into(),
            event_callback_url: Some(format!("{base}/twilio/events")),
            ..Default::default()
        })
        .await
        .expect("create workspace");
    let admin = root.with_workspace(&workspace.sid);
    let existing = admin.list_activities(&ActivityFilter::default()).all().await.expect("activities");
    for (name, available) in [("Offline", false), ("Available", true), ("Unavailable", false)] {
        if !existing.iter().any(|a| a.friendly_name.as_deref() == Some(name)) {
            admin
                .create_activity(&CreateActivity { friendly_name: name.into(), available: Some(available) })
                .await
                .expect("create activity");
        }
    }
    let offline = activity_sid(&admin, "Offline").await;
    let mut workers = Vec::new();
    for name in ["alice", "bob"] {
        let worker = admin
            .create_worker(&CreateWorker {
                friendly_name: name.into(),
                activity_sid: Some(offline.clone()),
                attributes: Some(json!({ "skills": ["support"], "contact_uri": format!("client:{name}") })),
            })
            .await
            .expect("create worker");
        workers.push(worker.sid);
    }
    // Raw POST: the twilio client cannot yet read a queue whose `links` hold nulls (queues without
    // reservation/assignment activities, as the facade renders them).
    let queue: Value = reqwest::Client::new()
        .post(format!("{}/v1/Workspaces/{}/TaskQueues", upstream.url, workspace.sid))
        .basic_auth(&upstream.account_sid, Some(&upstream.auth_token))
        .form(&[("FriendlyName", "support"), ("TargetWorkers", "skills HAS \"support\"")])
        .send()
        .await
        .expect("create queue")
        .json()
        .await
        .expect("queue JSON");
    let queue_sid = queue["sid"].as_str().expect("queue sid").to_owned();
    let workflow = admin
        .create_workflow(&CreateWorkflow {
            friendly_name: "Support".into(),
            configuration: json!({ "task_routing": { "filters": [], "default_filter": { "queue": queue_sid } } }),
            task_reservation_timeout: Some(10),
            ..Default::default()
        })
        .await
        .expect("create workflow");

    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let mut config = AppConfig::new(
        Mode::Local,
        &upstream.account_sid,
        &upstream.auth_token,
        &workspace.sid,
        PASSWORD,
        &base,
    );
    config.taskrouter_url = Some(upstream.url.clone());
    config.api_url = Some(upstream.url.clone());
    config.caller_id = Some("+15005550006".into());
    adjust(&mut config);
    let server = crate::support::start_app(listener, config, clock.clone()).await;
    let (alice, bob) = (workers[0].clone(), workers[1].clone());
    TestApp {
        base,
        http: reqwest::Client::new(),
        state: server.app().clone(),
        clock,
        upstream,
        admin,
        workspace_sid: workspace.sid,
        workflow_sid: workflow.sid,
        alice,
        bob,
        _server: server,
    }
}

pub async fn activity_sid(admin: &twilio::Client, name: &str) -> String {
    let filter = ActivityFilter { friendly_name: Some(name.into()), ..Default::default() };
    let list = admin.list_activities(&filter).all().await.expect("activities");
    list.into_iter().find(|a| a.friendly_name.as_deref() == Some(name)).expect("activity exists").sid
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn activity(&self, name: &str) -> String {
        activity_sid(&self.admin, name).await
    }

    /// `POST /api/token`: status, body, `Retry-After`.
    pub async fn post_token(&self, identity: &str, password: &str) -> (u16, Value, Option<String>) {
        self.post_unsigned("/api/token", json!({ "identity": identity, "password": password })).await
    }

    /// `POST path` with a JSON body and no bearer (a sign-in): status, body, `Retry-After`.
    pub async fn post_unsigned(&self, path: &str, body: Value) -> (u16, Value, Option<String>) {
        let response = self.http.post(self.url(path)).json(&body).send().await.expect("request");
        let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null), retry)
    }

    /// Signs `identity` in and returns its token.
    pub async fn sign_in(&self, identity: &str) -> String {
        let (status, body, _) = self.post_token(identity, PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// `POST path` with a bearer token and a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let response =
            self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path`: status, content type, body text.
    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let response = self.http.get(self.url(path)).send().await.expect("request");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        (status, content_type, response.text().await.unwrap_or_default())
    }

    /// `GET path`, asserting a 200 whose content type starts with `content_type`: the body text.
    pub async fn served(&self, path: &str, content_type: &str) -> String {
        let (status, served_type, body) = self.get_text(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(served_type.starts_with(content_type), "{path}: {served_type}");
        body
    }

    /// Moves a worker through the app.
    pub async fn set_activity(&self, token: &str, name: &str) -> Value {
        let sid = self.activity(name).await;
        let (status, body) = self.post("/api/worker/activity", token, json!({ "activity_sid": sid })).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Moves the engine's manual clock and fires what became due.
    pub async fn advance_engine(&self, seconds: u32) {
        self.upstream.advance(seconds).await;
    }

    /// Accepts `reservation` through the app, then lets the simulated worker leg answer (it rings for two
    /// seconds of engine time).
    pub async fn accept(&self, token: &str, reservation: &str) -> (u16, Value) {
        let answer = self.post(&format!("/api/reservations/{reservation}/accept"), token, json!({})).await;
        self.advance_engine(2).await;
        answer
    }

    /// Creates a voice task as an incoming call would.
    pub async fn incoming_call(&self, from: &str) -> Task {
        crate::support::place_call(&self.admin, &self.workflow_sid, from, Value::Null).await
    }

    /// Moves `worker` (whose token is `token`) to Available through the app and places a call from
    /// `from`, which is offered to it: the task and `worker`'s pending reservation.
    pub async fn offer_call(&self, token: &str, worker: &str, from: &str) -> (Task, Reservation) {
        self.set_activity(token, "Available").await;
        let task = self.incoming_call(from).await;
        let reservation = self.reservation(worker, ReservationStatus::Pending).await;
        (task, reservation)
    }

    /// As [`TestApp::offer_call`], then accepts through the app: the task, once assigned.
    pub async fn on_call(&self, token: &str, worker: &str, from: &str) -> Task {
        let (task, reservation) = self.offer_call(token, worker, from).await;
        let (status, body) = self.accept(token, &reservation.sid).await;
        assert_eq!(status, 200, "{body}");
        self.task_status(&task.sid, "assigned").await
    }

    /// Rejects `reservation` through the app, naming the worker's next activity if `next` is given.
    pub async fn reject(&self, token: &str, reservation: &str, next: Option<&str>) -> (u16, Value) {
        let body = match next {
            Some(name) => json!({ "activity_sid": self.activity(name).await }),
            None => json!({}),
        };
        self.post(&format!("/api/reservations/{reservation}/reject"), token, body).await
    }

    /// Moves `worker` to the activity `name` with the administrator's client, behind the app's back.
    pub async fn admin_set_activity(&self, worker: &str, name: &str) {
        let activity_sid = Some(self.activity(name).await);
        self.admin
            .update_worker(worker, &UpdateWorker { activity_sid, ..Default::default() })
            .await
            .expect("update worker");
    }

    /// Waits (polling the upstream) until `worker` has a reservation in `status`.
    pub async fn reservation(&self, worker: &str, status: ReservationStatus) -> Reservation {
        let filter = ReservationFilter { reservation_status: Some(status.clone()), ..Default::default() };
        for _ in 0..500 {
            let list =
                self.admin.list_worker_reservations(worker, &filter).all().await.expect("reservations");
            if let Some(found) = list.into_iter().next() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{worker} never had a {status} reservation");
    }

    /// Waits (polling the upstream) until `task` is in `status`.
    pub async fn task_status(&self, task: &str, status: &str) -> Task {
        let mut last = None;
        for _ in 0..500 {
            let found = self.admin.fetch_task(task).await.expect("task");
            if found.assignment_status.as_ref().map(|s| s.as_str()) == Some(status) {
                return found;
            }
            last = Some(found);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {task} never became {status}: {last:?}");
    }

    /// Waits until `task` is completed, and checks that the reason given was `reason`.
    pub async fn completed_for(&self, task: &str, reason: &str) -> Task {
        let done = self.task_status(task, "completed").await;
        assert_eq!(done.reason.as_deref(), Some(reason), "the reason task {task} was completed for");
        done
    }

    pub async fn worker_activity(&self, worker: &str) -> String {
        let worker = self.admin.fetch_worker(worker).await.expect("worker");
        worker.activity_name.unwrap_or_default()
    }

    /// Signs `identity` in and opens a socket with its token, whose first message (the state) is read:
    /// the token and the socket.
    pub async fn connect(&self, identity: &str) -> (String, Socket) {
        let token = self.sign_in(identity).await;
        let mut socket = self.socket(&token, None).await;
        socket.next().await.expect("state");
        (token, socket)
    }

    /// Opens `/api/ws` and says hello.
    pub async fn socket(&self, token: &str, last_seq: Option<u64>) -> Socket {
        let url = format!("{}/api/ws", self.base.replacen("http", "ws", 1));
        let (mut stream, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
        let hello = json!({ "type": "hello", "token": token, "last_seq": last_seq });
        stream.send(Message::Text(hello.to_string().into())).await.expect("hello");
        Socket { stream }
    }

    /// Opens another session of the channel `channel_sid` (a worker's or the workspace's) at the upstream's
    /// event bridge, asking for the others to be closed: the bridge cuts the app's session. `to_jwt` makes
    /// the channel's capability issued at the time given (five minutes back, valid on any clock here).
    pub async fn close_other_sessions<E: std::fmt::Debug>(
        &self,
        channel_sid: &str,
        to_jwt: impl FnOnce(u64) -> Result<String, E>,
    ) -> WsStream {
        let jwt = to_jwt(SystemClock.now().secs().saturating_sub(300) as u64).expect("token");
        let url = format!(
            "{}/v1/wschannels/{}/{channel_sid}?token={jwt}&closeExistingSessions=true",
            self.upstream.url.replacen("http", "ws", 1),
            self.upstream.account_sid,
        );
        let (intruder, _) = tokio_tungstenite::connect_async(url).await.expect("the other session");
        intruder
    }
}

/// The `field` of each object in the array `list` that has it as a string.
pub fn texts<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array().expect("an array").iter().filter_map(|item| item[field].as_str()).collect()
}

/// A client's WebSocket.
pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Socket {
    pub stream: WsStream,
}

impl Socket {
    /// The next JSON message; `None` when the socket closed (with the close code).
    pub async fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("a message within 10 s");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(text.as_str()).expect("json"))
                }
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Skips messages until one satisfies `want`.
    pub async fn until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            match self.next().await {
                Ok(message) if want(&message) => return message,
                Ok(_) => continue,
                Err(code) => panic!("socket closed ({code:?}) while waiting for {what}"),
            }
        }
        panic!("no {what} in 200 messages");
    }

    /// The next `state` whose reservations satisfy `want`.
    pub async fn state_where(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        self.until(what, |m| m["type"] == "state" && want(m)).await
    }
}

/// The app alone, pointed at `upstream_url` (e.g. one nobody listens on), with a client that does not
/// retry. Returns its base URL, its state, and the server, which stops when dropped.
pub async fn spawn_detached(upstream_url: &str) -> (String, AppState, crate::support::Server) {
    let listener = crate::support::bind(0).await;
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = AppConfig::new(
        Mode::Twilio,
        "AC0000000000000000000000000000a001",
        "secret",
        "WS0000000000000000000000000000a001",
        PASSWORD,
        &base,
    );
    config.taskrouter_url = Some(upstream_url.to_owned());
    config.api_url = Some(upstream_url.to_owned());
    config.client_retries = Some(0);
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(SystemClock.now()));
    let server = crate::support::start_app(listener, config, clock).await;
    (base, server.app().clone(), server)
}
