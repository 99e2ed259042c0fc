//! Starting the upstream TaskRouter: trworker's engine core in process ([`LocalEngine`]) behind its
//! Twilio-compatible facade on port 0, delivering signed event callbacks.
//!
//! The engine has its own manual clock, separate from the app's: simulated worker legs answer at once
//! (no ring delay), and nothing in these tests waits for an engine timer.

use std::sync::Arc;

use trworker::api::local::LocalEngine;
use trworker::api::{self, callbacks, AppState, Credentials};

use crate::helpers::Upstream;

const ACCOUNT: &str = "AC0000000000000000000000000000a001";
const AUTH_TOKEN: &str = "upstream-auth-token";

pub async fn start() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let clock = engine::ManualClock::new(engine::Timestamp::from_secs(1_700_000_000));
    let config = engine::CoreConfig { worker_answer_delay_ms: 0, ..engine::CoreConfig::default() };
    let account = engine::Sid::parse(ACCOUNT).expect("account SID");
    let core = engine::Core::new(account, Box::new(engine::SequentialSids::new()), config);
    let engine = Arc::new(LocalEngine::new(core, Arc::new(clock)));
    let credentials = Credentials { account_sid: ACCOUNT.into(), auth_token: AUTH_TOKEN.into() };
    let state = AppState::new(engine.clone(), credentials.clone(), &url);
    let options = callbacks::Options { backoff: std::time::Duration::from_millis(50), ..Default::default() };
    callbacks::spawn(engine, credentials, options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Upstream { url, account_sid: ACCOUNT.into(), auth_token: AUTH_TOKEN.into(), _guard: Box::new(stop) }
}
