//! Starting the upstream TaskRouter: trworker's embedded engine (the actor over the core, durable in a
//! temporary data directory) behind its Twilio-compatible facade on port 0, delivering signed event
//! callbacks.
//!
//! The engine runs on a manual clock: nothing happens on a timer unless a test moves it with
//! [`crate::helpers::TestApp::advance_engine`] (e.g. for the simulated worker leg to answer).

use std::path::PathBuf;

use trworker::embedded::{Embedded, Seed, Settings};

use crate::helpers::Upstream;

/// Stops the server and removes the data directory when the test ends.
struct Guard {
    dir: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn start() -> Upstream {
    let dir = std::env::temp_dir().join(format!("trworker-app-{}", trworker::config::random_hex()));
    let embedded = Embedded::open(Settings {
        data_dir: dir.clone(),
        account_sid: None,
        auth_token: None,
        seed: Seed::None,
        manual_clock: true,
    })
    .await
    .expect("engine opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let routes = embedded.routes(&url);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Upstream {
        url,
        account_sid: embedded.credentials.account_sid.clone(),
        auth_token: embedded.credentials.auth_token.clone(),
        _guard: Box::new(Guard { dir, _stop: stop }),
    }
}
