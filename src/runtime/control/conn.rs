//! One client connection of the control server: a non-blocking socket with
//! a bounded input framer and a bounded output queue. Nothing here blocks:
//! reads and writes stop at `WouldBlock`, and a client that lets its
//! replies pile up past [`MAX_OUTPUT`] is dropped. No reply longer than
//! [`MAX_REPLY`] is ever queued, so the client can read all it is sent.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use mio::net::UnixStream;

use super::task::Task;
use crate::ctl::protocol::{code, Framer, Reply, MAX_FRAME, MAX_REPLY};
use crate::sys::fdpass;

/// Replies waiting for a slow reader behind the one being sent, at most;
/// past it the client is dropped. The reply being sent may be longer (a
/// `status` of thousands of services), up to [`MAX_REPLY`].
pub const MAX_OUTPUT: usize = 1 << 20;

/// Bytes read per wake-up from one client at most, so that a client that
/// floods requests cannot keep the loop to itself.
const READ_BUDGET: usize = 256 * 1024;

/// Bytes to send, maybe with fds that go with their first byte.
struct Chunk {
    bytes: Vec<u8>,
    sent: usize,
    fds: Vec<OwnedFd>,
    /// The next chunk is more of the same reply (a batched `status`).
    more: bool,
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

    /// Queues a part of a reply that the next one continues: counted with
    /// it as the reply being sent, not as replies piling up.
    pub fn send_more(&mut self, reply: &Reply) {
        self.send_with(reply, Vec::new());
        if let Some(last) = self.out.back_mut() {
            last.more = true;
        }
    }

    /// Queues a reply with fds attached (`SCM_RIGHTS`); ours are closed once sent.
    pub fn send_with(&mut self, reply: &Reply, fds: Vec<OwnedFd>) {
        let mut bytes = reply.to_line();
        if bytes.len() > MAX_REPLY {
            // The client could not read it: say so in a line it can read.
            let error = format!(
                "the reply would be {} bytes, more than the protocol's {MAX_REPLY}: ask for less (name the services)",
                bytes.len()
            );
            bytes = Reply::error(code::FAILED, error).to_line();
        }
        self.queued = self.queued.saturating_add(bytes.len());
        self.out.push_back(Chunk {
            bytes,
            sent: 0,
            fds,
            more: false,
        });
    }

    /// Queues an error reply and closes after it.
    pub fn fail(&mut self, reply: &Reply) {
        self.send(reply);
        self.closing = true;
    }

    /// Reads what the client sent, up to the budget. Once closing, what
    /// comes is read and dropped: it will never be answered.
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
                Ok(n) if self.closing => total = total.saturating_add(n),
                Ok(n) => {
                    total = total.saturating_add(n);
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
                    chunk.sent = chunk.sent.saturating_add(n);
                    self.queued = self.queued.saturating_sub(n);
                    if chunk.sent == chunk.bytes.len() {
                        self.out.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut sending = 0usize;
        for chunk in &self.out {
            sending = sending.saturating_add(chunk.bytes.len().saturating_sub(chunk.sent));
            if !chunk.more {
                break;
            }
        }
        if self.queued.saturating_sub(sending) > MAX_OUTPUT {
            return Err(io::Error::other("the client does not read its replies"));
        }
        Ok(())
    }

    /// Everything queued was sent.
    pub fn flushed(&self) -> bool {
        self.out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::protocol::Body;

    #[test]
    fn a_reply_the_client_could_not_read_becomes_an_error() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut conn = Conn::new(ours);
        conn.send(&Reply::ok(Body::Log {
            line: "x".repeat(MAX_REPLY),
        }));
        let line = &conn.out[0].bytes;
        assert!(line.len() < 1024, "{} bytes queued", line.len());
        assert!(String::from_utf8_lossy(line).contains("more than the protocol's"));
        conn.send(&Reply::ok(Body::Log {
            line: "x".repeat(MAX_REPLY / 2),
        }));
        assert!(conn.out[1].bytes.len() > MAX_REPLY / 2);
    }

    #[test]
    fn the_batches_of_one_reply_are_not_taken_for_replies_piling_up() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut conn = Conn::new(ours);
        let batch = Reply::ok(Body::Log {
            line: "x".repeat(MAX_OUTPUT / 4),
        });
        for _ in 0..8 {
            conn.send_more(&batch);
        }
        conn.send(&batch);
        assert!(
            conn.flush().is_ok(),
            "nine batches of one reply are the reply being sent"
        );
        // Replies behind them still count.
        for _ in 0..5 {
            conn.send(&batch);
        }
        assert!(conn.flush().is_err());
    }
}
