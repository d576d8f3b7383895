//! `tend ctl exec -t`: tend hands back the master of a pseudo-terminal;
//! the client relays between the user's terminal (in raw mode) and the
//! master, passes window-size changes on, and restores the terminal on
//! the way out, whatever happens.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

use super::client::{Client, ClientError};
use super::protocol::{Body, Exec, Op, Request};
use crate::sys::pty;

/// The user's terminal in raw mode until dropped.
struct Raw {
    saved: Option<Termios>,
}

impl Raw {
    fn enter() -> Raw {
        let stdin = io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Raw { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        Raw { saved: Some(saved) }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, saved);
        }
    }
}

pub fn exec(c: &mut Client, mut request: Exec) -> Result<i32, ClientError> {
    let stdin = io::stdin();
    request.size = pty::size(stdin.as_fd());
    if let Ok(term) = std::env::var("TERM") {
        request.env.insert(0, format!("TERM={term}"));
    }
    c.send(&Request::new(Op::Exec(request)), &[])?;
    let reply = c.reply()?;
    if !matches!(reply.body, Body::Started { .. }) {
        return Err(ClientError::Protocol("expected the command's start".into()));
    }
    let master = c
        .take_fd()
        .ok_or_else(|| ClientError::Protocol("no terminal came with the reply".into()))?;
    let (winch, winch_in) = UnixStream::pair()?;
    winch.set_nonblocking(true)?;
    let id = signal_hook::low_level::pipe::register(libc::SIGWINCH, winch_in)?;
    let raw = Raw::enter();
    let result = relay(c, &master, &winch);
    drop(raw);
    signal_hook::low_level::unregister(id);
    result
}

/// Once the command exited, its last output is still copied until the
/// terminal has been quiet this long...
const QUIET: Duration = Duration::from_millis(100);
/// ...or this long has passed: a background job that keeps the terminal
/// open (`sleep 60 & exit`) does not keep the client (as `docker exec -it`).
const DRAIN: Duration = Duration::from_secs(1);

/// Copies until the command's exit code arrives, then drains; returns the
/// code. Each fd is polled only while it can still give something: a hung
/// up one would be ready forever and make this loop spin.
fn relay(c: &mut Client, master: &OwnedFd, mut winch: &UnixStream) -> Result<i32, ClientError> {
    let stdin = io::stdin();
    let mut stdout = io::stdout();
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    let mut master_open = true;
    let mut exited: Option<(i32, Instant)> = None;
    loop {
        let timeout = match exited {
            None => PollTimeout::NONE,
            Some((_, at)) => {
                let left = DRAIN.saturating_sub(at.elapsed());
                if left.is_zero() || !master_open {
                    break;
                }
                PollTimeout::try_from(left.min(QUIET)).unwrap_or(PollTimeout::ZERO)
            }
        };
        let mut fds = vec![PollFd::new(winch.as_fd(), PollFlags::POLLIN)];
        let m = watch(&mut fds, master.as_fd(), master_open);
        // After the exit code, tend hangs up: nothing more to read there,
        // and the user's keys would only reach a background job.
        let s = watch(&mut fds, c.stream.as_fd(), exited.is_none());
        let i = watch(&mut fds, stdin.as_fd(), stdin_open && exited.is_none());
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e).into()),
        }
        let ready = |at: Option<usize>| {
            at.and_then(|i| fds.get(i))
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (w, m, s, i) = (ready(Some(0)), ready(m), ready(s), ready(i));
        drop(fds);
        if m {
            match read_fd(master.as_fd(), &mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => {
                    stdout.write_all(&buf[..n])?;
                    stdout.flush()?;
                }
            }
        }
        if w {
            let _ = winch.read(&mut buf);
            if let Some((rows, cols)) = pty::size(stdin.as_fd()) {
                let _ = pty::set_size(master, rows, cols);
            }
        }
        if i {
            match read_fd(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                // A terminal that hung up takes no more keys.
                Ok(n) => stdin_open = write_fd(master.as_fd(), &buf[..n]).is_ok(),
            }
        }
        if s {
            match c.recv()? {
                Some(reply) => {
                    if let Body::Exited { code } = reply.body {
                        exited = Some((code, Instant::now()));
                    }
                }
                None => return Err(ClientError::Closed),
            }
        }
    }
    exited.map(|(code, _)| code).ok_or(ClientError::Closed)
}

/// Polls `fd` too when `on`; its index in `fds`.
fn watch<'a>(fds: &mut Vec<PollFd<'a>>, fd: BorrowedFd<'a>, on: bool) -> Option<usize> {
    on.then(|| {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
        fds.len() - 1
    })
}

fn read_fd(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(nix::errno::Errno::EINTR) => {}
            other => return other.map_err(io::Error::from),
        }
    }
}

fn write_fd(fd: BorrowedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
