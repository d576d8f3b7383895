//! Readiness checks of simple services (`ready = { tcp = ... }` or
//! `{ exec = [...] }`): tried at start, then again until one passes, soon
//! at first (a service is often ready a few milliseconds after the first
//! try), then every `RETRY`. The supervisor owns the timeout; this only
//! tries. An exec check runs as its service does (its user, environment
//! and working directory), as systemd runs `ExecStartPost=` and as tend
//! runs a health probe: the command was found at load with those.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use tracing::debug;

use crate::supervisor::{Event, ExitStatus};
use crate::sys::process;
use crate::sys::spawn::{self, Credentials, Spawn};
use crate::unit::Ready;

/// The longest pause between two tries. Only while a service is starting:
/// an idle tend has no check running.
pub const RETRY: Duration = Duration::from_millis(100);

/// The pause after the first failed try; it doubles up to [`RETRY`]. A
/// service is often ready a moment after the first try: 1 ms, not 5, keeps
/// that moment from costing a whole pause (the demo machine's `READY=1`
/// moved by 5 ms with the timing of its first check).
const FIRST_RETRY: Duration = Duration::from_millis(1);

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

/// How an exec check runs: as its service does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsService {
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    pub credentials: Option<Credentials>,
}

/// The check of one starting service.
#[derive(Debug)]
struct Check {
    /// What it tries, for its next try.
    spec: Ready,
    runs: AsService,
    /// How many of its tries failed.
    failed: u32,
    attempt: Attempt,
}

impl Check {
    /// One more failed try: it waits to be tried again.
    fn failed_again(&mut self, now: Instant) {
        self.failed = self.failed.saturating_add(1);
        self.attempt = Attempt::Waiting(retry_at(now, self.failed));
    }
}

/// The checks of every starting service, by service name (one map: each
/// map type with a `remove` costs the binary its own copy of the B-tree's
/// rebalancing code).
#[derive(Debug, Default)]
pub struct Checks {
    checks: BTreeMap<String, Check>,
}

impl Checks {
    /// Starts `name`'s check (a failure count it has is kept); `token` is
    /// free for a connect.
    pub fn start(
        &mut self,
        name: &str,
        check: &Ready,
        runs: AsService,
        token: Token,
        now: Instant,
        registry: &Registry,
    ) {
        let failed = self.checks.get(name).map_or(0, |c| c.failed);
        let (attempt, failed) = try_once(name, check, &runs, failed, token, now, registry);
        match self.checks.get_mut(name) {
            Some(c) => {
                if c.spec != *check {
                    c.spec = check.clone();
                }
                c.runs = runs;
                c.failed = failed;
                c.attempt = attempt;
            }
            None => {
                let spec = check.clone();
                let check = Check {
                    spec,
                    runs,
                    failed,
                    attempt,
                };
                self.checks.insert(name.into(), check);
            }
        }
    }

    /// Tries `name`'s check again, as it was started.
    pub fn retry(&mut self, name: &str, token: Token, now: Instant, registry: &Registry) {
        if let Some(c) = self.checks.get_mut(name) {
            (c.attempt, c.failed) = try_once(name, &c.spec, &c.runs, c.failed, token, now, registry);
        }
    }

    pub fn cancel(&mut self, name: &str, registry: &Registry) {
        match self.checks.remove(name).map(|c| c.attempt) {
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
            self.checks.remove(&name);
            return Some(Some(Event::Ready { name }));
        }
        if let Some(check) = self.checks.get_mut(&name) {
            check.failed_again(now);
        }
        Some(None)
    }

    /// A ready token: `None` when it is no check's; else what it says.
    pub fn answered(&mut self, token: Token, now: Instant, registry: &Registry) -> Option<Option<Event>> {
        let name = self.find(|a| matches!(a, Attempt::Connecting(_, t) if *t == token))?;
        let mut check = self.checks.remove(&name)?;
        let Attempt::Connecting(stream, _) = &mut check.attempt else {
            return Some(None);
        };
        let connected = matches!(stream.take_error(), Ok(None)) && stream.peer_addr().is_ok();
        let _ = registry.deregister(stream);
        if connected {
            return Some(Some(Event::Ready { name }));
        }
        check.failed_again(now);
        self.checks.insert(name, check);
        Some(None)
    }

    /// When a check is due to be tried again.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.checks
            .values()
            .filter_map(|c| {
                if let Attempt::Waiting(at) = c.attempt {
                    Some(at)
                } else {
                    None
                }
            })
            .min()
    }

    /// The services whose checks are due to be tried again.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.checks
            .iter()
            .filter(|(_, c)| matches!(c.attempt, Attempt::Waiting(at) if at <= now))
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn find(&self, which: impl Fn(&Attempt) -> bool) -> Option<String> {
        self.checks
            .iter()
            .find(|(_, c)| which(&c.attempt))
            .map(|(n, _)| n.clone())
    }
}

/// One try of `check`, after `failed` failed ones: what it is doing now,
/// and the count of failures.
fn try_once(
    name: &str,
    check: &Ready,
    runs: &AsService,
    failed: u32,
    token: Token,
    now: Instant,
    registry: &Registry,
) -> (Attempt, u32) {
    let again = |failed: u32| {
        let failed = failed.saturating_add(1);
        (Attempt::Waiting(retry_at(now, failed)), failed)
    };
    match check {
        Ready::Tcp(addr) => match mio::net::TcpStream::connect(*addr) {
            Ok(mut stream) => match registry.register(&mut stream, token, Interest::WRITABLE) {
                Ok(()) => (Attempt::Connecting(stream, token), failed),
                Err(_) => again(failed),
            },
            Err(_) => again(failed),
        },
        Ready::Exec { argv, program } => match run(argv, program, runs) {
            Ok(pid) => (Attempt::Running(pid), failed),
            Err(e) => {
                debug!("{name}: ready check: {e}");
                again(failed)
            }
        },
    }
}

/// Starts the check command as its service runs (see
/// [`super::probe::check_spawn`]).
fn run(argv: &[OsString], program: &Path, runs: &AsService) -> Result<i32, spawn::SpawnError> {
    let cwd = runs.cwd.as_deref();
    let spec = Spawn {
        credentials: runs.credentials.clone(),
        ..super::probe::check_spawn(argv, Some(program), cwd, runs.env.clone())
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
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 100]);
        assert_eq!(retry_at(now, u32::MAX) - now, RETRY);
    }

    /// The pid of `name`'s running check command, reaped: what it
    /// exited with.
    fn reap(checks: &Checks, name: &str) -> (i32, ExitStatus) {
        let Some(Attempt::Running(pid)) = checks.checks.get(name).map(|c| &c.attempt) else {
            panic!("{name}: no check running: {checks:?}");
        };
        (*pid, process::wait_for(*pid, false).unwrap().unwrap())
    }

    #[test]
    fn a_failing_check_keeps_its_spec_and_count_until_it_passes_or_is_cancelled() {
        let poll = mio::Poll::new().unwrap();
        let (token, now) = (Token(7), Instant::now());
        let spec = |program: &str| Ready::Exec {
            argv: vec![program.into()],
            program: program.into(),
        };
        let mut checks = Checks::default();
        checks.start("a", &spec("false"), AsService::default(), token, now, poll.registry());
        let (pid, status) = reap(&checks, "a");
        assert_eq!(checks.exited(pid, status, now), Some(None));
        assert_eq!(checks.exited(pid.saturating_add(1_000_000), status, now), None);
        assert_eq!(checks.next_deadline(), Some(now + FIRST_RETRY));
        assert!(checks.due(now).is_empty());
        assert_eq!(checks.due(now + FIRST_RETRY), ["a"]);
        checks.retry("a", token, now, poll.registry());
        let (pid, status) = reap(&checks, "a");
        assert_eq!(checks.exited(pid, status, now), Some(None));
        assert_eq!(
            checks.next_deadline(),
            Some(now + FIRST_RETRY * 2),
            "the second failure waits longer"
        );
        // A new spec for the same service keeps its count of failures.
        checks.start(
            "a",
            &spec("/nonexistent/check"),
            AsService::default(),
            token,
            now,
            poll.registry(),
        );
        assert_eq!(
            checks.next_deadline(),
            Some(now + FIRST_RETRY * 4),
            "a check that cannot start waits"
        );
        checks.start("a", &spec("true"), AsService::default(), token, now, poll.registry());
        let (pid, status) = reap(&checks, "a");
        let ready = Event::Ready { name: "a".into() };
        assert_eq!(checks.exited(pid, status, now), Some(Some(ready)));
        assert_eq!((checks.next_deadline(), checks.checks.len()), (None, 0));
        checks.start(
            "b",
            &spec("/nonexistent/check"),
            AsService::default(),
            token,
            now,
            poll.registry(),
        );
        assert_eq!(checks.next_deadline(), Some(now + FIRST_RETRY));
        checks.cancel("b", poll.registry());
        assert_eq!((checks.next_deadline(), checks.checks.len()), (None, 0));
    }

    #[test]
    fn an_exec_check_runs_with_its_services_environment_and_directory_each_try() {
        let poll = mio::Poll::new().unwrap();
        let (token, now) = (Token(7), Instant::now());
        let dir = std::env::temp_dir().join(format!("tend-ready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "test \"$MARK\" = yes && test \"$(pwd)\" = {} && test -e go",
            dir.display()
        );
        let check = Ready::Exec {
            argv: ["/bin/sh", "-c", &script].map(OsString::from).to_vec(),
            program: "/bin/sh".into(),
        };
        let runs = AsService {
            env: vec![("MARK".into(), "yes".into())],
            cwd: Some(dir.clone()),
            credentials: None,
        };
        std::fs::write(dir.join("go"), "").unwrap();
        let mut checks = Checks::default();
        // As tend runs, it fails.
        checks.start("a", &check, AsService::default(), token, now, poll.registry());
        let (pid, status) = reap(&checks, "a");
        assert!(!status.success());
        assert_eq!(checks.exited(pid, status, now), Some(None));
        // As the service runs, it fails while `go` is missing, and the
        // retry, run the same way, passes once it is there.
        std::fs::remove_file(dir.join("go")).unwrap();
        checks.start("b", &check, runs, token, now, poll.registry());
        let (pid, status) = reap(&checks, "b");
        assert_eq!(checks.exited(pid, status, now), Some(None));
        std::fs::write(dir.join("go"), "").unwrap();
        checks.retry("b", token, now, poll.registry());
        let (pid, status) = reap(&checks, "b");
        let ready = Event::Ready { name: "b".into() };
        assert_eq!(checks.exited(pid, status, now), Some(Some(ready)));
        checks.cancel("a", poll.registry());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
