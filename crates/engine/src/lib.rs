//! A local, stateful, persistent routing engine that behaves like Twilio TaskRouter.
//!
//! The engine is the "Twilio" that trworker ships with: the HTTP facade in the `trworker` crate translates
//! TaskRouter v1 and API 2010 Conference requests into commands and renders the resources back as JSON.
//! This crate knows nothing about HTTP.
//!
//! # Layout
//!
//! - [`core`]: the sans-IO state machine ([`Core`]): `apply(now, command)`, `advance(now)` for timers,
//!   `take_events`/`take_changes` for the log and the store, `restore` from stored records, read-only queries
//!   and statistics. `Space` is one workspace, its `impl` cut by resource: `space` (the maps and indexes, the
//!   Workspace, command dispatch), `activities`, `workers` (task channels, workers, worker channels),
//!   `task_queues` (and queue membership), `workflows` (and stepping a task through one), `tasks` (commands
//!   and lifecycle), `reservations`, `transfers` (a worker's transfer of its task), `routing` (eligibility,
//!   offering tasks to workers). Beside them: `timers` (every deadline), `telephony` (simulated conferences,
//!   and the conference, dequeue, call, redirect and supervise instructions), `query` (views and
//!   statistics), `api_keys` (the account's API keys).
//! - [`cumulative`]: cumulative statistics counted from the event log over a window ([`cumulative::tally`]).
//! - [`model`]: the resources (Workspace … Reservation, Transfer, Conference, Participant, API key) with
//!   Twilio's field names.
//! - [`command`]: [`Command`], one variant per mutating REST operation plus simulation commands.
//! - [`error`]: [`Error`], each with its Twilio code and HTTP status.
//! - [`event`]: [`Event`] and [`EventType`]: the TaskRouter event log entries with their callback fields.
//! - [`workflow`]: workflow configuration parsing and validation ([`WorkflowConfig`]).
//! - [`expr`]: the TaskRouter expression language ([`Expr`]), `order_by` ([`OrderBy`]) and known-worker
//!   references ([`TaskRef`]): parsed once with positioned errors, evaluated against attribute scopes.
//! - [`sid`]: Twilio-shaped identifiers ([`Sid`]) and the injected generator ([`SidGen`]).
//! - [`handle`]: the actor that owns the core on its own thread ([`Handle`]): commands in order, timers from an
//!   injected clock, replies and events released only once durable, recovery from the data directory.
//! - [`store`]: the durable store: SQLite in WAL mode, one writer thread with group commit ([`Store`]).
//!   Parts: `writer` (the writer thread), `chunk` (the LZ4-packed event log), `schema` (creation and
//!   upgrades), `checkpoint` (the checkpointer thread), `dir` (the directory lock, private modes), `error`.
//! - `sharded` (private): a hash map split into 256 tables of unequal shares, for the maps that grow with the
//!   tasks.
//! - `codec` (private): the compact binary forms the store keeps for events and tasks.
//! - [`time`]: [`Timestamp`] and the injected [`Clock`].

mod codec;
pub mod command;
pub mod core;
pub mod cumulative;
pub mod error;
pub mod event;
pub mod expr;
pub mod handle;
pub mod model;
mod sharded;
pub mod sid;
pub mod store;
pub mod time;
pub mod workflow;

pub use crate::core::{Change, Core, CoreConfig, Record, Reply};
pub use command::Command;
pub use error::Error;
pub use event::{Event, EventType};
pub use expr::{Expr, OrderBy, TaskRef};
pub use handle::Handle;
pub use sid::{Prefix, RandomSids, SequentialSids, Sid, SidError, SidGen};
pub use store::{Store, StoreError};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use workflow::WorkflowConfig;
