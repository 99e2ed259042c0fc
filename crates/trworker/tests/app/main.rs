//! Integration tests of the worker app's server against a real server on an ephemeral port, talking to a
//! TaskRouter-compatible upstream (trworker's own engine and facade) over HTTP.

mod helpers;
#[path = "../support/mod.rs"]
mod support;
mod upstream;

mod actions;
mod channels;
mod headers;
mod leave;
mod legacy;
mod live;
mod supervisor;
mod token;
mod webhook;
mod wrapup;
