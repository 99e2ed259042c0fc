//! Browser tests of the worker page: a real headless Chromium, driven over WebDriver (chromedriver) with
//! fantoccini, against the worker app and the embedded engine running in this process.
//!
//! Calls are placed as TaskRouter sees them (a task created over the engine's REST API); timeouts are
//! reached by moving the shared manual clock and ticking the engine, never by sleeping.
//!
//! Without chromedriver every test prints "skipping: chromedriver not found (...)" and passes, unless
//! `E2E_REQUIRED=1` (as `.ci/run` sets after installing `chromium` and `chromium-driver`), when it fails.
//! Browser tests run one at a time (see [`scene::Scene`]): two cores cannot run several Chromiums briskly.
//!
//! Run: `cargo test -p trworker --test e2e` (add `-- --nocapture` to see skips).

mod browser;
mod scene;
mod server;
#[path = "../support/mod.rs"]
mod support;

mod access;
mod activity;
mod axe;
mod bidi;
mod calls;
mod oncall;
mod phone;
mod policy;
mod safety;
mod session;
mod supervisor;
mod wrapup;
