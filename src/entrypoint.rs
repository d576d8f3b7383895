//! The single-command mode (`tend -- CMD`): what tini and dumb-init do.
//!
//! A pure state machine: it takes events (signals received, processes
//! reaped, deadlines) and the current time, and returns actions. The event
//! loop in `runtime::entrypoint` does the syscalls.
//!
//! ```text
//!  Running --child exited--> Draining --no child left--> Done
//!     |  signal: forward        |  deadline or 2nd stop signal: SIGKILL strays
//! ```

use std::time::{Duration, Instant};

use crate::sys::ExitStatus;

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Forward signals to the child's whole process group (`-g`).
    pub group: bool,
    /// Exit codes of the child that are reported as 0 (`-e`).
    pub success_codes: Vec<i32>,
    /// How long strays get between SIGTERM and SIGKILL.
    pub grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A signal reached tend (not SIGCHLD: reaping reports `Exited`).
    Signal(i32),
    Exited {
        pid: i32,
        status: ExitStatus,
    },
    /// No child is left at all.
    NoChildren,
    /// `next_deadline` has passed.
    Timer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send `signal` to `pid` (negative: a process group).
    Signal {
        pid: i32,
        signal: i32,
    },
    /// Send `signal` to every process left behind by the child.
    SignalStrays(i32),
    Exit(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// The child is gone; strays are being stopped. `kill_at` is when they
    /// get SIGKILL, `None` once they have.
    Draining {
        code: i32,
        kill_at: Option<Instant>,
    },
    Done,
}

pub struct Entrypoint {
    child: i32,
    settings: Settings,
    state: State,
}

impl Entrypoint {
    pub fn new(child: i32, settings: Settings) -> Self {
        Entrypoint {
            child,
            settings,
            state: State::Running,
        }
    }

    /// The one transition function.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match (self.state, event) {
            (State::Running, Event::Signal(sig)) => vec![self.forward(sig)],
            (State::Running, Event::Exited { pid, status }) if pid == self.child => self.child_exited(status, now),
            (State::Draining { code, .. }, Event::NoChildren) => {
                self.state = State::Done;
                vec![Action::Exit(code)]
            }
            (
                State::Draining {
                    code,
                    kill_at: Some(at),
                },
                Event::Timer,
            ) if now >= at => self.kill_strays(code),
            (State::Draining { code, kill_at: Some(_) }, Event::Signal(sig)) if is_stop(sig) => self.kill_strays(code),
            _ => Vec::new(),
        }
    }

    /// When the loop must wake up even if nothing happens.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Draining { kill_at, .. } => kill_at,
            _ => None,
        }
    }

    fn forward(&self, sig: i32) -> Action {
        // A halt or power-fail request is a graceful stop of the child.
        let signal = if sig == libc::SIGPWR || sig == crate::signal::halt() {
            libc::SIGTERM
        } else {
            sig
        };
        let pid = if self.settings.group { -self.child } else { self.child };
        Action::Signal { pid, signal }
    }

    fn child_exited(&mut self, status: ExitStatus, now: Instant) -> Vec<Action> {
        let code = match status.code() {
            c if self.settings.success_codes.contains(&c) => 0,
            c => c,
        };
        self.state = State::Draining {
            code,
            kill_at: now.checked_add(self.settings.grace.min(FOREVER)),
        };
        vec![Action::SignalStrays(libc::SIGTERM)]
    }

    fn kill_strays(&mut self, code: i32) -> Vec<Action> {
        self.state = State::Draining { code, kill_at: None };
        vec![Action::SignalStrays(libc::SIGKILL)]
    }
}

/// A grace this long is forever; clamped so that the deadline stays on the
/// clock (`--grace` comes from outside).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Signals that ask tend itself to stop.
fn is_stop(sig: i32) -> bool {
    [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGPWR,
        crate::signal::halt(),
    ]
    .contains(&sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: i32 = 42;

    fn machine(group: bool, success_codes: Vec<i32>) -> Entrypoint {
        let grace = Duration::from_secs(5);
        Entrypoint::new(
            CHILD,
            Settings {
                group,
                success_codes,
                grace,
            },
        )
    }

    #[test]
    fn forwards_signals_to_child_or_group() {
        let now = Instant::now();
        let mut m = machine(false, vec![]);
        assert_eq!(
            m.handle(Event::Signal(libc::SIGUSR1), now),
            [Action::Signal {
                pid: CHILD,
                signal: libc::SIGUSR1
            }]
        );
        let mut g = machine(true, vec![]);
        assert_eq!(
            g.handle(Event::Signal(libc::SIGHUP), now),
            [Action::Signal {
                pid: -CHILD,
                signal: libc::SIGHUP
            }]
        );
    }

    #[test]
    fn halt_and_power_fail_become_sigterm() {
        let now = Instant::now();
        let mut m = machine(false, vec![]);
        for sig in [libc::SIGPWR, crate::signal::halt()] {
            assert_eq!(
                m.handle(Event::Signal(sig), now),
                [Action::Signal {
                    pid: CHILD,
                    signal: libc::SIGTERM
                }]
            );
        }
    }

    #[test]
    fn exit_code_after_strays_are_gone() {
        let now = Instant::now();
        let mut m = machine(false, vec![]);
        let exited = Event::Exited {
            pid: CHILD,
            status: ExitStatus::Signal(libc::SIGTERM),
        };
        assert_eq!(m.handle(exited, now), [Action::SignalStrays(libc::SIGTERM)]);
        assert_eq!(m.next_deadline(), Some(now + Duration::from_secs(5)));
        assert_eq!(m.handle(Event::NoChildren, now), [Action::Exit(143)]);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn strays_get_sigkill_after_grace() {
        let now = Instant::now();
        let mut m = machine(false, vec![]);
        m.handle(
            Event::Exited {
                pid: CHILD,
                status: ExitStatus::Code(0),
            },
            now,
        );
        assert!(m.handle(Event::Timer, now + Duration::from_secs(4)).is_empty());
        let later = now + Duration::from_secs(5);
        assert_eq!(m.handle(Event::Timer, later), [Action::SignalStrays(libc::SIGKILL)]);
        assert_eq!(m.next_deadline(), None);
        assert_eq!(m.handle(Event::NoChildren, later), [Action::Exit(0)]);
    }

    #[test]
    fn second_stop_signal_while_draining_kills_at_once() {
        let now = Instant::now();
        let mut m = machine(false, vec![]);
        m.handle(
            Event::Exited {
                pid: CHILD,
                status: ExitStatus::Code(1),
            },
            now,
        );
        assert_eq!(
            m.handle(Event::Signal(libc::SIGINT), now),
            [Action::SignalStrays(libc::SIGKILL)]
        );
        assert!(m.handle(Event::Signal(libc::SIGUSR1), now).is_empty());
    }

    /// Found by `fuzz/` (duration): `--grace 15555555555555555551s` made
    /// PID 1 panic when its child exited ("overflow when adding duration to
    /// instant"). A grace beyond the clock is forever, and a second stop
    /// signal still kills the strays.
    #[test]
    fn grace_beyond_the_clock_is_forever() {
        let now = Instant::now();
        let settings = Settings {
            group: false,
            success_codes: vec![],
            grace: Duration::MAX,
        };
        let mut m = Entrypoint::new(CHILD, settings);
        let exited = Event::Exited {
            pid: CHILD,
            status: ExitStatus::Code(1),
        };
        assert_eq!(m.handle(exited, now), [Action::SignalStrays(libc::SIGTERM)]);
        assert!(m
            .next_deadline()
            .is_some_and(|at| at > now + Duration::from_secs(3600 * 24 * 365)));
        assert_eq!(
            m.handle(Event::Signal(libc::SIGTERM), now),
            [Action::SignalStrays(libc::SIGKILL)]
        );
    }

    #[test]
    fn success_codes_map_to_zero() {
        let now = Instant::now();
        let mut m = machine(false, vec![143]);
        m.handle(
            Event::Exited {
                pid: CHILD,
                status: ExitStatus::Signal(libc::SIGTERM),
            },
            now,
        );
        assert_eq!(m.handle(Event::NoChildren, now), [Action::Exit(0)]);
    }

    #[test]
    fn other_pids_and_early_events_are_ignored() {
        let now = Instant::now();
        let mut m = machine(false, vec![]);
        assert!(m
            .handle(
                Event::Exited {
                    pid: 7,
                    status: ExitStatus::Code(1)
                },
                now
            )
            .is_empty());
        assert!(m.handle(Event::NoChildren, now).is_empty());
        assert!(m.handle(Event::Timer, now).is_empty());
        assert_eq!(m.next_deadline(), None);
    }
}
