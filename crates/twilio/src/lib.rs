//! A typed client for Twilio TaskRouter v1 and the API 2010 Conference resources, the worker tokens the
//! browser uses, and `X-Twilio-Signature` webhook signatures.
//!
//! The client knows nothing about trworker's local engine: it talks to whatever base URL it is given, which is
//! how the same code path runs against real Twilio and against the embedded engine.
//!
//! # Layout
//!
//! - [`client`]: [`Client`] and its [`Config`]: Basic auth, form encoding, timeouts, retries with backoff
//!   and `Retry-After`, and [`Paged`] list streams. The operations are in [`client::taskrouter`]
//!   (workspace, activities, workers, tasks, reservations and their instructions, events, task queues,
//!   workflows), [`client::conference`] (conferences, participants) and [`client::keys`] (API Keys, whose
//!   secrets sign AccessTokens), each with its parameter types.
//! - [`eventbridge`]: [`eventbridge::Channel`], one channel of TaskRouter's event bridge in v1 addressing
//!   (what taskrouter.js v1 opens) as typed updates on an `mpsc` receiver: token renewal ahead of expiry,
//!   liveness timeout, reconnects with jittered backoff, `wss://` over rustls with ring.
//! - [`models`]: the resources as the specs define them (`Option` fields, enums with an `Other` arm).
//! - [`error`]: [`Error`], including Twilio's error bodies (legacy and RFC 9457) as [`Error::Api`].
//! - [`signature`]: compute and validate `X-Twilio-Signature` (sorted form params, the port quirk,
//!   `bodySHA256` for JSON bodies), constant-time; [`signature::sign`] is what the local engine signs
//!   its callbacks with.
//! - [`token`]: the TaskRouter worker capability JWT (twilio-python's claims and policies, 8 h default TTL)
//!   and the AccessToken with a TaskRouter grant, hand-rolled HS256, and their verification.

/// `Debug` that prints only the fields named, then `..`: for a type holding a secret (a token, a key) that
/// must never reach a log, or something that has no useful `Debug` (a clock).
macro_rules! debug_fields {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))$(.field(stringify!($field), &self.$field))*.finish_non_exhaustive()
            }
        }
    };
}

pub mod client;
pub mod error;
pub mod eventbridge;
pub mod models;
pub mod signature;
pub mod token;

pub use client::{Client, Config, Credentials, Paged};
pub use error::Error;
