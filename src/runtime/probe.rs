//! Liveness probes (`health`), each carried out once when the supervisor
//! asks (`Action::Probe`) and answered with `Event::ProbeResult`. The
//! supervisor owns timing, retries and timeouts; on a timeout it cancels the
//! probe here, which closes the connection or kills the command's whole
//! process group. Connections are non-blocking and driven by the loop.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use nix::sys::socket::{setsockopt, sockopt};

use crate::supervisor::{Event, ExitStatus};
use crate::sys::process;
use crate::sys::spawn::{self, Spawn};
use crate::unit::{HealthCheck, Unit};

/// Bytes of an HTTP answer kept at most to find its status line.
const MAX_STATUS_LINE: usize = 4096;

/// A probe in flight.
#[derive(Debug)]
enum Probe {
    /// A connect: its success is the answer.
    Tcp { stream: TcpStream, token: Token },
    /// A GET: connect, send `request`, read up to the status line.
    Http {
        stream: TcpStream,
        token: Token,
        request: Vec<u8>,
        sent: usize,
        response: Vec<u8>,
    },
    /// The check command, leader of its own process group.
    Exec { pid: i32 },
}

/// The probes in flight, by service name.
#[derive(Debug, Default)]
pub struct Probes {
    inflight: BTreeMap<String, Probe>,
}

impl Probes {
    /// Starts `unit`'s probe; `token` is free for a connection. `Some` when
    /// it failed at once.
    pub fn start(&mut self, unit: &Unit, token: Token, registry: &Registry, spawn: Spawn) -> Option<Event> {
        let name = unit.name.as_str();
        self.cancel(name, registry);
        let probe = match &**unit.health.as_ref()? {
            HealthCheck::Tcp(addr) => connect(*addr, token, registry).map(|stream| Probe::Tcp { stream, token }),
            HealthCheck::Http { addr, host, path } => connect(*addr, token, registry).map(|stream| Probe::Http {
                stream,
                token,
                request: request(host, path),
                sent: 0,
                response: Vec::new(),
            }),
            HealthCheck::Exec { .. } => spawn::spawn(spawn)
                .map(|pid| Probe::Exec { pid })
                .map_err(|e| e.to_string()),
        };
        match probe {
            Ok(probe) => {
                self.inflight.insert(name.into(), probe);
                None
            }
            Err(reason) => Some(result(name, Err(reason))),
        }
    }

    /// Drops `name`'s probe: closes its connection, kills its command's group.
    pub fn cancel(&mut self, name: &str, registry: &Registry) {
        match self.inflight.remove(name) {
            Some(Probe::Exec { pid }) => kill_group(pid),
            Some(Probe::Tcp { mut stream, .. } | Probe::Http { mut stream, .. }) => {
                let _ = registry.deregister(&mut stream);
            }
            None => {}
        }
    }

    /// A reaped pid: `None` when it was no probe's; else its answer.
    pub fn exited(&mut self, pid: i32, status: ExitStatus) -> Option<Event> {
        let name = self.find(|p| matches!(p, Probe::Exec { pid: p } if *p == pid))?;
        self.inflight.remove(&name);
        // What it left behind in its group goes with it.
        kill_group(pid);
        let answer = if status.success() {
            Ok(())
        } else {
            Err(status.to_string())
        };
        Some(result(&name, answer))
    }

    /// A ready token: `None` when it is no probe's; else its answer, once
    /// there is one.
    pub fn ready(&mut self, token: Token, registry: &Registry) -> Option<Option<Event>> {
        let name =
            self.find(|p| matches!(p, Probe::Tcp { token: t, .. } | Probe::Http { token: t, .. } if *t == token))?;
        let answer = match self.inflight.get_mut(&name)? {
            Probe::Tcp { stream, .. } => {
                // Reset rather than close: no TIME_WAIT left per probe.
                let _ = setsockopt(&*stream, sockopt::Linger, &NO_LINGER);
                Some(connected(stream))
            }
            Probe::Http {
                stream,
                request,
                sent,
                response,
                ..
            } => exchange(stream, request, sent, response),
            Probe::Exec { .. } => None,
        };
        let answer = answer?;
        self.cancel(&name, registry);
        Some(Some(result(&name, answer)))
    }

    fn find(&self, which: impl Fn(&Probe) -> bool) -> Option<String> {
        self.inflight.iter().find(|(_, p)| which(p)).map(|(n, _)| n.clone())
    }
}

fn result(name: &str, answer: Result<(), String>) -> Event {
    let (ok, reason) = match answer {
        Ok(()) => (true, String::new()),
        Err(reason) => (false, reason),
    };
    Event::ProbeResult {
        name: name.into(),
        ok,
        reason,
    }
}

/// The spawn of an exec probe (see [`check_spawn`]).
pub fn exec_spec<'a>(unit: &'a Unit, env: Vec<(OsString, OsString)>) -> Spawn<'a> {
    let (argv, program): (&[OsString], _) = match unit.health.as_deref() {
        Some(HealthCheck::Exec { argv, program }) => (argv, Some(program.as_path())),
        _ => (&[], None),
    };
    check_spawn(argv, program, unit.working_dir.as_deref(), env)
}

/// The spawn of a check command, a liveness probe's or a ready check's:
/// in its service's directory with its variables (the caller adds its
/// user), in a session and process group of its own (so a timeout kills
/// all of it), no terminal, none of tend's output, its program the file
/// found when the unit was loaded, as the service's own is.
pub fn check_spawn<'a>(
    argv: &'a [OsString],
    program: Option<&'a Path>,
    cwd: Option<&'a Path>,
    env: Vec<(OsString, OsString)>,
) -> Spawn<'a> {
    Spawn {
        argv,
        program: program.filter(|p| p.is_absolute()),
        cwd,
        new_group: true,
        new_session: true,
        env,
        stdin: spawn::dev_null().map(Into::into),
        stdout: spawn::dev_null().map(Into::into),
        stderr: spawn::dev_null().map(Into::into),
        ..Default::default()
    }
}

fn kill_group(pid: i32) {
    let _ = process::kill(pid.saturating_neg(), libc::SIGKILL);
}

fn connect(addr: std::net::SocketAddr, token: Token, registry: &Registry) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let interest = Interest::READABLE | Interest::WRITABLE;
    registry
        .register(&mut stream, token, interest)
        .map_err(|e| format!("cannot watch a connection: {e}"))?;
    Ok(stream)
}

/// Whether a non-blocking connect succeeded, once the socket is writable.
fn connected(stream: &TcpStream) -> Result<(), String> {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => Err(format!("cannot connect: {e}")),
        Ok(None) => stream.peer_addr().map(drop).map_err(|e| format!("cannot connect: {e}")),
    }
}

fn request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: tend\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Drives an HTTP probe as far as the socket allows; `Some` once answered.
fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    sent: &mut usize,
    response: &mut Vec<u8>,
) -> Option<Result<(), String>> {
    if *sent == 0 {
        if let Err(e) = connected(stream) {
            return Some(Err(e));
        }
    }
    while *sent < request.len() {
        match stream.write(request.get(*sent..).unwrap_or_default()) {
            Ok(n) => *sent = sent.saturating_add(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Some(Err(format!("cannot send the request: {e}"))),
        }
    }
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(status_verdict(response, true)),
            Ok(n) if !has_line(response) => response.extend_from_slice(buf.get(..n).unwrap_or_default()),
            // The rest of the answer is read only to see the server close.
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock && has_line(response) => {
                // Answered, not closed yet: close without lingering, so
                // that no TIME_WAIT is left behind per probe.
                let _ = setsockopt(&*stream, sockopt::Linger, &NO_LINGER);
                return Some(status_verdict(response, false));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Some(Err(format!("cannot read the answer: {e}"))),
        }
    }
}

/// The status line is in (or too long to be one).
fn has_line(response: &[u8]) -> bool {
    response.contains(&b'\n') || response.len() >= MAX_STATUS_LINE
}

const NO_LINGER: libc::linger = libc::linger {
    l_onoff: 1,
    l_linger: 0,
};

fn status_verdict(response: &[u8], ended: bool) -> Result<(), String> {
    match status_code(response) {
        Some(code) if (200..400).contains(&code) => Ok(()),
        Some(code) => Err(format!("http status {code}")),
        None if ended && response.is_empty() => Err("connection closed without an answer".into()),
        None => Err("not an http answer".into()),
    }
}

/// The status code of an HTTP/1.x answer's first line (`HTTP/1.1 200 OK`).
pub fn status_code(response: &[u8]) -> Option<u16> {
    let end = response.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(response.get(..end)?).ok()?;
    let mut words = line.trim_end_matches('\r').split(' ');
    let version = words.next()?;
    let code = words.next()?;
    let valid = version.starts_with("HTTP/1.") && code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\nX: y\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 302 Found\r\n"), Some(302));
        assert_eq!(status_code(b"HTTP/1.1 503\n"), Some(503));
        assert_eq!(status_code(b"HTTP/1.1 200 OK"), None, "no line end yet");
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(status_code(b"\xff\xfe\n"), None);
    }

    #[test]
    fn verdicts() {
        assert_eq!(status_verdict(b"HTTP/1.1 204 No Content\r\n", false), Ok(()));
        assert_eq!(status_verdict(b"HTTP/1.1 301 Moved\r\n", false), Ok(()));
        assert!(status_verdict(b"HTTP/1.1 404 Not Found\r\n", false).is_err());
        assert!(status_verdict(b"", true).is_err());
        assert!(status_verdict(b"garbage\n", false).is_err());
    }
}
