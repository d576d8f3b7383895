//! The control server PID 1 runs inside its event loop: the listening
//! sockets and connections (`server`, `conn`), what each request does
//! (`handle`, `task`) and the commands it runs for `tend ctl exec` (`exec`).
//! It speaks `ctl::protocol`.

mod conn;
mod exec;
mod handle;
pub mod server;
pub mod task;
