//! Starting the upstream TaskRouter: trworker's engine alone (durable in a temporary data directory, as
//! `trworker engine` runs it) on port 0, delivering signed event callbacks.
//!
//! The engine runs on a manual clock: nothing happens on a timer unless a test moves it with
//! [`crate::helpers::TestApp::advance_engine`] (e.g. for the simulated worker leg to answer).

use trworker::embedded::Seed;

/// A running upstream: where it is, its credentials and its clock.
pub type Upstream = crate::support::Engine;

pub async fn start() -> Upstream {
    crate::support::start_engine_in_temp("app", Seed::None).await
}
