//! tend's own stdout and stderr, written without ever blocking the loop.
//!
//! Before [`start`], and in every mode but the init loop, lines are written
//! straight through, as any program does. Once started, each stream gets
//! a descriptor of its own that cannot block and a bounded queue
//! ([`QUEUE_BYTES`]): the lines of one turn of the loop go out together at
//! its end (a restart's four lines in one write, not four), and what the
//! reader has not taken stays queued while the loop watches the stream for
//! writability. When the queue is full, whole lines are dropped and
//! counted; once it has drained, one line says how many were lost.
//!
//! Why not `O_NONBLOCK` on fds 1 and 2: the flag belongs to the open file
//! description, which tend shares with whoever gave it the stream (a
//! terminal's shell, `docker logs`, a service with `stdout = "inherit"`),
//! and programs that write to it would start failing with `EAGAIN`. So:
//! - a pipe or a terminal is opened again through `/proc/self/fd/N`, which
//!   makes a new open file description of the same pipe or terminal, and
//!   `O_NONBLOCK` is set on that one only;
//! - a socket is written with `send(MSG_DONTWAIT)`, non-blocking for this
//!   call alone;
//! - a regular file never makes a writer wait for a reader: it is written
//!   as it is (a full disk drops and counts lines);
//! - should `/proc` be missing, the stream stays blocking, as before.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;

/// Bytes kept per stream while its reader does not read.
pub const QUEUE_BYTES: usize = 1 << 20;

/// The loop's tokens for the two streams (below the control server's).
pub const STDOUT_TOKEN: Token = Token((usize::MAX >> 8) - 2);
pub const STDERR_TOKEN: Token = Token((usize::MAX >> 8) - 1);

/// One of tend's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Our own non-blocking description of a pipe or terminal.
    Own,
    /// A socket: `send(MSG_DONTWAIT)`.
    Socket,
    /// A file (or a stream we could not make non-blocking): written as is.
    Direct,
}

#[derive(Debug)]
struct Sink {
    fd: OwnedFd,
    kind: Kind,
    queue: VecDeque<u8>,
    /// Lines lost since the queue last drained.
    dropped: u64,
    /// Watched for writability by the loop.
    watched: bool,
}

#[derive(Debug, Default)]
struct Output {
    sinks: Option<[Sink; 2]>,
}

static OUTPUT: Mutex<Output> = Mutex::new(Output { sinks: None });

fn lock() -> std::sync::MutexGuard<'static, Output> {
    // Nothing panics while holding it; a poisoned lock is still usable.
    OUTPUT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Switches both streams to non-blocking, queued writing (the init loop).
pub fn start() {
    let sinks = (sink(std::io::stdout().as_fd()), sink(std::io::stderr().as_fd()));
    if let (Some(out), Some(err)) = sinks {
        lock().sinks = Some([out, err]);
    }
}

/// A non-blocking way to write `fd`; `None` keeps it as it is.
fn sink(fd: BorrowedFd) -> Option<Sink> {
    let meta = std::fs::File::from(fd.try_clone_to_owned().ok()?).metadata().ok()?;
    let kind = meta.file_type();
    let (fd, kind) = if kind.is_fifo() || kind.is_char_device() {
        match reopen(fd) {
            Some(own) => (own, Kind::Own),
            None => (fd.try_clone_to_owned().ok()?, Kind::Direct),
        }
    } else if kind.is_socket() {
        (fd.try_clone_to_owned().ok()?, Kind::Socket)
    } else {
        (fd.try_clone_to_owned().ok()?, Kind::Direct)
    };
    Some(Sink {
        fd,
        kind,
        queue: VecDeque::new(),
        dropped: 0,
        watched: false,
    })
}

/// The same pipe or terminal through a new open file description, with
/// `O_NONBLOCK` on it alone.
fn reopen(fd: BorrowedFd) -> Option<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    Some(file.into())
}

/// Writes `text` (whole lines) to `stream`: at the end of the loop's turn
/// (see [`settle`]), or dropped and counted when the queue is full. Never
/// blocks once [`start`] ran.
pub fn write(stream: Stream, text: &[u8]) {
    let mut output = lock();
    let Some(sinks) = output.sinks.as_mut() else {
        drop(output);
        let _ = match stream {
            Stream::Stdout => std::io::stdout().write_all(text),
            Stream::Stderr => std::io::stderr().write_all(text),
        };
        return;
    };
    // Where both streams meet (a terminal, a log collector), lines keep
    // the order they were written in: what the other one holds goes first.
    let [stdout, stderr] = sinks;
    let (sink, other) = match stream {
        Stream::Stdout => (stdout, stderr),
        Stream::Stderr => (stderr, stdout),
    };
    if !other.queue.is_empty() && !other.watched {
        other.flush();
    }
    sink.push(text);
}

impl Sink {
    /// Queues `text` for the next flush; when the queue is full, writes
    /// what the reader takes first, then queues the whole lines that fit
    /// and drops the rest.
    fn push(&mut self, text: &[u8]) {
        let room = |queue: &VecDeque<u8>| QUEUE_BYTES.saturating_sub(queue.len());
        if text.len() > room(&self.queue) && !self.watched {
            self.flush();
        }
        let room = room(&self.queue);
        let kept = match text.len() <= room {
            true => text.len(),
            // Up to the last line's end within the room.
            false => text
                .get(..room)
                .and_then(|head| head.iter().rposition(|b| *b == b'\n'))
                .map_or(0, |at| at.saturating_add(1)),
        };
        let (kept, dropped) = text.split_at(kept);
        self.queue.extend(kept);
        if !dropped.is_empty() {
            self.drop_lines(dropped);
        }
    }

    fn drop_lines(&mut self, text: &[u8]) {
        let lines = text.iter().filter(|b| **b == b'\n').count().max(1) as u64;
        self.dropped = self.dropped.saturating_add(lines);
    }

    /// One write, without waiting.
    fn send(&self, bytes: &[u8]) -> Result<usize, Errno> {
        loop {
            let result = match self.kind {
                Kind::Socket => {
                    use nix::sys::socket::{send, MsgFlags};
                    send(
                        self.fd.as_raw_fd(),
                        bytes,
                        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                    )
                }
                Kind::Own | Kind::Direct => nix::unistd::write(&self.fd, bytes),
            };
            match result {
                Err(Errno::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// Writes what is queued until the reader stops taking it; once all is
    /// out, says how many lines were lost meanwhile. `true` when drained.
    fn flush(&mut self) -> bool {
        loop {
            if self.queue.is_empty() && self.dropped > 0 {
                let note = format!("tend: {} lines dropped (output was blocked)\n", self.dropped);
                self.dropped = 0;
                self.queue.extend(note.as_bytes());
            }
            if self.queue.is_empty() {
                self.queue.shrink_to(4096);
                return true;
            }
            let (front, _) = self.queue.as_slices();
            match self.send(front) {
                Ok(n) => drop(self.queue.drain(..n.min(front.len()))),
                Err(Errno::EAGAIN) => return false,
                Err(_) => {
                    // A reader that is gone: what is queued is lost.
                    let lost = std::mem::take(&mut self.queue);
                    self.drop_lines(lost.as_slices().0);
                    self.dropped = 0;
                    return true;
                }
            }
        }
    }
}

/// Whether `token` is one of the streams'.
pub fn owns(token: Token) -> bool {
    token == STDOUT_TOKEN || token == STDERR_TOKEN
}

/// After each round of the loop (and when a stream became writable):
/// writes what is queued and watches a stream exactly while it has a queue.
pub fn settle(registry: &Registry) {
    let mut output = lock();
    let Some(sinks) = output.sinks.as_mut() else { return };
    for (sink, token) in sinks.iter_mut().zip([STDOUT_TOKEN, STDERR_TOKEN]) {
        let drained = sink.flush();
        let fd = sink.fd.as_raw_fd();
        match (drained, sink.watched) {
            (false, false) => {
                let interest = Interest::WRITABLE;
                sink.watched = registry.register(&mut SourceFd(&fd), token, interest).is_ok();
            }
            (true, true) => {
                let _ = registry.deregister(&mut SourceFd(&fd));
                sink.watched = false;
            }
            _ => {}
        }
    }
}

/// When tend exits: give each reader up to `limit` to take what is queued,
/// then write straight through again.
pub fn finish(limit: Duration) {
    let deadline = Instant::now().checked_add(limit);
    let mut output = lock();
    let Some(mut sinks) = output.sinks.take() else { return };
    drop(output);
    for sink in sinks.iter_mut() {
        while !sink.flush() {
            let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() || !writable(&sink.fd, left) {
                break;
            }
        }
    }
}

/// Waits up to `limit` for `fd` to take more.
fn writable(fd: &OwnedFd, limit: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    let millis = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
    matches!(poll(&mut fds, PollTimeout::from(millis)), Ok(n) if n > 0)
}

/// tend's own log lines, for the logger: queued like everything else.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write(Stream::Stderr, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_sink() -> (Sink, OwnedFd) {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let sink = sink(write.as_fd()).unwrap();
        assert_eq!(sink.kind, Kind::Own);
        (sink, read)
    }

    #[test]
    fn a_stalled_pipe_queues_then_drops_then_reports() {
        let (mut sink, read) = pipe_sink();
        let line = [b'x'; 1023].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        // far more than the pipe and the queue hold; never blocks
        for _ in 0..2048 {
            sink.push(&line);
        }
        assert!(sink.queue.len() <= QUEUE_BYTES);
        assert!(sink.dropped > 0);
        let dropped = sink.dropped;
        assert!(!sink.flush(), "the reader still does not read");
        // the reader reads everything
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
        loop {
            while let Ok(n) = nix::unistd::read(&read, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if sink.flush() {
                break;
            }
        }
        while let Ok(n) = nix::unistd::read(&read, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        let note = format!("tend: {dropped} lines dropped (output was blocked)\n");
        assert!(text.ends_with(&note), "{}", &text[text.len().saturating_sub(200)..]);
        let lines = text.lines().count() as u64;
        assert_eq!(lines + dropped, 2048 + 1, "every line was written whole or counted");
    }

    #[test]
    fn a_turns_lines_wait_for_its_end_and_go_out_in_one_write() {
        let (mut sink, read) = pipe_sink();
        nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
        sink.push(b"tend: a exited\n");
        sink.push(b"tend: started a (pid 7)\n");
        let mut buf = [0u8; 256];
        assert_eq!(
            nix::unistd::read(&read, &mut buf),
            Err(Errno::EAGAIN),
            "held until the turn ends"
        );
        assert!(sink.flush());
        let n = nix::unistd::read(&read, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"tend: a exited\ntend: started a (pid 7)\n");
    }

    #[test]
    fn reopening_leaves_the_shared_description_blocking() {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let _sink = sink(write.as_fd()).unwrap();
        let flags = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        drop(read);
    }
}
