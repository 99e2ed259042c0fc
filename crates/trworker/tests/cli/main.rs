//! The ops command line end to end: the real `trworker` binary against a real local engine started in the
//! test on an ephemeral port, found through `DIR/local.env` as next to a running `trworker serve`.

mod helpers;
#[path = "../support/mod.rs"]
mod support;

mod calls;
mod conferences;
mod errors;
mod setup;
mod tasks;
mod workers;
