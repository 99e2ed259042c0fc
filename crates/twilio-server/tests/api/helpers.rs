//! `spawn_app()`: the facade over the real engine (in memory) on port 0, and a client with typed helpers.

use std::sync::Arc;

use serde_json::Value;
use twilio_server::{self, Credentials, Engine, ServerState};

pub const ACCOUNT: &str = "AC00000000000000000000000000000001";
pub const TOKEN: &str = "test-auth-token";
/// The engine's clock when a test starts, in seconds: what tokens are minted by.
pub const NOW: u64 = 1_700_000_000;

pub fn credentials() -> Credentials {
    Credentials { account_sid: ACCOUNT.into(), auth_token: TOKEN.into() }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The real engine (in memory, no store) behind the facade, as the port the facade uses.
    pub engine: Engine,
    /// The engine's clock: time moves only when a test moves it.
    pub clock: engine::ManualClock,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The facade over a fresh, empty engine on port 0.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(twilio_server::bridge::Options::default()).await
}

/// [`spawn_app`] with a 50 ms bridge heartbeat, so a test sees one without waiting Twilio's 15 s.
pub async fn spawn_bridge_app() -> TestApp {
    spawn_app_with(twilio_server::bridge::Options { heartbeat: std::time::Duration::from_millis(50) }).await
}

/// [`spawn_app`] with the event bridge's options.
pub async fn spawn_app_with(bridge: twilio_server::bridge::Options) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock = engine::ManualClock::new(engine::Timestamp::from_secs(i64::try_from(NOW).unwrap()));
    let core = engine::Core::new(
        engine::Sid::parse(ACCOUNT).unwrap(),
        Box::new(engine::SequentialSids::new()),
        engine::CoreConfig::default(),
    );
    let handle = engine::Handle::start(core, None, Arc::new(clock.clone()), Default::default());
    let engine = Engine::new(handle);
    let state = ServerState::with_bridge(engine.clone(), credentials(), &base, bridge);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(twilio_server::serve(listener, state, async move {
        let _ = rx.await;
    }));
    TestApp { base, client: reqwest::Client::new(), engine, clock, _shutdown: tx }
}

/// The facade over an engine seeded with the demo workspace; returns the app and the workspace SID.
pub async fn spawn_real() -> (RealApp, String) {
    let app = spawn_app().await;
    let ws = app.engine.handle().seed_demo().await.unwrap().to_string();
    let engine = app.engine.clone();
    let clock = app.clock.clone();
    (RealApp { app, engine, clock }, ws)
}

/// A [`TestApp`] on the seeded engine, with its engine and clock at hand.
pub struct RealApp {
    pub app: TestApp,
    pub engine: Engine,
    pub clock: engine::ManualClock,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).basic_auth(ACCOUNT, Some(TOKEN)).send().await.unwrap();
        read(r).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(form)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    /// Posts `form` to `path`, asserting the answer's status is `expected`; returns the body.
    pub async fn post_expecting(&self, path: &str, form: &[(&str, &str)], expected: u16) -> Value {
        let (status, body) = self.post(path, form).await;
        assert_eq!(status, expected, "POST {path}: {body}");
        body
    }

    /// Posts `form` to `path` with an `If-Match` header.
    pub async fn post_if_match(
        &self,
        path: &str,
        if_match: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let request = self.client.post(self.url(path)).basic_auth(ACCOUNT, Some(TOKEN));
        request.header("If-Match", if_match).form(form).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> u16 {
        let r = self.client.delete(self.url(path)).basic_auth(ACCOUNT, Some(TOKEN)).send().await.unwrap();
        r.status().as_u16()
    }

    pub async fn workspace(&self, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("FriendlyName", "Test")];
        form.extend_from_slice(extra);
        let body = self.post_expecting("/v1/Workspaces", &form, 201).await;
        body["sid"].as_str().unwrap().to_owned()
    }

    pub async fn available_activity(&self, ws: &str) -> String {
        let (_, body) = self.get(&format!("/v1/Workspaces/{ws}/Activities?Available=true")).await;
        body["activities"][0]["sid"].as_str().unwrap().to_owned()
    }

    pub async fn available_worker(&self, ws: &str, name: &str) -> String {
        let activity = self.available_activity(ws).await;
        let body = self
            .post_expecting(
                &format!("/v1/Workspaces/{ws}/Workers"),
                &[
                    ("FriendlyName", name),
                    ("ActivitySid", &activity),
                    ("Attributes", r#"{"skills":["support"]}"#),
                ],
                201,
            )
            .await;
        body["sid"].as_str().unwrap().to_owned()
    }

    /// The SID of the activity named `name` in `ws`.
    pub async fn activity(&self, ws: &str, name: &str) -> String {
        let (status, body) = self.get(&format!("/v1/Workspaces/{ws}/Activities?FriendlyName={name}")).await;
        assert_eq!(status, 200, "{body}");
        body["activities"][0]["sid"]
            .as_str()
            .unwrap_or_else(|| panic!("no activity {name}: {body}"))
            .to_owned()
    }

    /// Moves worker `wk` of `ws` to the activity named `name` (asserting a 200); returns the activity's SID.
    pub async fn move_worker(&self, ws: &str, wk: &str, name: &str) -> String {
        let activity = self.activity(ws, name).await;
        self.post_expecting(&format!("/v1/Workspaces/{ws}/Workers/{wk}"), &[("ActivitySid", &activity)], 200)
            .await;
        activity
    }

    /// Reads worker `wk`'s `field` until it is `expected`, at most 200 times 10 ms apart (for what the engine
    /// does a moment after a socket closes); returns the last value read.
    pub async fn poll_worker(&self, ws: &str, wk: &str, field: &str, expected: &str) -> String {
        let mut value = String::new();
        for _ in 0..200 {
            let (_, worker) = self.get(&format!("/v1/Workspaces/{ws}/Workers/{wk}")).await;
            value = worker[field].as_str().unwrap().to_owned();
            if value == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        value
    }

    /// Creates the task queue `support` of `ws`, for workers whose `skills` has "support"; returns it.
    pub async fn support_queue(&self, ws: &str) -> Value {
        let form = [("FriendlyName", "support"), ("TargetWorkers", r#"skills HAS "support""#)];
        self.post_expecting(&format!("/v1/Workspaces/{ws}/TaskQueues"), &form, 201).await
    }

    /// Makes `ws` a minimal call centre, as a Twilio user would before creating tasks: a queue `support` for
    /// workers whose `skills` has "support", and the workspace's only workflow, `main`, whose default filter
    /// routes every task to that queue (so `task()` can leave out `WorkflowSid`). `extra` adds workflow
    /// parameters (`AssignmentCallbackUrl`, ...).
    pub async fn call_centre(&self, ws: &str, extra: &[(&str, &str)]) -> CallCentre {
        let queue = self.support_queue(ws).await["sid"].as_str().unwrap().to_owned();
        let config = route_all_to(&queue);
        let mut form = vec![("FriendlyName", "main"), ("Configuration", config.as_str())];
        form.extend_from_slice(extra);
        let workflow = self.post_expecting(&format!("/v1/Workspaces/{ws}/Workflows"), &form, 201).await;
        CallCentre { queue, workflow: workflow["sid"].as_str().unwrap().to_owned() }
    }

    /// A new workspace made a call centre (see [`TestApp::call_centre`]) with an available `support` worker
    /// for each of `names`: the workspace's SID, what `call_centre` created, and the workers' SIDs in order.
    pub async fn staffed_centre<const N: usize>(
        &self,
        names: [&str; N],
    ) -> (String, CallCentre, [String; N]) {
        let ws = self.workspace(&[]).await;
        let centre = self.call_centre(&ws, &[]).await;
        let mut workers = Vec::with_capacity(N);
        for name in names {
            workers.push(self.available_worker(&ws, name).await);
        }
        let workers = workers.try_into().unwrap_or_else(|_| unreachable!("one worker per name"));
        (ws, centre, workers)
    }

    /// Creates a `support` task through the workspace's only workflow (see [`TestApp::call_centre`]).
    pub async fn task(&self, ws: &str) -> Value {
        let body = self
            .post_expecting(
                &format!("/v1/Workspaces/{ws}/Tasks"),
                &[("Attributes", r#"{"type":"support"}"#)],
                201,
            )
            .await;
        body
    }

    /// Posts `form` to the reservation at `path` of `ws` (`Tasks/{WT}/Reservations/{WR}` or
    /// `Workers/{WK}/Reservations/{WR}`), asserting the answer's status is `expected`; returns the body.
    pub async fn update_reservation(
        &self,
        ws: &str,
        path: &str,
        form: &[(&str, &str)],
        expected: u16,
    ) -> Value {
        self.post_expecting(&format!("/v1/Workspaces/{ws}/{path}"), form, expected).await
    }

    /// Ends conference `cf` (`Status=completed`, asserting a 200); returns the conference.
    pub async fn end_conference(&self, cf: &str) -> Value {
        let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}.json");
        self.post_expecting(&path, &[("Status", "completed")], 200).await
    }

    pub async fn first_reservation(&self, ws: &str, task: &str) -> String {
        let (status, body) = self.get(&format!("/v1/Workspaces/{ws}/Tasks/{task}/Reservations")).await;
        assert_eq!(status, 200, "{body}");
        body["reservations"][0]["sid"].as_str().unwrap().to_owned()
    }
}

/// A workflow configuration whose default filter routes every task to `queue`.
pub fn route_all_to(queue: &str) -> String {
    format!(r#"{{"task_routing":{{"filters":[],"default_filter":{{"queue":"{queue}"}}}}}}"#)
}

/// What [`TestApp::call_centre`] created.
pub struct CallCentre {
    /// The `support` queue.
    pub queue: String,
    /// The workflow routing every task to `queue`.
    pub workflow: String,
}

pub async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Asserts a Twilio error body with `code` and `status`, returning the message.
pub fn assert_twilio_error(body: &Value, status: u16, code: u64) -> String {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["more_info"], format!("https://www.twilio.com/docs/errors/{code}"), "{body}");
    body["message"].as_str().unwrap().to_owned()
}
