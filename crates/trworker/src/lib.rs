//! trworker as a library: the pieces the binary wires together, exposed so integration tests can start them.
//!
//! # Layout
//!
//! - [`api`]: the Twilio-compatible HTTP facade over the engine (TaskRouter v1 and API 2010 Conferences),
//!   its Basic auth, error bodies, pagination and the signed event and assignment callback deliverers.
//! - [`app`]: the worker app's server side: its JSON API, WebSocket, event intake, wrap-up and the seed's
//!   legacy URLs, talking to TaskRouter only through the `twilio` client.
//! - [`embedded`]: the engine embedded in this process: data directory, credentials, seeding, routes.
//! - [`cli`]: the command line and the commands that run servers.
//! - [`config`]: `.env`, generated local credentials and `local.env`.
//! - [`limit`]: rate limits with bounded memory (sign-in, failed Basic auth).
//! - [`obs`]: operating a server: `/healthz`, `/readyz`, `/metrics` and the log format.
//! - [`ops`]: the ops commands (`workers`, `tasks`, `conferences`, `call`, `setup`, `token`), which talk to
//!   TaskRouter only through the `twilio` client, so they work against Twilio and the local engine alike.
//! - [`server`]: the HTTP server loop of every server: connection cap, header and idle timeouts, the
//!   failed-authentication throttle, graceful shutdown.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod embedded;
pub mod limit;
pub mod obs;
pub mod ops;
pub mod server;
