//! Readiness checks of simple services (`ready = { tcp = ... }` or
//! `{ exec = [...] }`): tried at start, then again every `RETRY` until one
//! passes. The supervisor owns the timeout; this only tries.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use tracing::debug;

use crate::supervisor::{Event, ExitStatus};
use crate::sys::process;
use crate::sys::spawn::{self, Spawn};
use crate::unit::Ready;

/// Pause between two tries. Only while a service is starting: an idle tend
/// has no check running.
pub const RETRY: Duration = Duration::from_millis(100);

/// A check in progress.
#[derive(Debug)]
enum Attempt {
    /// A non-blocking connect, registered for writability under this token.
    Connecting(mio::net::TcpStream, Token),
    /// The check command, by pid; its exit status answers.
    Running(i32),
    /// The last try failed; try again at this time.
    Waiting(Instant),
}

/// The checks of every starting service, by service name.
#[derive(Debug, Default)]
pub struct Checks {
    attempts: BTreeMap<String, Attempt>,
}

impl Checks {
    /// Starts (or retries) `name`'s check; `token` is free for a connect.
    pub fn start(&mut self, name: &str, check: &Ready, token: Token, now: Instant, registry: &Registry) {
        let attempt = match check {
            Ready::Tcp(addr) => match mio::net::TcpStream::connect(*addr) {
                Ok(mut stream) => match registry.register(&mut stream, token, Interest::WRITABLE) {
                    Ok(()) => Attempt::Connecting(stream, token),
                    Err(_) => Attempt::Waiting(later(now)),
                },
                Err(_) => Attempt::Waiting(later(now)),
            },
            Ready::Exec { argv, .. } => match run(argv) {
                Ok(pid) => Attempt::Running(pid),
                Err(e) => {
                    debug!("{name}: ready check: {e}");
                    Attempt::Waiting(later(now))
                }
            },
        };
        self.attempts.insert(name.into(), attempt);
    }

    pub fn cancel(&mut self, name: &str, registry: &Registry) {
        match self.attempts.remove(name) {
            Some(Attempt::Running(pid)) => {
                let _ = process::kill(-pid, libc::SIGKILL);
            }
            Some(Attempt::Connecting(mut stream, _)) => {
                let _ = registry.deregister(&mut stream);
            }
            _ => {}
        }
    }

    /// A reaped pid: `None` when it was no check's; else what it says.
    pub fn exited(&mut self, pid: i32, status: ExitStatus, now: Instant) -> Option<Option<Event>> {
        let name = self.find(|a| matches!(a, Attempt::Running(p) if *p == pid))?;
        if status.success() {
            self.attempts.remove(&name);
            return Some(Some(Event::Ready { name }));
        }
        self.attempts.insert(name, Attempt::Waiting(later(now)));
        Some(None)
    }

    /// A ready token: `None` when it is no check's; else what it says.
    pub fn answered(&mut self, token: Token, now: Instant, registry: &Registry) -> Option<Option<Event>> {
        let name = self.find(|a| matches!(a, Attempt::Connecting(_, t) if *t == token))?;
        let Some(Attempt::Connecting(mut stream, _)) = self.attempts.remove(&name) else {
            return Some(None);
        };
        let connected = matches!(stream.take_error(), Ok(None)) && stream.peer_addr().is_ok();
        let _ = registry.deregister(&mut stream);
        if connected {
            return Some(Some(Event::Ready { name }));
        }
        self.attempts.insert(name, Attempt::Waiting(later(now)));
        Some(None)
    }

    /// When a check is due to be tried again.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.attempts
            .values()
            .filter_map(|a| if let Attempt::Waiting(at) = a { Some(*at) } else { None })
            .min()
    }

    /// The services whose check is due to be tried again.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.attempts
            .iter()
            .filter(|(_, a)| matches!(a, Attempt::Waiting(at) if *at <= now))
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn find(&self, which: impl Fn(&Attempt) -> bool) -> Option<String> {
        self.attempts.iter().find(|(_, a)| which(a)).map(|(n, _)| n.clone())
    }
}

/// Starts the check command, in a session of its own, without a terminal
/// or any of tend's output.
fn run(argv: &[String]) -> Result<i32, spawn::SpawnError> {
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let spec = Spawn {
        argv: &argv,
        new_group: true,
        new_session: true,
        stdin: spawn::dev_null(),
        stdout: spawn::dev_null(),
        stderr: spawn::dev_null(),
        ..Default::default()
    };
    spawn::spawn(spec)
}

/// The next attempt's time (`now` itself past the end of time: never a panic).
fn later(now: Instant) -> Instant {
    now.checked_add(RETRY).unwrap_or(now)
}
