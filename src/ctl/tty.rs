//! `tend ctl exec -t`: tend hands back the master of a pseudo-terminal;
//! the client relays between the user's terminal (in raw mode) and the
//! master, passes window-size changes on, and restores the terminal on
//! the way out, whatever happens.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

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

/// Copies until the command's exit code arrives.
fn relay(c: &mut Client, master: &OwnedFd, mut winch: &UnixStream) -> Result<i32, ClientError> {
    let stdin = io::stdin();
    let mut stdout = io::stdout();
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    let mut master_open = true;
    let mut exited = None;
    loop {
        if exited.is_some() && !master_open {
            break;
        }
        let socket = c.stream.as_fd();
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(socket, PollFlags::POLLIN),
            PollFd::new(winch.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // Once the command ended, what is left on the master is drained
        // until it goes quiet (a background job may keep the slave open).
        let timeout = if exited.is_some() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e).into()),
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (m, s, w, i) = (ready(0), ready(1), ready(2), ready(3));
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
                Ok(n) => write_fd(master.as_fd(), &buf[..n])?,
            }
        }
        if s && exited.is_none() {
            match c.recv()? {
                Some(reply) => {
                    if let Body::Exited { code } = reply.body {
                        exited = Some(code);
                    }
                }
                None => return Err(ClientError::Closed),
            }
        }
    }
    exited.ok_or(ClientError::Closed)
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
