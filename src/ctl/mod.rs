//! The control socket's client side: the wire protocol (pure, shared with
//! the server in `runtime::control`), the `tend ctl` command line and the
//! client that speaks it.

pub mod args;
pub mod client;
pub mod command;
pub mod protocol;
pub mod socket_path;
mod tty;
