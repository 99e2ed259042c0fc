//! trworker as a library: the pieces the binary wires together, exposed so integration tests can start them.
//!
//! # Layout
//!
//! - [`api`]: the Twilio-compatible HTTP facade over the engine (TaskRouter v1 and API 2010 Conferences),
//!   its Basic auth, error bodies, pagination and the signed event callback deliverer.

pub mod api;
