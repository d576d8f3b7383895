//! The control socket: the wire protocol (pure), the server PID 1 runs in
//! its event loop, and the `tend ctl` client.

pub mod client;
pub mod command;
mod conn;
mod exec;
mod handle;
pub mod protocol;
pub mod server;
pub mod socket_path;
pub mod task;
mod tty;
