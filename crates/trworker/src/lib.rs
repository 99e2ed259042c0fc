//! trworker as a library: the pieces the binary wires together, exposed so integration tests can start them.
//!
//! # Layout
//!
//! - [`app`]: the worker app's server side: its JSON API, WebSocket, event intake, wrap-up and the seed's
//!   legacy URLs, talking to TaskRouter only through the `twilio` client.
//! - [`embedded`]: the engine embedded in this process: data directory, credentials, seeding, routes.
//! - [`cli`]: the command line and the commands that run servers.
//! - [`config`]: `.env`, generated local credentials and `local.env`.
//! - [`metrics`]: the registry of counters and histograms and the Prometheus exposition format, which the
//!   app counts into and [`obs`] renders.
//! - [`obs`]: operating a server: `/healthz`, `/readyz`, `/metrics` and the log format.
//! - [`start`]: the one way to start trworker (engine alone, or the app in local or twilio mode) on a bound
//!   listener with a shutdown signal: used by the CLI, the benchmark example and the test harnesses.
//! - [`ops`]: the ops commands (`workers`, `tasks`, `conferences`, `call`, `setup`, `token`), which talk to
//!   TaskRouter only through the `twilio` client, so they work against Twilio and the local engine alike.
//! - `web/` (beside `src/`): the worker page and the supervisor page, plain ES modules embedded in the binary
//!   by `app::assets`; `web/app.js` opens with the list of the worker page's modules.

pub mod app;
pub mod cli;
pub mod config;
pub mod embedded;
pub mod metrics;
pub mod obs;
pub mod ops;
pub mod start;
