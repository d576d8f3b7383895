//! The supervisor: a pure state machine that takes events and the current
//! time and returns actions. It never reads the clock or calls the OS.
//!
//! The event loop drives it like a sans-IO protocol: [`Supervisor::boot`],
//! then for each thing that happens [`Supervisor::handle`] an [`Event`],
//! drain [`Supervisor::poll_action`] and execute each [`Action`], and sleep
//! until [`Supervisor::next_deadline`] (forever when `None`) to feed
//! [`Event::Timer`]. The wall clock, which only schedules read, comes in as
//! data too: [`Supervisor::set_wall`] at boot and after each wake-up. Every
//! change of a service's user-visible state comes out as a [`Change`]
//! (from, to, why, when) through
//! [`Supervisor::poll_change`]; draining changes before each action gives
//! both in the order they happened, which is what the log and the control
//! server's `events` and `wait` consume (nobody diffs `status`).
//!
//! # One service
//!
//! Internal phases and the state users see (`Waiting` and `Delay` are shown as
//! `starting`, with the reason in [`ServiceStatus::detail`]):
//!
//! | phase    | shown    | input             | next                                  |
//! |----------|----------|-------------------|---------------------------------------|
//! | Disabled | disabled | Start             | Waiting                               |
//! | Waiting  | starting | DepsMet           | Spawning, `Spawn`                     |
//! | Waiting  | starting | DepBroken         | Failed(dependency)                    |
//! | Waiting  | starting | Stop              | Exited (or forgotten)                 |
//! | Spawning | starting | Spawned           | Up (ready at once for a simple service without check) |
//! | Spawning | starting | SpawnFailed       | restart policy: Delay / Failed        |
//! | Spawning | starting | Stop, DepBroken   | Stopping (signal once the pid is known) |
//! | Up       | running  | Ready             | Up, ready                             |
//! | Up       | running  | ReadyFailed, Timer (ready timeout) | Stopping, then restart policy as a failed start |
//! | Up       | ready    | Watchdog          | Up, watchdog deadline starts over     |
//! | Up       | ready    | Timer (watchdog)  | Stopping, `Signal(watchdog_signal)`, then restart policy as a failed start |
//! | Up       | any      | WatchdogTrigger   | as Timer (watchdog)                   |
//! | Up, Stopping | any  | Extend            | deadline moved to at least now + N    |
//! | Up       | any      | WatchdogInterval  | the interval for this run (0: off); the deadline starts over if ready |
//! | Up       | any      | Exited            | oneshot 0: Exited; else restart policy: Delay (Waiting at once with no delay) / Exited / Failed |
//! | Up       | any      | Stop, DepBroken   | Stopping, `Signal(stop_signal)`       |
//! | Up       | any      | Announce          | Up, shown stopping                    |
//! | Stopping | stopping | Timer (stop timeout), Kill | Stopping, `KillAll`          |
//! | Stopping | stopping | Exited            | per the stop's `Then`: Exited / Waiting / restart policy / Failed / forgotten |
//! | Stopping | stopping | Stop, Start       | Stopping, with the new `Then` (Start: restart once stopped) |
//! | Delay    | starting | Timer             | Waiting                               |
//! | Exited, Failed | exited, failed | Start | Waiting, backoff and start limit reset |
//! | Failed(dependency) | failed | Start (dependency recovered) | Waiting     |
//!
//! Everything else is logged and ignored. The table is
//! `Service::step` in `service.rs`; the mode × event table is
//! `Supervisor::transition` in `machine.rs`.
//!
//! # Rules
//!
//! * Restart policy: `no`; `on-failure` (a non-zero exit, a signal, a failed
//!   spawn or ready check, but not the end of a stop we asked for);
//!   `always`. A oneshot that exited 0 is done and never restarted.
//! * Restart delay: `restart_delay`, doubled per consecutive restart up to
//!   `restart_delay_max`; a service that stayed up at least
//!   `restart_delay_max` starts the sequence over (computed at exit, no timer).
//! * Start limit: a restart that would make more than `start_limit_burst`
//!   starts within `start_limit_interval` (counted at the restart's due time)
//!   fails the service instead; an operator `Start` clears it.
//! * `after`: start once those are ready (a oneshot: exited 0); a disabled,
//!   stopped or missing one is ignored; a failed one keeps this waiting.
//!   `requires` implies `after`, waits for a disabled or stopped one, and a
//!   missing, invalid or failed-for-good one stops this service and fails it;
//!   it comes back by itself once that dependency is started again (a
//!   scheduled one at its next due time). Only failure propagates: an
//!   operator stop of a dependency leaves dependents up.
//! * `watchdog` (notify services): armed when the service becomes ready,
//!   restarted by each `WATCHDOG=1`; its expiry is a failed start.
//! * `schedule` (oneshots, `runs.rs`): the unit starts idle (`Exited`)
//!   instead of running at boot; at each matching minute (a deadline
//!   computed from the wall clock) an idle one gets `Start`, a busy one
//!   (its last run still going or pending a restart) skips that run. An
//!   operator `Stop` pauses the schedule, `Start` runs it now and resumes
//!   it. An idle scheduled unit counts as up for `READY=1`.
//! * `ready_timeout` counts from the spawn, for notify services, simple ones
//!   with a ready check and oneshots (which are "ready" when they exit 0).
//! * `main`: when it goes down for good (exited, failed, stopped by an
//!   operator; not when it is restarted or removed by a reload) everything
//!   shuts down.
//! * `on_failure = Shutdown`: when the service fails for good (start limit
//!   reached, a failure with restart `no`, a required service failed for
//!   good) everything shuts down, and the exit code is that failure's: the
//!   service's exit code (128+N for signal N), for a dependency failure the
//!   code of the dependency that failed by itself, 1 when no exit explains it.
//! * Shutdown (`shutdown.rs`): reverse dependency order, each service within
//!   its stop timeout, the whole within the global one, then `KillAll` what is
//!   left and `Exit`. Exit code: a fail-fast service's (above); else the main
//!   service's (128+N for signal N) if it has exited; else 1 if a service is failed, needed more than its stop
//!   signal, or was still alive at the timeout; else 0. A second shutdown
//!   request kills everything at once, then exits when all are reaped.
//! * Reload ([`Supervisor::reload`], `reload.rs`): new units start, removed ones stop and are
//!   forgotten, a changed one is stopped and handled like a new unit, an
//!   unchanged one is left alone; a running service whose new unit is invalid
//!   keeps running with the old one and shows the error.
//! * Operator requests answer through `handle`'s `Result` (unknown or invalid
//!   service, shutting down); their effect shows in `status`.
//! * `READY=1` goes up once, when every enabled valid service is up (ready,
//!   or exited 0); `STATUS=` whenever the "N of M services up" line changes;
//!   `STOPPING=1` when shutdown begins.
//! * Liveness (`health.rs`): while a service with a check is up and ready
//!   (and tend is not shutting down), `Probe` it `interval` after it became
//!   ready and `interval` after each answer; no answer within `timeout` is a
//!   failure (`CancelProbe`). Failures within `start_period` of readiness
//!   do not count until a probe passed; `retries` failures in a row make it
//!   unhealthy: `restart` stops it as a failure (its restart policy,
//!   backoff and start limit decide), `shutdown` shuts everything down
//!   (exit code 1), `none` only shows it. Each change of health is a
//!   [`Change`] with the same state.
// PID 1 never dies of an overflow: deadline and counter arithmetic here is
// checked or saturating (tests may use plain operators).
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod backoff;
pub mod config;
mod deps;
mod dirty;
mod health;
mod machine;
mod order;
mod phase;
mod reload;
mod runs;
pub mod schedule;
mod service;
mod shutdown;
mod timers;
mod types;
pub mod zone;

#[cfg(test)]
mod tests;

pub use config::{Definition, HealthPolicy, OnFailure, OnUnhealthy, RestartPolicy, ServiceConfig, ServiceType};
pub use machine::Supervisor;
pub use schedule::{Schedule, ScheduleError};
pub use types::{Action, Change, Event, ExitStatus, Health, ServiceState, ServiceStatus, SupervisorError};
