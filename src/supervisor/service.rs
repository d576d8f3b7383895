//! One service's state machine: its [`Phase`], the [`Input`]s it takes, and
//! [`Service::step`], the single transition function holding the whole
//! phase × input table. Dependencies, shutdown order and reloads are decided
//! one level up, in the machine, which feeds the resulting inputs here.

use std::time::{Duration, Instant};

use super::backoff::{Backoff, StartLimit};
use std::rc::Rc;

use super::config::{Definition, RestartPolicy, ServiceConfig, ServiceType, INVALID};
use super::health::Slot;
use super::phase::{Cx, Failure, Input, Outcome, Phase, Then};
use super::types::{Action, ExitStatus};

#[derive(Debug, Clone)]
pub(super) struct Service<U> {
    pub name: String,
    /// The one copy of its definition; `None` for an invalid unit.
    pub unit: Option<Rc<U>>,
    /// A reloaded definition, applied once the old instance has stopped.
    pub pending: Option<Rc<U>>,
    /// The unit's error: why it is invalid, or why a reload was refused.
    pub config_error: Option<String>,
    pub phase: Phase,
    pub since: Instant,
    pub restarts: u32,
    pub last_exit: Option<ExitStatus>,
    /// Exits the kernel's OOM killer caused, over the service's life.
    pub oom_kills: u32,
    pub status_text: Option<String>,
    /// The last stop needed more than the stop signal.
    pub unclean_stop: bool,
    /// Down because it was stopped, not by its own exit (cleared by any
    /// later change of state).
    pub stopped: bool,
    /// A scheduled unit's next run, once the supervisor knows the wall clock.
    pub next_run: Option<NextRun>,
    /// Its schedule runs: enabled, or started by an operator; not stopped.
    pub schedule_on: bool,
    /// The wall time (Unix seconds) of the last run that came due: the next
    /// is after it, even if the wall clock was set back a little.
    pub last_due: Option<i64>,
    /// What it added to the counts behind `READY=1`, packed (see `dirty.rs`).
    pub counted: u8,
    backoff: Backoff,
    limit: StartLimit,
    /// When the process of a stop in progress started: a stop that fails
    /// the service (unhealthy, watchdog) paces its restart by that uptime.
    up_since: Option<Instant>,
    /// Liveness, tracked while up (`health.rs`).
    pub health: Slot,
    /// The watchdog's interval the service set for its current run
    /// (`WATCHDOG_USEC=`; zero: off), over the unit's.
    watchdog_override: Option<Duration>,
}

/// When a scheduled run is due: on the loop's clock, and on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NextRun {
    pub at: Instant,
    /// Unix seconds.
    pub wall: i64,
}

/// Where a unit starts: waiting for its dependencies; a scheduled one idle
/// until its first run; a disabled one down.
fn initial_phase(config: &ServiceConfig) -> Phase {
    match (config.enabled, config.schedule.is_some()) {
        (false, _) => Phase::Disabled,
        (true, true) => Phase::Exited,
        (true, false) => Phase::Waiting,
    }
}

impl<U: Definition> Service<U> {
    pub(super) fn new(name: &str, unit: Rc<U>, now: Instant) -> Self {
        let phase = initial_phase(unit.config());
        let schedule_on = unit.config().enabled;
        Service {
            schedule_on,
            ..Service::fresh(name, Some(unit), phase, now)
        }
    }

    pub(super) fn invalid(name: &str, reason: String, now: Instant) -> Self {
        Service {
            config_error: Some(reason),
            ..Service::fresh(name, None, Phase::Invalid, now)
        }
    }

    /// A service in `phase` with no history yet.
    fn fresh(name: &str, unit: Option<Rc<U>>, phase: Phase, now: Instant) -> Self {
        Service {
            name: name.to_string(),
            unit,
            pending: None,
            config_error: None,
            phase,
            since: now,
            restarts: 0,
            last_exit: None,
            oom_kills: 0,
            status_text: None,
            unclean_stop: false,
            stopped: false,
            next_run: None,
            schedule_on: false,
            last_due: None,
            counted: 0,
            backoff: Backoff::default(),
            limit: StartLimit::default(),
            up_since: None,
            health: Slot::default(),
            watchdog_override: None,
        }
    }

    /// What the supervisor decides with.
    pub(super) fn config(&self) -> &ServiceConfig {
        self.unit.as_deref().map_or(&INVALID, Definition::config)
    }

    /// The single transition function: every legal (phase, input) pair is
    /// an arm here; anything else is logged and ignored.
    #[rustfmt::skip] // a table: one line per transition
    pub(super) fn step(&mut self, input: Input, cx: &mut Cx) -> Outcome {
        use {Input as I, Phase as P};
        let now = cx.now;
        let due = self.phase.deadline().is_some_and(|at| at <= now);
        match (self.phase.clone(), input) {
            (P::Disabled | P::Invalid | P::Exited | P::Failed(_), I::Stop(Then::Forget)) => return Outcome::Forget,
            (P::Disabled | P::Exited | P::Failed(_), I::Start) => self.want_up(now),
            (P::Failed(Failure::Dependency(_)), I::Stop(Then::Down)) => self.down(now),

            (P::Waiting, I::DepsMet) => self.spawn(cx),
            (P::Waiting | P::Delay { .. }, I::Stop(then)) => return self.stopped(then, None, cx),
            (P::Waiting | P::Delay { .. }, I::DepBroken(dep)) => self.set(P::Failed(Failure::Dependency(dep)), now),
            (P::Delay { .. }, I::Start) => self.set(P::Waiting, now),
            (P::Delay { .. }, I::Timer) if due => self.set(P::Waiting, now),

            (P::Spawning, I::Spawned(pid)) => self.spawned(pid, cx),
            (P::Spawning, I::SpawnFailed(reason)) => self.failed_start(format!("cannot spawn: {reason}"), cx),
            (P::Spawning, I::Stop(then)) => self.stop_unspawned(then, now),
            (P::Spawning, I::Kill) => self.stop_unspawned(Then::Down, now),
            (P::Spawning, I::DepBroken(dep)) => self.stop_unspawned(Then::Blocked(dep), now),

            (P::Up { ready: false, .. }, I::Ready) if self.readies() => self.ready(now),
            (P::Up { ready: false, .. }, I::ReadyFailed(why)) => self.stop(Then::Fail(format!("not ready: {why}")), cx),
            (P::Up { ready: false, .. }, I::Timer) if due => self.ready_timeout(cx),
            (P::Up { ready: true, .. }, I::Timer) if due => self.watchdog_expired(cx),
            (P::Up { ready: true, .. }, I::Watchdog) => self.pet(now),
            (P::Up { .. }, I::WatchdogTrigger) => self.watchdog_failed("watchdog triggered".into(), cx),
            (P::Up { .. }, I::WatchdogInterval(every)) => self.watchdog_interval(every, now),
            (P::Up { .. } | P::Stopping { .. }, I::Extend(by)) => self.extend(by, now),
            (P::Up { .. }, I::Announce) => self.announce(now),
            (P::Up { since, .. }, I::Exited(status)) => self.exited(status, since, cx),
            (P::Up { .. }, I::Stop(then)) => self.stop(then, cx),
            (P::Up { .. }, I::DepBroken(dep)) => self.stop(Then::Blocked(dep), cx),
            (P::Up { pid, .. }, I::Kill) => self.kill(Some(pid), Then::Down, cx),

            (P::Stopping { pid: None, then, .. }, I::Spawned(pid)) => self.signal(pid, then, cx),
            (P::Stopping { pid: None, then, .. }, I::SpawnFailed(_)) => return self.stopped(then, None, cx),
            (P::Stopping { then, .. }, I::Exited(status)) => return self.stopped(then, Some(status), cx),
            (P::Stopping { pid, then, .. }, I::Timer) if due => self.kill(pid, then, cx),
            (P::Stopping { pid: Some(pid), then, .. }, I::Kill) => self.kill(Some(pid), then, cx),
            (P::Stopping { pid, deadline, .. }, I::Stop(then)) => self.phase = P::Stopping { pid, deadline, then },
            (P::Stopping { pid, deadline, then }, I::Start) if then != Then::Forget => {
                self.phase = P::Stopping { pid, deadline, then: Then::Restart }
            }

            (phase, input) => tracing::debug!(service = %self.name, ?phase, ?input, "ignored input"),
        }
        Outcome::Keep
    }

    fn set(&mut self, phase: Phase, now: Instant) {
        let before = self.phase.state();
        self.phase = phase;
        let after = self.phase.state();
        if after != before {
            self.since = now;
            self.stopped = false;
            tracing::debug!(service = %self.name, "{before} -> {after}");
        }
    }

    /// Stopped and staying down.
    fn down(&mut self, now: Instant) {
        self.set(Phase::Exited, now);
        self.stopped = true;
    }

    fn push(&self, cx: &mut Cx, make: fn(String) -> Action) {
        cx.actions.push_back(make(self.name.clone()));
    }

    /// Does this service become ready by `Event::Ready` (not at spawn, not at exit)?
    fn readies(&self) -> bool {
        match self.config().service_type {
            ServiceType::Notify => true,
            ServiceType::Simple => self.config().has_ready_check,
            ServiceType::Oneshot => false,
        }
    }

    fn has_check(&self) -> bool {
        self.config().has_ready_check && self.config().service_type != ServiceType::Oneshot
    }

    /// Wanted up again by someone: a fresh start, history forgotten.
    fn want_up(&mut self, now: Instant) {
        self.backoff.reset();
        self.limit.reset();
        self.set(Phase::Waiting, now);
    }

    fn spawn(&mut self, cx: &mut Cx) {
        self.limit.record(cx.now);
        self.unclean_stop = false;
        self.push(cx, |name| Action::Spawn { name });
        self.set(Phase::Spawning, cx.now);
    }

    fn spawned(&mut self, pid: i32, cx: &mut Cx) {
        // A new run starts with the unit's watchdog.
        self.watchdog_override = None;
        if self.has_check() {
            self.push(cx, |name| Action::StartReadyCheck { name });
        }
        let ready = !self.readies() && self.config().service_type != ServiceType::Oneshot;
        let deadline = match ready {
            true => None,
            false => self.config().ready_timeout.and_then(|t| cx.now.checked_add(t)),
        };
        let up = Phase::Up {
            pid,
            since: cx.now,
            ready,
            deadline,
            stopping: false,
        };
        self.up_since = Some(cx.now);
        self.set(up, cx.now);
    }

    /// Ready: the ready timeout ends, the watchdog starts (as systemd's,
    /// once start-up is complete).
    fn ready(&mut self, now: Instant) {
        if let Phase::Up {
            pid, since, stopping, ..
        } = self.phase
        {
            let up = Phase::Up {
                pid,
                since,
                ready: true,
                deadline: self.watchdog_deadline(now),
                stopping,
            };
            self.set(up, now);
        }
    }

    fn watchdog_deadline(&self, now: Instant) -> Option<Instant> {
        self.watchdog().and_then(|every| now.checked_add(every))
    }

    /// The watchdog's interval in force: the service's own for this run,
    /// else the unit's; `None`: no watchdog.
    fn watchdog(&self) -> Option<Duration> {
        self.watchdog_override
            .or(self.config().watchdog)
            .filter(|every| !every.is_zero())
    }

    /// `WATCHDOG_USEC=`: the interval for the rest of this run, starting
    /// over now once the service is ready (as systemd's).
    fn watchdog_interval(&mut self, every: Duration, now: Instant) {
        self.watchdog_override = Some(every);
        if let Phase::Up { ready: true, .. } = self.phase {
            self.pet(now);
        }
    }

    /// `WATCHDOG=1`: the watchdog starts over.
    fn pet(&mut self, now: Instant) {
        let next = self.watchdog_deadline(now);
        if let Phase::Up { deadline, .. } = &mut self.phase {
            *deadline = next;
        }
    }

    fn watchdog_expired(&mut self, cx: &mut Cx) {
        let every = self.watchdog().unwrap_or_default();
        let every = humantime::format_duration(every);
        self.watchdog_failed(format!("watchdog timeout: no WATCHDOG=1 within {every}"), cx);
    }

    /// Stopped with the watchdog signal, then handled as a failed start.
    fn watchdog_failed(&mut self, reason: String, cx: &mut Cx) {
        self.stop_with(self.config().watchdog_signal, Then::Fail(reason), cx);
    }

    /// `EXTEND_TIMEOUT_USEC=`: the deadline running now (start, watchdog or
    /// stop) is at least `by` away; one already further is kept.
    fn extend(&mut self, by: Duration, now: Instant) {
        let (Phase::Up { deadline, .. } | Phase::Stopping { deadline, .. }) = &mut self.phase else {
            return;
        };
        if let (Some(at), Some(wanted)) = (deadline.as_mut(), now.checked_add(by)) {
            *at = (*at).max(wanted);
        }
    }

    fn announce(&mut self, now: Instant) {
        if let Phase::Up {
            pid,
            since,
            ready,
            deadline,
            ..
        } = self.phase
        {
            let up = Phase::Up {
                pid,
                since,
                ready,
                deadline,
                stopping: true,
            };
            self.set(up, now);
        }
    }

    fn ready_timeout(&mut self, cx: &mut Cx) {
        let limit = self.config().ready_timeout.unwrap_or_default();
        self.stop(Then::Fail(format!("not ready within {limit:?}")), cx);
    }

    fn cancel_check_if_pending(&self, cx: &mut Cx) {
        if self.has_check() && matches!(self.phase, Phase::Up { ready: false, .. }) {
            self.push(cx, |name| Action::CancelReadyCheck { name });
        }
    }

    /// The process exited without being asked to.
    fn exited(&mut self, status: ExitStatus, since: Instant, cx: &mut Cx) {
        self.up_since = None;
        self.cancel_check_if_pending(cx);
        self.record_exit(status);
        let done = self.config().service_type == ServiceType::Oneshot && status.success();
        if done {
            return self.set(Phase::Exited, cx.now);
        }
        let uptime = cx.now.saturating_duration_since(since);
        self.decide(status.success(), Failure::Exited(status), uptime, cx);
    }

    fn record_exit(&mut self, status: ExitStatus) {
        self.last_exit = Some(status);
        if matches!(status, ExitStatus::OomKilled { .. }) {
            self.oom_kills = self.oom_kills.saturating_add(1);
        }
    }

    fn failed_start(&mut self, reason: String, cx: &mut Cx) {
        self.decide(false, Failure::Start(reason), Duration::ZERO, cx);
    }

    /// The restart policy, the backoff and the start limit decide what follows
    /// an exit or a failed start.
    fn decide(&mut self, success: bool, failure: Failure, uptime: Duration, cx: &mut Cx) {
        let restart = !cx.shutting_down
            && match self.config().restart {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !success,
                RestartPolicy::No => false,
            };
        if !restart {
            let phase = if success { Phase::Exited } else { Phase::Failed(failure) };
            return self.set(phase, cx.now);
        }
        let config = self.unit.as_deref().map_or(&INVALID, Definition::config);
        let delay = self.backoff.next(config, uptime);
        // an overflowing Instant needs an absurd delay; restart at once then
        let until = cx.now.checked_add(delay).unwrap_or(cx.now);
        if self.limit.exceeded(config, until) {
            return self.set(Phase::Failed(Failure::StartLimit), cx.now);
        }
        self.restarts = self.restarts.saturating_add(1);
        // No delay after an exit: start again in this same turn (a timer
        // due now would cost the loop a round). Never after a failed
        // start: each retry must go through the loop, or a spawn that
        // keeps failing would hold it.
        let at_once = delay.is_zero() && !matches!(failure, Failure::Start(_));
        let phase = if at_once {
            Phase::Waiting
        } else {
            Phase::Delay { until }
        };
        self.set(phase, cx.now);
    }

    fn stop(&mut self, then: Then, cx: &mut Cx) {
        self.stop_with(self.config().stop_signal, then, cx);
    }

    fn stop_with(&mut self, signal: i32, then: Then, cx: &mut Cx) {
        self.cancel_check_if_pending(cx);
        match self.phase.pid() {
            Some(pid) => self.signal_with(pid, signal, then, cx),
            None => self.stop_unspawned(then, cx.now),
        }
    }

    fn stop_unspawned(&mut self, then: Then, now: Instant) {
        let phase = Phase::Stopping {
            pid: None,
            deadline: None,
            then,
        };
        self.set(phase, now);
    }

    fn signal(&mut self, pid: i32, then: Then, cx: &mut Cx) {
        self.signal_with(pid, self.config().stop_signal, then, cx);
    }

    fn signal_with(&mut self, pid: i32, signal: i32, then: Then, cx: &mut Cx) {
        cx.actions.push_back(Action::Signal {
            name: self.name.clone(),
            signal,
        });
        let deadline = cx.now.checked_add(self.config().stop_timeout);
        let phase = Phase::Stopping {
            pid: Some(pid),
            deadline,
            then,
        };
        self.set(phase, cx.now);
    }

    fn kill(&mut self, pid: Option<i32>, then: Then, cx: &mut Cx) {
        self.cancel_check_if_pending(cx);
        self.push(cx, |name| Action::KillAll { name });
        let phase = Phase::Stopping {
            pid,
            deadline: None,
            then,
        };
        self.set(phase, cx.now);
    }

    /// A stop completed (`status` is `None` when there was no process).
    fn stopped(&mut self, then: Then, status: Option<ExitStatus>, cx: &mut Cx) -> Outcome {
        let up_since = self.up_since.take();
        if let Some(status) = status {
            self.record_exit(status);
            let clean = status.success() || status == ExitStatus::Signal(self.config().stop_signal);
            self.unclean_stop = !clean;
        }
        match then {
            Then::Down => self.down(cx.now),
            Then::Restart => self.restart(cx.now),
            Then::Fail(reason) => {
                let uptime = match (status, up_since) {
                    (Some(_), Some(since)) => cx.now.saturating_duration_since(since),
                    _ => Duration::ZERO,
                };
                self.decide(false, Failure::Start(reason), uptime, cx);
            }
            Then::Blocked(dep) => self.set(Phase::Failed(Failure::Dependency(dep)), cx.now),
            Then::Forget => return Outcome::Forget,
        }
        Outcome::Keep
    }

    /// Start again after a requested stop; a reloaded config makes it a new unit.
    fn restart(&mut self, now: Instant) {
        let Some(unit) = self.pending.take() else {
            return self.want_up(now);
        };
        let phase = initial_phase(unit.config());
        self.schedule_on = unit.config().enabled;
        self.next_run = None;
        self.unit = Some(unit);
        match phase {
            Phase::Waiting => self.want_up(now),
            phase => self.set(phase, now),
        }
    }
}
