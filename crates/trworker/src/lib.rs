//! trworker as a library: the pieces the binary wires together, exposed so integration tests can start them.
//!
//! # Layout
//!
//! - [`app`]: the worker app's server side: its JSON API, WebSocket, event intake, wrap-up and the seed's
//!   legacy URLs, talking to TaskRouter only through the `twilio` client.

pub mod app;
