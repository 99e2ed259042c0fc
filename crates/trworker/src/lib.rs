//! trworker as a library: the pieces the binary wires together, exposed so integration tests can start them.
//!
//! # Layout
//!
//! - [`api`]: the Twilio-compatible HTTP facade over the engine (TaskRouter v1 and API 2010 Conferences),
//!   its Basic auth, error bodies, pagination and the signed event callback deliverer.
//! - [`app`]: the worker app's server side: its JSON API, WebSocket, event intake, wrap-up and the seed's
//!   legacy URLs, talking to TaskRouter only through the `twilio` client.

pub mod api;
pub mod app;
