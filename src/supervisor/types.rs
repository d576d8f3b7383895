//! The supervisor's vocabulary: what comes in ([`Event`]), what goes out
//! ([`Action`]), what users see ([`ServiceStatus`]) and what an operator
//! request can fail with ([`SupervisorError`]).

use std::fmt;
use std::time::Instant;

pub use crate::sys::ExitStatus;

/// What the event loop tells the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The loop spawned the service (answer to [`Action::Spawn`]).
    Spawned { name: String, pid: i32 },
    /// The loop could not spawn the service (answer to [`Action::Spawn`]).
    SpawnFailed { name: String, reason: String },
    /// A child was reaped. Pids the supervisor does not know (orphans) are ignored.
    Exited { pid: i32, status: ExitStatus },
    /// `READY=1` arrived, or the ready check passed.
    Ready { name: String },
    /// The ready check gave up.
    ReadyFailed { name: String, reason: String },
    /// `STATUS=` arrived.
    Status { name: String, text: String },
    /// `STOPPING=1` arrived: the service is on its way out by itself.
    Stopping { name: String },
    /// [`Supervisor::next_deadline`](super::Supervisor::next_deadline) was reached.
    Timer,
    /// Operator: start (also clears a failed service's start limit).
    Start { name: String },
    /// Operator: stop and keep down.
    Stop { name: String },
    /// Operator: stop if up, then start.
    Restart { name: String },
    /// PID 1 was asked to shut down (a second one kills what is left).
    Shutdown,
}

/// What the supervisor asks the event loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn the service; answer with [`Event::Spawned`] or [`Event::SpawnFailed`].
    Spawn { name: String },
    /// Start the service's ready check; answer with [`Event::Ready`] or [`Event::ReadyFailed`].
    StartReadyCheck { name: String },
    /// Stop a ready check that is still running.
    CancelReadyCheck { name: String },
    /// Send a signal to the service's process group (or cgroup).
    Signal { name: String, signal: i32 },
    /// SIGKILL everything the service started.
    KillAll { name: String },
    /// sd_notify upward: `READY=1` if `ready`, `STATUS=status`, `STOPPING=1` if `stopping`.
    NotifyManager {
        ready: bool,
        status: String,
        stopping: bool,
    },
    /// Shutdown is complete: PID 1 exits with this code.
    Exit { code: i32 },
}

/// A service's state as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Waiting for dependencies, for a restart delay, or for the spawn to finish.
    Starting,
    /// Its process runs but is not ready yet (or is a oneshot still running).
    Running,
    /// Its process runs and is ready.
    Ready,
    /// It was asked to stop (or announced `STOPPING=1`) and has not exited yet.
    Stopping,
    /// Down and fine: exited cleanly, or stopped.
    Exited,
    /// Down for good until an operator starts it.
    Failed,
    /// Its unit file is invalid; never started.
    Invalid,
    /// Not started at boot; an operator may start it.
    Disabled,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Ready => "ready",
            ServiceState::Stopping => "stopping",
            ServiceState::Exited => "exited",
            ServiceState::Failed => "failed",
            ServiceState::Invalid => "invalid",
            ServiceState::Disabled => "disabled",
        }
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of `tend status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub pid: Option<i32>,
    /// When `state` last changed.
    pub since: Instant,
    /// Automatic restarts so far.
    pub restarts: u32,
    pub last_exit: Option<ExitStatus>,
    /// The service's own `STATUS=` text.
    pub status_text: Option<String>,
    /// Why it is in this state: "waiting for db", "start limit reached", an
    /// invalid unit's error, a rejected reload.
    pub detail: Option<String>,
}

/// Why an operator request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    #[error("no service named {name}")]
    UnknownService { name: String },
    #[error("service {name} is invalid: {reason}")]
    InvalidService { name: String, reason: String },
    #[error("shutting down")]
    ShuttingDown,
}
