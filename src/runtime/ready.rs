//! Readiness checks of simple services (`ready = { tcp = ... }` or
//! `{ exec = [...] }`): tried at start, then again until one passes, soon
//! at first (a service is often ready a few milliseconds after the first
//! try), then every `RETRY`. The supervisor owns the timeout; this only
//! tries.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use tracing::debug;

use crate::supervisor::{Event, ExitStatus};
use crate::sys::process;
use crate::sys::spawn::{self, Spawn};
use crate::unit::Ready;

/// The longest pause between two tries. Only while a service is starting:
/// an idle tend has no check running.
pub const RETRY: Duration = Duration::from_millis(100);

/// The pause after the first failed try; it doubles up to [`RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(5);

/// When a check that failed `failed` times is tried again (at once if the
/// clock would overflow).
fn retry_at(now: Instant, failed: u32) -> Instant {
    let pause = FIRST_RETRY
        .checked_mul(1 << failed.saturating_sub(1).min(8))
        .map_or(RETRY, |p| p.min(RETRY));
    now.checked_add(pause).unwrap_or(now)
}

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
    /// What each unfinished check tries, for its next try.
    specs: BTreeMap<String, Ready>,
    /// How many tries of each unfinished check failed.
    failed: BTreeMap<String, u32>,
}

impl Checks {
    /// Starts (or retries) `name`'s check; `token` is free for a connect.
    pub fn start(&mut self, name: &str, check: &Ready, token: Token, now: Instant, registry: &Registry) {
        if self.specs.get(name) != Some(check) {
            self.specs.insert(name.into(), check.clone());
        }
        let attempt = match check {
            Ready::Tcp(addr) => match mio::net::TcpStream::connect(*addr) {
                Ok(mut stream) => match registry.register(&mut stream, token, Interest::WRITABLE) {
                    Ok(()) => Attempt::Connecting(stream, token),
                    Err(_) => self.wait(name, now),
                },
                Err(_) => self.wait(name, now),
            },
            Ready::Exec { argv, .. } => match run(argv) {
                Ok(pid) => Attempt::Running(pid),
                Err(e) => {
                    debug!("{name}: ready check: {e}");
                    self.wait(name, now)
                }
            },
        };
        self.attempts.insert(name.into(), attempt);
    }

    /// One more failed try of `name`'s check: when to try again.
    fn wait(&mut self, name: &str, now: Instant) -> Attempt {
        let failed = self.failed.entry(name.into()).or_default();
        *failed = failed.saturating_add(1);
        Attempt::Waiting(retry_at(now, *failed))
    }

    pub fn cancel(&mut self, name: &str, registry: &Registry) {
        self.specs.remove(name);
        self.failed.remove(name);
        match self.attempts.remove(name) {
            Some(Attempt::Running(pid)) => {
                let _ = process::kill(pid.saturating_neg(), libc::SIGKILL);
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
            self.specs.remove(&name);
            self.failed.remove(&name);
            return Some(Some(Event::Ready { name }));
        }
        let waiting = self.wait(&name, now);
        self.attempts.insert(name, waiting);
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
            self.specs.remove(&name);
            self.failed.remove(&name);
            return Some(Some(Event::Ready { name }));
        }
        let waiting = self.wait(&name, now);
        self.attempts.insert(name, waiting);
        Some(None)
    }

    /// When a check is due to be tried again.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.attempts
            .values()
            .filter_map(|a| if let Attempt::Waiting(at) = a { Some(*at) } else { None })
            .min()
    }

    /// The checks due to be tried again, each with what it tries.
    pub fn due(&self, now: Instant) -> Vec<(String, Ready)> {
        self.attempts
            .iter()
            .filter(|(_, a)| matches!(a, Attempt::Waiting(at) if *at <= now))
            .filter_map(|(n, _)| Some((n.clone(), self.specs.get(n)?.clone())))
            .collect()
    }

    fn find(&self, which: impl Fn(&Attempt) -> bool) -> Option<String> {
        self.attempts.iter().find(|(_, a)| which(a)).map(|(n, _)| n.clone())
    }
}

/// Starts the check command, in a session of its own, without a terminal
/// or any of tend's output.
fn run(argv: &[OsString]) -> Result<i32, spawn::SpawnError> {
    let spec = Spawn {
        argv,
        new_group: true,
        new_session: true,
        stdin: spawn::dev_null(),
        stdout: spawn::dev_null(),
        stderr: spawn::dev_null(),
        ..Default::default()
    };
    spawn::spawn(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_is_tried_again_soon_then_every_retry() {
        let now = Instant::now();
        let pauses: Vec<u128> = (1..=8).map(|n| (retry_at(now, n) - now).as_millis()).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 100, 100, 100]);
        assert_eq!(retry_at(now, u32::MAX) - now, RETRY);
    }
}
