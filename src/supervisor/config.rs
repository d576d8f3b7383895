//! What the supervisor needs to know of one service: the decisions-relevant
//! part of a unit file, already validated. The unit module builds these; the
//! supervisor never sees TOML, paths or users.

use std::time::Duration;

pub use super::health::{HealthPolicy, OnUnhealthy};
use super::schedule::Schedule;

/// When a service counts as up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// Up once exec succeeded (or once its `ready` check passed, if it has one).
    Simple,
    /// Runs to completion; dependents start after it exited 0.
    Oneshot,
    /// Up when it sends `READY=1` over `$NOTIFY_SOCKET`.
    Notify,
}

/// Whether a service that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    OnFailure,
    Always,
}

/// What a service failing for good does to the whole environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Nothing: it stays failed, the others run on.
    None,
    /// Everything stops gracefully and tend exits with this service's code.
    Shutdown,
}

/// The supervisor's view of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub service_type: ServiceType,
    /// A `ready` check (tcp or exec) decides readiness of a simple service.
    pub has_ready_check: bool,
    /// How long starting may take before the service counts as failed to start.
    pub ready_timeout: Option<Duration>,
    pub restart: RestartPolicy,
    pub restart_delay: Duration,
    pub restart_delay_max: Duration,
    pub start_limit_burst: u32,
    pub start_limit_interval: Duration,
    /// Start after these are ready (order only).
    pub after: Vec<String>,
    /// Start after these are ready, and stop when one of them fails for good.
    pub requires: Vec<String>,
    /// Signal number sent first when stopping.
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// When this service exits, the whole environment shuts down with its code.
    pub main: bool,
    /// Started at boot.
    pub enabled: bool,
    /// A notify service must send `WATCHDOG=1` this often once ready, or it
    /// is stopped with `watchdog_signal` and counts as failed.
    pub watchdog: Option<Duration>,
    pub watchdog_signal: i32,
    /// A oneshot run at each matching minute instead of at boot.
    pub schedule: Option<Box<Schedule>>,
    /// What its failing for good does; `None`: what `tend init
    /// --on-failure` says (the supervisor takes it as [`OnFailure::None`]).
    pub on_failure: Option<OnFailure>,
    /// A liveness check, probed while the service is up and ready.
    pub health: Option<Box<HealthPolicy>>,
}

/// A service's whole definition as the supervisor holds it: the part it
/// decides with ([`ServiceConfig`]) and whatever the event loop needs to run
/// it (a unit's command, user, environment...). The supervisor keeps the one
/// copy; the loop borrows it through
/// [`Supervisor::definition`](super::Supervisor::definition).
pub trait Definition: std::fmt::Debug {
    fn config(&self) -> &ServiceConfig;
    /// Whether a reload from `self` to `new` leaves the running service as
    /// it is; `false` restarts it.
    fn unchanged(&self, new: &Self) -> bool;
}

/// The supervision part alone is a definition (the supervisor's own tests
/// use it).
impl Definition for ServiceConfig {
    fn config(&self) -> &ServiceConfig {
        self
    }

    fn unchanged(&self, new: &Self) -> bool {
        self == new
    }
}

/// What an invalid unit is supervised with: never started.
pub(super) static INVALID: ServiceConfig = ServiceConfig::defaults(false);

impl ServiceConfig {
    /// Every key's default, as a unit file without it gets.
    pub const DEFAULT: ServiceConfig = ServiceConfig::defaults(true);

    const fn defaults(enabled: bool) -> ServiceConfig {
        ServiceConfig {
            service_type: ServiceType::Simple,
            has_ready_check: false,
            ready_timeout: None,
            restart: RestartPolicy::OnFailure,
            restart_delay: Duration::from_millis(100),
            restart_delay_max: Duration::from_secs(30),
            start_limit_burst: 5,
            start_limit_interval: Duration::from_secs(10),
            after: Vec::new(),
            requires: Vec::new(),
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            main: false,
            enabled,
            on_failure: None,
            watchdog: None,
            watchdog_signal: libc::SIGABRT,
            schedule: None,
            health: None,
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig::DEFAULT
    }
}
