//! The control socket: the wire protocol (pure), the server PID 1 runs in
//! its event loop, and the `tend ctl` client.

pub mod protocol;
