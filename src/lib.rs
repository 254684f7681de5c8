//! The tachigo-auth server as a library: the binary's `serve` command and the
//! end-to-end tests both start it through [`server::start`].

pub mod cli;
pub mod server;
pub mod telemetry;
