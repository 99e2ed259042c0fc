//! A typed client for Twilio TaskRouter v1 and the API 2010 Conference resources, the worker tokens the
//! browser uses, and `X-Twilio-Signature` webhook signatures.
//!
//! The client knows nothing about trworker's local engine: it talks to whatever base URL it is given, which is
//! how the same code path runs against real Twilio and against the embedded engine.
//!
//! # Layout
//!
//! - [`signature`]: compute and validate `X-Twilio-Signature` (sorted form params, the port quirk,
//!   `bodySHA256` for JSON bodies), constant-time.
//! - [`token`]: the TaskRouter worker capability JWT (twilio-python's claims and policies, 8 h default TTL)
//!   and the AccessToken with a TaskRouter grant, hand-rolled HS256, and their verification.

pub mod signature;
pub mod token;
