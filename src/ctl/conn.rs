//! One client connection of the control server: a non-blocking socket with
//! a bounded input framer and a bounded output queue. Nothing here blocks:
//! reads and writes stop at `WouldBlock`, and a client that lets its
//! replies pile up past [`MAX_OUTPUT`] is dropped.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use mio::net::UnixStream;

use super::protocol::{Framer, Reply, MAX_FRAME};
use super::task::Task;
use crate::sys::fdpass;

/// Replies waiting for a slow reader, at most; past it the client is dropped.
pub const MAX_OUTPUT: usize = 1 << 20;

/// Bytes read per wake-up from one client at most, so that a client that
/// floods requests cannot keep the loop to itself.
const READ_BUDGET: usize = 256 * 1024;

/// Bytes to send, maybe with fds that go with their first byte.
struct Chunk {
    bytes: Vec<u8>,
    sent: usize,
    fds: Vec<OwnedFd>,
}

pub struct Conn {
    pub stream: UnixStream,
    pub framer: Framer,
    /// Fds received and not used yet (at most [`fdpass::MAX_FDS`]).
    pub fds: Vec<OwnedFd>,
    out: VecDeque<Chunk>,
    queued: usize,
    pub task: Task,
    /// The client closed its end.
    pub eof: bool,
    /// Close once the output is sent (after an error, or the last reply).
    pub closing: bool,
    /// Reading stopped with input left in the socket (the budget ran out).
    pub more: bool,
}

/// What a read found.
pub enum Read {
    Open,
    /// Broken beyond repair: drop the client.
    Failed,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            framer: Framer::default(),
            fds: Vec::new(),
            out: VecDeque::new(),
            queued: 0,
            task: Task::Idle,
            eof: false,
            closing: false,
            more: false,
        }
    }

    /// Queues a reply.
    pub fn send(&mut self, reply: &Reply) {
        self.send_with(reply, Vec::new());
    }

    /// Queues a reply with fds attached (`SCM_RIGHTS`); ours are closed once sent.
    pub fn send_with(&mut self, reply: &Reply, fds: Vec<OwnedFd>) {
        let bytes = reply.to_line();
        self.queued += bytes.len();
        self.out.push_back(Chunk { bytes, sent: 0, fds });
    }

    /// Queues an error reply and closes after it.
    pub fn fail(&mut self, reply: &Reply) {
        self.send(reply);
        self.closing = true;
    }

    /// Reads what the client sent, up to the budget.
    pub fn read(&mut self) -> Read {
        let mut buf = [0u8; 16 * 1024];
        let mut total = 0;
        self.more = false;
        while !self.eof {
            if total >= READ_BUDGET {
                self.more = true;
                break;
            }
            // While a request is in progress (a stream, a blocking start),
            // what the client sends waits in the socket, not in our memory;
            // once idle, frames are taken and reading goes on next round.
            if self.framer.pending() >= MAX_FRAME {
                self.more = matches!(self.task, Task::Idle);
                break;
            }
            match fdpass::recv(&self.stream, &mut buf, &mut self.fds, true) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    total += n;
                    self.framer.feed(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Read::Failed,
            }
            self.fds.truncate(fdpass::MAX_FDS);
        }
        Read::Open
    }

    /// Sends what is queued until the socket is full. `Err` when the client
    /// is gone or lets too much pile up.
    pub fn flush(&mut self) -> io::Result<()> {
        while let Some(chunk) = self.out.front_mut() {
            let fds: Vec<_> = chunk.fds.iter().map(AsRawFd::as_raw_fd).collect();
            match fdpass::send(&self.stream, &chunk.bytes[chunk.sent..], &fds) {
                Ok(n) => {
                    chunk.fds.clear();
                    chunk.sent += n;
                    self.queued -= n;
                    if chunk.sent == chunk.bytes.len() {
                        self.out.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.queued > MAX_OUTPUT {
            return Err(io::Error::other("the client does not read its replies"));
        }
        Ok(())
    }

    /// Everything queued was sent.
    pub fn flushed(&self) -> bool {
        self.out.is_empty()
    }
}
