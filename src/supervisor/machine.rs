//! [`Supervisor`]: the whole set of services, its mode (booting, running,
//! shutting down, done) and [`Supervisor::handle`], whose `transition` is the
//! single mode × event table. Each event is routed to one service's own
//! machine; afterwards `settle` derives what follows from the new states
//! (dependencies met or broken, the next service to stop at shutdown, what to
//! tell the manager above).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use std::rc::Rc;

use super::config::{Definition, OnFailure, ServiceConfig};
use super::dirty::Dirty;
use super::phase::{Cx, Input, Outcome, Phase, Then};
use super::reload::split_cycles;
use super::service::Service;
use super::types::{Action, Change, Event, ExitStatus, ServiceState, ServiceStatus, SupervisorError};

/// Room the action and change queues keep once drained.
const QUEUE_KEPT: usize = 64;

/// The supervision state machine. Pure: time comes in, actions go out.
#[derive(Debug)]
pub struct Supervisor<U = ServiceConfig> {
    pub(super) services: BTreeMap<String, Service<U>>,
    pub(super) mode: Mode,
    pub(super) shutdown_timeout: Duration,
    pub(super) actions: VecDeque<Action>,
    /// Actions polled so far: a change is handed out only once the actions
    /// emitted before it were, so that the loop sees both in order.
    polled: u64,
    /// Each change with the number of actions emitted before it.
    changes: VecDeque<(u64, Change)>,
    /// Changes emitted so far.
    emitted: u64,
    /// The exit code a service with `on-failure = "shutdown"` gave when it
    /// failed for good; it beats every other.
    pub(super) failed_fast: Option<i32>,
    /// The last wall clock reading, and when it was taken (see `runs.rs`).
    pub(super) wall: Option<(Instant, std::time::SystemTime)>,
    /// The last things said to the manager above.
    pub(super) told_ready: bool,
    pub(super) told_status: String,
    /// The counts (up, total, failed) `told_status` was written from.
    pub(super) told_counts: Option<[usize; 3]>,
    /// What to look at again after an event (see `dirty.rs`).
    pub(super) dirty: Dirty,
    /// Pids and deadlines by service (see `timers.rs`).
    pub(super) timers: super::timers::Timers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Before `boot`: nothing is spawned.
    Created,
    Running,
    /// `deadline` is the global shutdown timeout.
    ShuttingDown {
        deadline: Option<Instant>,
    },
    /// `Action::Exit` was emitted; every event is ignored.
    Done,
}

impl<U: Definition> Supervisor<U> {
    /// Takes the units: `services` are valid, `invalid` maps a unit's name to
    /// its error (shown as `invalid`, never started). Services on a dependency
    /// cycle are shown invalid too. Nothing starts before [`Supervisor::boot`].
    pub fn new(
        services: BTreeMap<String, U>,
        invalid: BTreeMap<String, String>,
        shutdown_timeout: Duration,
        now: Instant,
    ) -> Self {
        let (services, invalid) = split_cycles(services, invalid);
        // Collected, not inserted one by one: a B-tree built from sorted
        // keys by inserts leaves its nodes half full, and a service's
        // record is large (+0.4 KiB a service measured at 5000).
        let mut all: BTreeMap<String, Service<U>> = services
            .into_iter()
            .map(|(name, unit)| (name.clone(), Service::new(&name, Rc::new(unit), now)))
            .collect();
        for (name, reason) in invalid {
            all.insert(name.clone(), Service::invalid(&name, reason, now));
        }
        Supervisor {
            services: all,
            mode: Mode::Created,
            shutdown_timeout,
            actions: VecDeque::new(),
            polled: 0,
            changes: VecDeque::new(),
            emitted: 0,
            failed_fast: None,
            wall: None,
            told_ready: false,
            told_status: String::new(),
            told_counts: None,
            dirty: Dirty::new(),
            timers: super::timers::Timers::new(),
        }
    }

    /// Starts every enabled service, each as soon as its dependencies are met:
    /// independent services all at once.
    pub fn boot(&mut self, now: Instant) {
        if self.mode == Mode::Created {
            self.mode = Mode::Running;
            let names: Vec<String> = self.services.keys().cloned().collect();
            for name in names {
                self.record(&name, None);
            }
        }
        self.settle(now);
    }

    /// Feeds one event. Only operator requests (`Start`, `Stop`, `Restart`)
    /// can fail: for an unknown or invalid service, or while shutting down.
    /// Every other event that does not fit the current state is logged and
    /// ignored. Drain [`Supervisor::poll_action`] afterwards.
    pub fn handle(&mut self, event: Event, now: Instant) -> Result<(), SupervisorError> {
        let result = self.transition(event, now);
        self.settle(now);
        result
    }

    /// A new set of units (SIGHUP): `services` are valid, `invalid` maps a
    /// unit's name to its error. The running set is diffed against it (see
    /// `reload.rs`); ignored while shutting down. Drain
    /// [`Supervisor::poll_action`] afterwards.
    pub fn reload(&mut self, services: BTreeMap<String, U>, invalid: BTreeMap<String, String>, now: Instant) {
        match self.mode {
            Mode::ShuttingDown { .. } | Mode::Done => tracing::warn!("reload ignored while shutting down"),
            Mode::Created | Mode::Running => self.diff(services, invalid, now),
        }
        self.touch_all();
        self.settle(now);
    }

    /// The next action for the event loop, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        let Some(action) = self.actions.pop_front() else {
            // A boot of thousands leaves room for thousands: give it back.
            self.actions.shrink_to(QUEUE_KEPT);
            return None;
        };
        self.polled = self.polled.saturating_add(1);
        Some(action)
    }

    /// The next change of a service's state, in the order things happened:
    /// none is handed out before the actions emitted ahead of it were
    /// polled. Drain changes before each action to see both in order.
    pub fn poll_change(&mut self) -> Option<Change> {
        match self.changes.front() {
            Some((after, _)) if *after <= self.polled => self.changes.pop_front().map(|(_, change)| change),
            Some(_) => None,
            None => {
                self.changes.shrink_to(QUEUE_KEPT);
                None
            }
        }
    }

    /// When to feed [`Event::Timer`]; `None` when nothing is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let global = match self.mode {
            Mode::ShuttingDown { deadline } => deadline,
            Mode::Done => return None,
            Mode::Created | Mode::Running => None,
        };
        self.earliest_timer().into_iter().chain(global).min()
    }

    /// The definition a service runs with now (for an `Action::Spawn` or
    /// `Action::StartReadyCheck` just polled); `None` for an unknown or
    /// invalid one.
    pub fn definition(&self, name: &str) -> Option<Rc<U>> {
        self.services.get(name)?.unit.clone()
    }

    /// Every service, by name.
    pub fn status(&self) -> Vec<ServiceStatus> {
        self.services.values().map(|service| self.status_of(service)).collect()
    }

    /// One service, if known.
    pub fn service(&self, name: &str) -> Option<ServiceStatus> {
        self.services.get(name).map(|service| self.status_of(service))
    }

    fn status_of(&self, service: &Service<U>) -> ServiceStatus {
        ServiceStatus {
            name: service.name.clone(),
            state: service.phase.state(),
            pid: service.phase.pid(),
            since: service.since,
            restarts: service.restarts,
            last_exit: service.last_exit,
            oom_kills: service.oom_kills,
            status_text: service.status_text.clone(),
            detail: self.detail(service),
            enabled: service.config().enabled,
            stopped: service.stopped,
            next_run: self.next_run_of(service),
            health: service.health.tracker.as_ref().map(|t| t.health),
        }
    }

    /// Emits a change of `name`'s health (its state is the same).
    pub(super) fn record_health(&mut self, name: &str) {
        let Some(service) = self.services.get(name) else { return };
        let to = self.status_of(service);
        let from = Some(to.state);
        self.push_change(Change {
            seq: 0,
            from,
            to,
            removed: false,
        });
    }

    /// Emits a change if `name`'s state differs from `from` (`None`: it is
    /// new). A service that is gone was removed.
    pub(super) fn record(&mut self, name: &str, from: Option<ServiceState>) {
        let change = match self.services.get(name) {
            Some(service) if from != Some(service.phase.state()) => Change {
                seq: 0,
                from,
                to: self.status_of(service),
                removed: false,
            },
            _ => return,
        };
        self.push_change(change);
    }

    /// A reload removed `service`.
    pub(super) fn record_removal(&mut self, service: &Service<U>, now: Instant) {
        let mut to = self.status_of(service);
        to.since = now;
        let from = Some(to.state);
        self.push_change(Change {
            seq: 0,
            from,
            to,
            removed: true,
        });
    }

    fn push_change(&mut self, mut change: Change) {
        change.seq = self.emitted;
        self.emitted = self.emitted.saturating_add(1);
        let after = self.polled.saturating_add(self.actions.len() as u64);
        self.changes.push_back((after, change));
    }

    /// How many changes were emitted so far: the `seq` of the next one.
    pub fn changes_emitted(&self) -> u64 {
        self.emitted
    }

    /// The mode × event table.
    fn transition(&mut self, event: Event, now: Instant) -> Result<(), SupervisorError> {
        use Event as E;
        use Mode as M;
        match (self.mode, event) {
            (M::Done, event) => tracing::debug!(?event, "ignored after exit"),
            (_, E::Spawned { name, pid }) => self.route(&name, Input::Spawned(pid), now),
            (_, E::SpawnFailed { name, reason }) => self.route(&name, Input::SpawnFailed(reason), now),
            (_, E::Exited { pid, status, service }) => self.reaped(pid, status, service, now),
            (_, E::Ready { name }) => self.route(&name, Input::Ready, now),
            (_, E::ReadyFailed { name, reason }) => self.route(&name, Input::ReadyFailed(reason), now),
            (_, E::Stopping { name }) => self.route(&name, Input::Announce, now),
            (_, E::Watchdog { name }) => self.route(&name, Input::Watchdog, now),
            (_, E::WatchdogTrigger { name }) => self.route(&name, Input::WatchdogTrigger, now),
            (_, E::ExtendTimeout { name, by }) => self.route(&name, Input::Extend(by), now),
            (_, E::WatchdogInterval { name, every }) => self.route(&name, Input::WatchdogInterval(every), now),
            (_, E::Status { name, text }) => self.status_text(&name, text),
            (_, E::Timer) => self.timer(now),
            (M::ShuttingDown { .. }, E::Shutdown) => self.escalate(now),
            (_, E::Shutdown) => self.begin_shutdown(now),
            (M::ShuttingDown { .. }, E::Start { .. } | E::Restart { .. }) => return Err(SupervisorError::ShuttingDown),
            (_, E::Start { name }) => return self.start(&name, now),
            (_, E::Stop { name }) => return self.stop(&name, now),
            (_, E::Restart { name }) => return self.restart(&name, now),
            (_, E::ProbeResult { name, ok, reason }) => self.probe_result(&name, ok, &reason, now),
        }
        Ok(())
    }

    /// Feeds one input to one service's machine and applies the outcome.
    pub(super) fn route(&mut self, name: &str, input: Input, now: Instant) {
        let shutting_down = !matches!(self.mode, Mode::Created | Mode::Running);
        let Some(service) = self.services.get_mut(name) else {
            tracing::debug!(service = name, ?input, "input for an unknown service");
            return;
        };
        let was_down = service.phase.is_down();
        let was_failed = matches!(service.phase, Phase::Failed(_));
        let before = service.phase.state();
        let unit = service.unit.as_ref().map(Rc::as_ptr);
        let mut cx = Cx {
            now,
            actions: &mut self.actions,
            shutting_down,
        };
        let outcome = service.step(input, &mut cx);
        let main_went_down = service.config().main && !was_down && service.phase.is_down();
        let fails_fast = service.config().on_failure == Some(OnFailure::Shutdown)
            && !was_failed
            && matches!(service.phase, Phase::Failed(_));
        let unit_changed = service.unit.as_ref().map(Rc::as_ptr) != unit;
        if outcome == Outcome::Forget {
            if let Some(service) = self.services.remove(name) {
                self.record_removal(&service, now);
            }
            self.touch_all();
            return;
        }
        match unit_changed {
            // Its dependencies may be others now.
            true => self.touch_all(),
            false => self.touch(name),
        }
        self.record(name, Some(before));
        self.follow_health(name, now);
        if fails_fast && !shutting_down {
            self.fail_fast(name, now);
        } else if main_went_down && !shutting_down {
            tracing::info!(service = name, "main service is down, shutting down");
            self.begin_shutdown(now);
        }
    }

    fn reaped(&mut self, pid: i32, status: ExitStatus, service: Option<String>, now: Instant) {
        let owned = |name: &String| self.services.get(name).is_some_and(|s| s.phase.pid() == Some(pid));
        match service.filter(owned) {
            Some(name) => self.route(&name, Input::Exited(status), now),
            None => tracing::debug!(pid, %status, "reaped a process no service owns"),
        }
    }

    fn status_text(&mut self, name: &str, text: String) {
        if let Some(service) = self.services.get_mut(name) {
            service.status_text = Some(text);
        }
    }

    fn timer(&mut self, now: Instant) {
        for name in self.due(super::timers::Kind::Phase, now) {
            self.route(&name, Input::Timer, now);
        }
        self.run_schedules(now);
        self.health_timer(now);
        if let Mode::ShuttingDown { deadline: Some(at) } = self.mode {
            if at <= now {
                self.shutdown_timed_out();
            }
        }
    }

    fn known(&self, name: &str) -> Result<&Service<U>, SupervisorError> {
        let service = self.services.get(name);
        service.ok_or_else(|| SupervisorError::UnknownService { name: name.to_string() })
    }

    /// Known and not invalid.
    fn startable(&self, name: &str) -> Result<&Service<U>, SupervisorError> {
        let service = self.known(name)?;
        match (&service.phase, &service.config_error) {
            (Phase::Invalid, Some(reason)) => Err(SupervisorError::InvalidService {
                name: name.to_string(),
                reason: reason.clone(),
            }),
            _ => Ok(service),
        }
    }

    fn start(&mut self, name: &str, now: Instant) -> Result<(), SupervisorError> {
        self.startable(name)?;
        self.schedule(name, true);
        self.route(name, Input::Start, now);
        Ok(())
    }

    fn stop(&mut self, name: &str, now: Instant) -> Result<(), SupervisorError> {
        self.known(name)?;
        self.schedule(name, false);
        self.route(name, Input::Stop(Then::Down), now);
        Ok(())
    }

    /// An operator start turns a unit's schedule on, a stop off.
    fn schedule(&mut self, name: &str, on: bool) {
        if let Some(service) = self.services.get_mut(name) {
            service.schedule_on = on;
        }
    }

    fn restart(&mut self, name: &str, now: Instant) -> Result<(), SupervisorError> {
        self.schedule(name, true);
        let input = match self.startable(name)?.phase.is_live() {
            true => Input::Stop(Then::Restart),
            false => Input::Start,
        };
        self.route(name, input, now);
        Ok(())
    }

    /// After each event: derive the follow-up inputs, then finish a shutdown
    /// or tell the manager what changed.
    pub(super) fn settle(&mut self, now: Instant) {
        match self.mode {
            Mode::Created | Mode::Done => {}
            Mode::Running => {
                self.reconcile(now);
                self.arm_schedules(now);
                self.notify();
            }
            Mode::ShuttingDown { .. } => {
                self.reconcile(now);
                if !self.services.values().any(|s| s.phase.is_live()) {
                    self.finish();
                }
            }
        }
        self.refresh_timers();
    }
}
