//! The vocabulary of one service's state machine: its [`Phase`], the
//! [`Input`]s it takes, and what a stop leads to ([`Then`]). The transitions
//! themselves live in [`Service::step`](super::service::Service::step).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::types::{Action, ExitStatus, ServiceState};

/// Where a service is; richer than the [`ServiceState`] users see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    Disabled,
    Invalid,
    /// Wants to run; some dependency is not met yet.
    Waiting,
    /// Restart pending until `until`.
    Delay {
        until: Instant,
    },
    /// `Action::Spawn` is out; no pid yet.
    Spawning,
    /// The process runs. `deadline` is the ready timeout while not ready,
    /// the watchdog's once ready; `stopping` is set by `STOPPING=1`.
    Up {
        pid: i32,
        since: Instant,
        ready: bool,
        deadline: Option<Instant>,
        stopping: bool,
    },
    /// Stop signal sent (or due once the pid is known); `deadline` is when to
    /// escalate to `KillAll`, `None` once that happened.
    Stopping {
        pid: Option<i32>,
        deadline: Option<Instant>,
        then: Then,
    },
    Exited,
    Failed(Failure),
}

impl Phase {
    /// The state users see.
    pub(super) fn state(&self) -> ServiceState {
        match self {
            Phase::Disabled => ServiceState::Disabled,
            Phase::Invalid => ServiceState::Invalid,
            Phase::Waiting | Phase::Delay { .. } | Phase::Spawning => ServiceState::Starting,
            Phase::Up { stopping: true, .. } | Phase::Stopping { .. } => ServiceState::Stopping,
            Phase::Up { ready: true, .. } => ServiceState::Ready,
            Phase::Up { .. } => ServiceState::Running,
            Phase::Exited => ServiceState::Exited,
            Phase::Failed(_) => ServiceState::Failed,
        }
    }

    pub(super) fn pid(&self) -> Option<i32> {
        match *self {
            Phase::Up { pid, .. } => Some(pid),
            Phase::Stopping { pid, .. } => pid,
            _ => None,
        }
    }

    /// A process exists (or is being spawned).
    pub(super) fn is_live(&self) -> bool {
        matches!(self, Phase::Spawning | Phase::Up { .. } | Phase::Stopping { .. })
    }

    /// Down until someone starts it: exited or failed.
    pub(super) fn is_down(&self) -> bool {
        matches!(self, Phase::Exited | Phase::Failed(_))
    }

    /// The next moment this service needs a `Timer`.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match *self {
            Phase::Delay { until } => Some(until),
            Phase::Up { deadline, .. } => deadline,
            Phase::Stopping { deadline, .. } => deadline,
            _ => None,
        }
    }
}

/// What happens once a stop completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Then {
    /// Stay down.
    Down,
    /// Start again at once (operator restart, changed config).
    Restart,
    /// A failed start: the restart policy decides.
    Fail(String),
    /// A required dependency failed for good.
    Blocked(String),
    /// Removed by a reload: drop the service.
    Forget,
}

/// Why a service is down for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    Exited(ExitStatus),
    Start(String),
    StartLimit,
    Dependency(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Exited(status) => write!(f, "{status}"),
            Failure::Start(reason) => write!(f, "{reason}"),
            Failure::StartLimit => f.write_str("start limit reached"),
            Failure::Dependency(dep) => write!(f, "required service {dep} is down for good"),
        }
    }
}

/// What can happen to one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Input {
    /// Wanted up (boot, operator, reload, a required dependency recovered).
    Start,
    /// All dependencies are met.
    DepsMet,
    Spawned(i32),
    SpawnFailed(String),
    Ready,
    ReadyFailed(String),
    Announce,
    /// `WATCHDOG=1`.
    Watchdog,
    /// `WATCHDOG=trigger`.
    WatchdogTrigger,
    /// `EXTEND_TIMEOUT_USEC=`.
    Extend(Duration),
    /// `WATCHDOG_USEC=`.
    WatchdogInterval(Duration),
    Exited(ExitStatus),
    Stop(Then),
    /// Second shutdown request: kill without waiting.
    Kill,
    /// A deadline may have passed.
    Timer,
    /// A required dependency failed for good.
    DepBroken(String),
}

/// What the transition tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Keep,
    Forget,
}

/// The transition's view of the world.
pub(super) struct Cx<'a> {
    pub now: Instant,
    pub actions: &'a mut VecDeque<Action>,
    pub shutting_down: bool,
}
