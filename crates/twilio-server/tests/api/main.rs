//! Integration tests of the HTTP facade against a real server on an ephemeral port.

mod helpers;

mod bridge;
mod bridge_roles;
mod bridge_transfers;
mod bridge_v1;
mod callbacks;
mod channel_client;
mod conferences;
mod errors;
mod keys;
mod limits;
mod real_engine;
mod resources;
mod sweep;
mod workspace_feed;
