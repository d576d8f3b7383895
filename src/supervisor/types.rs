//! The supervisor's vocabulary: what comes in ([`Event`]), what goes out
//! ([`Action`]), what users see ([`ServiceStatus`], each [`Change`] of it) and what an operator
//! request can fail with ([`SupervisorError`]).

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use crate::sys::ExitStatus;

/// What the event loop tells the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The loop spawned the service (answer to [`Action::Spawn`]).
    Spawned { name: String, pid: i32 },
    /// The loop could not spawn the service (answer to [`Action::Spawn`]).
    SpawnFailed { name: String, reason: String },
    /// A child was reaped: `service` is the one the loop started it for
    /// (the loop keeps its processes by service), `None` for an orphan.
    /// One whose pid is not that service's process is ignored.
    Exited {
        pid: i32,
        status: ExitStatus,
        service: Option<String>,
    },
    /// `READY=1` arrived, or the ready check passed.
    Ready { name: String },
    /// The ready check gave up.
    ReadyFailed { name: String, reason: String },
    /// `STATUS=` arrived.
    Status { name: String, text: String },
    /// `STOPPING=1` arrived: the service is on its way out by itself.
    Stopping { name: String },
    /// `WATCHDOG=1` arrived: the service is alive.
    Watchdog { name: String },
    /// `WATCHDOG=trigger` arrived: the service asks to be handled as if its
    /// watchdog had expired.
    WatchdogTrigger { name: String },
    /// `EXTEND_TIMEOUT_USEC=` arrived: the current start, stop or watchdog
    /// deadline is moved to at least this long from now.
    ExtendTimeout { name: String, by: std::time::Duration },
    /// `WATCHDOG_USEC=` arrived: the watchdog's interval for the rest of
    /// this run (zero turns it off), the deadline starting over.
    WatchdogInterval { name: String, every: std::time::Duration },
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
    /// A liveness probe's answer (to [`Action::Probe`]): passed, or failed and why.
    ProbeResult { name: String, ok: bool, reason: String },
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
    /// Run the service's liveness check once; answer with [`Event::ProbeResult`].
    Probe { name: String },
    /// Abandon the probe in flight (timed out, or the service went down):
    /// close its connection, kill its command's process group.
    CancelProbe { name: String },
}

/// A service's state as users see it: the one vocabulary of `status`,
/// `events`, `wait` and `health`. Its serde form (lowercase) is its only
/// spelling, on the wire and in text (`Display`, `FromStr` go through it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Waiting for dependencies, for a restart delay, or for the spawn to finish.
    Starting,
    /// Its process runs but is not ready yet (or is a oneshot still running).
    Running,
    /// Its process runs and is ready.
    Ready,
    /// It was asked to stop (or announced `STOPPING=1`) and has not exited yet.
    Stopping,
    /// Down and fine: exited cleanly by itself, or stopped (then its detail says `stopped`).
    Exited,
    /// Down for good until an operator starts it.
    Failed,
    /// Its unit file is invalid; never started.
    Invalid,
    /// Not started at boot; an operator may start it.
    Disabled,
}

impl ServiceState {
    /// Every state, in the order of a service's life.
    pub const ALL: [ServiceState; 8] = [
        ServiceState::Starting,
        ServiceState::Running,
        ServiceState::Ready,
        ServiceState::Stopping,
        ServiceState::Exited,
        ServiceState::Failed,
        ServiceState::Invalid,
        ServiceState::Disabled,
    ];
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self) {
            // `pad`: a width asked for (`tend ctl status`'s column) holds.
            Ok(serde_json::Value::String(word)) => f.pad(&word),
            // Unreachable for a unit variant; never an Err (`to_string` would panic).
            _ => write!(f, "{self:?}"),
        }
    }
}

impl std::str::FromStr for ServiceState {
    type Err = serde_json::Error;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(word.to_string()))
    }
}

/// A service's user-visible state changed: emitted by the supervisor in the
/// order things happened, drained with
/// [`Supervisor::poll_change`](super::Supervisor::poll_change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Numbers the changes from 0, in order.
    pub seq: u64,
    /// The state before; `None` for a service that just appeared (at boot,
    /// or added by a reload).
    pub from: Option<ServiceState>,
    /// The service right after the change: its name, new state, why
    /// (`detail`) and when (`since`). A service removed by a reload shows
    /// its last status, with `removed` set.
    pub to: ServiceStatus,
    pub removed: bool,
}

impl Change {
    pub fn name(&self) -> &str {
        &self.to.name
    }

    pub fn state(&self) -> ServiceState {
        self.to.state
    }

    pub fn at(&self) -> Instant {
        self.to.since
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
    /// Exits the kernel's OOM killer caused.
    pub oom_kills: u32,
    /// The service's own `STATUS=` text.
    pub status_text: Option<String>,
    /// Why it is in this state: "waiting for db", "start limit reached", an
    /// invalid unit's error, a rejected reload.
    pub detail: Option<String>,
    /// Its unit is enabled: it should be up.
    pub enabled: bool,
    /// Down because it was stopped (by an operator, or at shutdown), not by
    /// its own exit.
    pub stopped: bool,
    /// A scheduled unit's next run, on the wall clock.
    pub next_run: Option<std::time::SystemTime>,
    /// Its liveness, while it is up and has a check.
    pub health: Option<Health>,
}

/// What a service's liveness check says, while the service is up and ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No probe has passed yet (and the retries are not used up).
    Starting,
    /// The last probe passed.
    Healthy,
    /// `health-retries` probes in a row failed.
    Unhealthy,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        })
    }
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
