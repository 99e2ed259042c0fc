//! What the worker app's benchmarks share (`ws_bench`, `supervisor_bench`): trworker started as
//! `trworker serve` runs it, on loopback, with the demo seed in a given data directory, either in local mode
//! (the embedded engine) or in twilio mode against a separate engine on its own port, as against
//! `trworker engine` whose workspace has no `EventCallbackUrl`.

use std::path::Path;

use anyhow::Context as _;
use tokio::sync::watch;
use trworker::app::{AppConfig, Mode};
use trworker::embedded::{self, Seed};
use trworker::start::{start, Feed, Role, Settings, Started};
use twilio_server::http::Limits;

/// The running servers: the app, and in twilio mode the engine apart.
pub struct Servers {
    /// The worker app (and in local mode its engine).
    pub app: Started,
    /// The engine alone, in twilio mode.
    pub engine: Option<Started>,
    stop: watch::Sender<bool>,
}

impl Servers {
    /// Starts the app (twilio mode when `twilio`) with the engine's data in `dir`; `adjust` sets the app's
    /// configuration beyond the mode, credentials and URLs.
    pub async fn start(
        twilio: bool,
        dir: &Path,
        feed: Feed,
        limits: Limits,
        adjust: impl FnOnce(&mut AppConfig),
    ) -> anyhow::Result<Servers> {
        let engine_settings = embedded::Settings {
            data_dir: dir.to_path_buf(),
            account_sid: None,
            auth_token: None,
            seed: Seed::Demo,
            manual_clock: false,
        };
        let settings = |role, engine| Settings { limits, feed, ..Settings::new(role, engine) };
        let (stop, stopped) = watch::channel(false);
        let stopping = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        if !twilio {
            let mut config = AppConfig::new(Mode::Local, "", "", "", "bench-password", "");
            adjust(&mut config);
            let role = Role::Serve(Box::new(config));
            let app = start(listener, settings(role, Some(engine_settings)), stopping()).await?;
            return Ok(Servers { app, engine: None, stop });
        }
        let engine_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let engine =
            start(engine_listener, settings(Role::Engine, Some(engine_settings)), stopping()).await?;
        let embedded = engine.engine.clone().context("the engine server has an engine")?;
        let workspace = embedded.workspace_sid.context("the demo seed has no workspace")?;
        let credentials = &embedded.credentials;
        let mut config = AppConfig::new(
            Mode::Twilio,
            &credentials.account_sid,
            &credentials.auth_token,
            workspace.to_string(),
            "bench-password",
            "",
        );
        config.taskrouter_url = Some(engine.listening.clone());
        config.api_url = Some(engine.listening.clone());
        adjust(&mut config);
        let app = start(listener, settings(Role::Serve(Box::new(config)), None), stopping()).await?;
        Ok(Servers { app, engine: Some(engine), stop })
    }

    /// The server that holds the engine: the engine apart in twilio mode, else the app's.
    pub fn engine_server(&self) -> &Started {
        self.engine.as_ref().unwrap_or(&self.app)
    }

    /// The line a benchmark starts with: where the app and TaskRouter are, the mode, and this process.
    pub fn banner(&self) -> String {
        let mode = if self.engine.is_some() { Mode::Twilio } else { Mode::Local };
        format!(
            "app at {}, TaskRouter at {} ({} mode, pid {})",
            self.app.listening,
            self.engine_server().listening,
            mode.as_str(),
            std::process::id()
        )
    }

    /// Stops both and waits until their state is saved.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        self.app.stopped().await?;
        if let Some(engine) = self.engine {
            engine.stopped().await?;
        }
        Ok(())
    }
}
