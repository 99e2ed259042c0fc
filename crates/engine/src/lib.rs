//! A local, stateful, persistent routing engine that behaves like Twilio TaskRouter.
//!
//! The engine is the "Twilio" that trworker ships with: the HTTP facade in the `trworker` crate translates
//! TaskRouter v1 and API 2010 Conference requests into commands and renders the resources back as JSON.
//! This crate knows nothing about HTTP.
//!
//! # Layout
//!
//! - [`expr`]: the TaskRouter expression language ([`Expr`]), `order_by` ([`OrderBy`]) and known-worker
//!   references ([`TaskRef`]): parsed once with positioned errors, evaluated against attribute scopes.
//! - [`sid`]: Twilio-shaped identifiers ([`Sid`]) and the injected generator ([`SidGen`]).
//! - [`time`]: [`Timestamp`] and the injected [`Clock`].

pub mod command;
pub mod error;
pub mod event;
pub mod expr;
pub mod model;
pub mod sid;
pub mod time;
pub mod workflow;

pub use expr::{Expr, OrderBy, TaskRef};
pub use sid::{Prefix, RandomSids, SequentialSids, Sid, SidError, SidGen};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
