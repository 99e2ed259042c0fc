//! The server under test: the worker app and the embedded engine (demo workspace) on one port, in this
//! process, as local mode serves them, with a manual clock shared by the engine and the app.
//!
//! Time only moves through [`Server::advance`], which also fires the engine's due timers and reconciles the
//! app, so reservation timeouts and ring delays never depend on sleeping. [`Server::stop`] and
//! [`Server::start`] on the same [`DataDir`] and port are a server restart.

use std::net::SocketAddr;

use engine::ManualClock;
use trworker::app::{AppConfig, AppState, Mode};
use twilio::client::taskrouter::{ActivityFilter, WorkflowFilter};
use twilio::models::Task;

pub use crate::support::TempDir as DataDir;

/// The password every worker signs in with.
pub const PASSWORD: &str = "e2e correct horse battery staple";

/// A demo worker with the `support` skill: the support queue's calls reach it when it is available.
pub const WORKER: &str = "charles";

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub addr: SocketAddr,
    pub state: AppState,
    /// The engine's (and the app's) clock.
    pub clock: ManualClock,
    /// An administrator's client of the engine's REST API, scoped to the demo workspace.
    pub admin: twilio::Client,
    pub workflow_sid: String,
    handle: engine::Handle,
    server: crate::support::Server,
}

impl Server {
    /// Opens the engine in `dir` (seeding the demo workspace when new) and serves engine and app on
    /// `127.0.0.1:port` (0 for any free port).
    pub async fn start(dir: &DataDir, port: u16) -> Server {
        Server::start_with(dir, port, |_| {}).await
    }

    /// As [`Server::start`], with the app's configuration `adjust`ed.
    pub async fn start_with(dir: &DataDir, port: u16, adjust: impl FnOnce(&mut AppConfig)) -> Server {
        let mut config = AppConfig::new(Mode::Local, "", "", "", PASSWORD, "");
        adjust(&mut config);
        let server = crate::support::start_local(dir.path(), crate::support::bind(port).await, config).await;
        let embedded = server.engine();
        let credentials = &embedded.credentials;
        let workspace_sid = embedded.workspace_sid.expect("the demo workspace").to_string();
        let root = twilio::Client::new(
            twilio::Config::new(&credentials.account_sid, &credentials.auth_token)
                .base_urls(&server.base, &server.base),
        )
        .expect("admin client");
        let admin = root.with_workspace(&workspace_sid);
        let workflows = admin.list_workflows(&WorkflowFilter::default()).all().await.expect("workflows");
        let workflow_sid = workflows.into_iter().next().expect("the demo workflow").sid;
        Server {
            base: server.base.clone(),
            addr: server.addr,
            state: server.app().clone(),
            clock: embedded.manual_clock.clone().expect("a manual clock"),
            admin,
            workflow_sid,
            handle: embedded.handle.clone(),
            server,
        }
    }

    /// Stops serving (sockets are told, connections closed) and saves the engine's state.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// The page's URL.
    pub fn page(&self) -> String {
        format!("{}/", self.base)
    }

    /// Moves time forward by `seconds`, fires the engine's due timers, and reconciles the app (as its
    /// background loop would).
    pub async fn advance(&self, seconds: i64) {
        self.clock.advance_millis(seconds * 1000);
        self.handle.tick().await.expect("engine tick");
        self.state.reconcile().await;
    }

    /// The SID of the demo worker `name`.
    pub async fn worker_sid(&self, name: &str) -> String {
        let filter = twilio::client::taskrouter::WorkerFilter {
            friendly_name: Some(name.into()),
            ..Default::default()
        };
        let workers = self.admin.list_workers(&filter).all().await.expect("workers");
        workers.into_iter().find(|w| w.friendly_name.as_deref() == Some(name)).expect("demo worker").sid
    }

    /// The name of `worker`'s current activity, read from the engine.
    pub async fn worker_activity(&self, name: &str) -> String {
        let sid = self.worker_sid(name).await;
        self.admin.fetch_worker(&sid).await.expect("worker").activity_name.unwrap_or_default()
    }

    /// The SID of the workspace's activity `name`.
    pub async fn activity_sid(&self, name: &str) -> String {
        let filter = ActivityFilter { friendly_name: Some(name.into()), ..Default::default() };
        let list = self.admin.list_activities(&filter).all().await.expect("activities");
        list.into_iter().find(|a| a.friendly_name.as_deref() == Some(name)).expect("activity").sid
    }

    /// Places a call as TaskRouter sees one: a task with the caller in `from`, plus `extra` attributes.
    pub async fn call(&self, from: &str, extra: serde_json::Value) -> Task {
        crate::support::place_call(&self.admin, &self.workflow_sid, from, extra).await
    }

    /// The task's assignment status, read from the engine.
    pub async fn task_status(&self, task_sid: &str) -> String {
        let task = self.admin.fetch_task(task_sid).await.expect("task");
        task.assignment_status.map(|s| s.as_str().to_owned()).unwrap_or_default()
    }
}
