//! v1 addressing of the event bridge, as taskrouter.js v1 uses it (eb §7): the channel and the REST envelope
//! at `/v1/wschannels/{AccountSid}/{ChannelSid}`, for a worker's (`WK`), a task queue's (`WQ`) or the
//! workspace's (`WS`) channel, authenticated by a capability token whose policies are enforced on the
//! socket and on every envelope.
//!
//! What differs from v2 ([`super`]) and lives here: the path, the token ([`capability`]: capability tokens
//! only, with policies), the payloads (public REST JSON, where v2 has the SDK's internal format), the
//! `event_type` echo, and the queue and workspace channels. What is the same is reused: the socket's loop
//! ([`super::channel::pump`]), sessions, CORS, error bodies and the envelope's JSON parameters.
//!
//! # Layout
//!
//! - [`capability`]: the capability token and its policies (method, path, `query_filter`, `post_filter`).
//! - [`channel`]: the WebSocket and which events each kind of channel gets.
//! - [`envelope`]: the REST envelope, an in-process call to the TaskRouter routes.

mod capability;
pub(super) mod channel;
pub(super) mod envelope;

/// The path of both the channel and the envelope (eb §7).
pub const PATH: &str = "/v1/wschannels/{account}/{channel}";
