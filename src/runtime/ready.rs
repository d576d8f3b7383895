//! Readiness checks of simple services (`ready = { tcp = ... }` or
//! `{ exec = [...] }`): tried at start, then again every `RETRY` until one
//! passes. The supervisor owns the timeout; this only tries.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Pause between two tries. Only while a service is starting: an idle tend
/// has no check running.
pub const RETRY: Duration = Duration::from_millis(100);

/// A check in progress.
#[derive(Debug)]
pub enum Attempt {
    /// A non-blocking connect, registered for writability.
    Connecting(mio::net::TcpStream),
    /// The check command, by pid; its exit status answers.
    Running(i32),
    /// The last try failed; try again at this time.
    Waiting(Instant),
}

/// Starts a non-blocking TCP connect.
pub fn connect(addr: SocketAddr) -> io::Result<mio::net::TcpStream> {
    mio::net::TcpStream::connect(addr)
}

/// After the connect became writable: did it succeed?
pub fn connected(stream: &mio::net::TcpStream) -> bool {
    matches!(stream.take_error(), Ok(None)) && stream.peer_addr().is_ok()
}
