//! Liveness checks, decided here and only carried out by the loop: when to
//! probe, how long an answer may take, how many failures in a row make a
//! service unhealthy, and what follows. A [`Tracker`] exists while its
//! service is up, ready and not stopping; it holds one deadline (the next
//! probe, or the answer awaited), so a service without a check costs no
//! wake-up and one with a check one per interval. A probe may go out up to
//! 1/64 of its interval early when the loop is awake anyway, so that the
//! probes of many services fall into the same wake-ups.

use std::time::{Duration, Instant};

use super::config::Definition;
use super::machine::{Mode, Supervisor};
use super::phase::{Input, Phase, Then};
use super::types::{Action, Health};

/// A unit's `health-*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// From readiness to the first probe, and from each answer to the next probe.
    pub interval: Duration,
    /// How long a probe may take before it counts as failed.
    pub timeout: Duration,
    /// Failures in a row that make the service unhealthy (at least 1).
    pub retries: u32,
    /// From readiness, failures do not count until a probe passed.
    pub start_period: Duration,
    pub on_unhealthy: OnUnhealthy,
}

impl HealthPolicy {
    /// Docker's defaults.
    pub const DEFAULT: HealthPolicy = HealthPolicy {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        retries: 3,
        start_period: Duration::ZERO,
        on_unhealthy: OnUnhealthy::Restart,
    };
}

/// What an unhealthy service leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnhealthy {
    /// Stop it as a failure: its restart policy decides what follows.
    Restart,
    /// Only show it.
    None,
    /// Shut the whole environment down (exit code 1).
    Shutdown,
}

/// One service's liveness while it is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tracker {
    pub health: Health,
    policy: HealthPolicy,
    /// Failures in a row.
    failures: u32,
    /// The end of the start period.
    grace_until: Instant,
    next: Next,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Probe at this time.
    Probe(Instant),
    /// A probe is out; it has failed if not answered by this time.
    Answer(Instant),
}

impl Tracker {
    fn new(policy: HealthPolicy, now: Instant) -> Tracker {
        Tracker {
            health: Health::Starting,
            policy,
            failures: 0,
            grace_until: now.checked_add(policy.start_period).unwrap_or(now),
            next: Next::Probe(after(now, policy.interval)),
        }
    }

    pub(super) fn deadline(&self) -> Instant {
        match self.next {
            Next::Probe(at) | Next::Answer(at) => at,
        }
    }

    /// Due at `now`: a probe within the slack (so that the probes of many
    /// services share wake-ups), an answer's timeout exactly.
    fn due(&self, now: Instant) -> bool {
        match self.next {
            Next::Probe(at) => at <= after(now, slack(self.policy.interval)),
            Next::Answer(at) => at <= now,
        }
    }

    fn awaiting(&self) -> bool {
        matches!(self.next, Next::Answer(_))
    }

    /// Counts an answer; `true` when it made the service unhealthy.
    fn answer(&mut self, ok: bool, now: Instant) -> bool {
        self.next = Next::Probe(after(now, self.policy.interval));
        if ok {
            self.failures = 0;
            self.health = Health::Healthy;
            return false;
        }
        let in_grace = self.health == Health::Starting && now < self.grace_until;
        if in_grace || self.health == Health::Unhealthy {
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < self.policy.retries.max(1) {
            return false;
        }
        self.health = Health::Unhealthy;
        true
    }
}

/// How early a probe may go out: 1/64 of its interval, at most 250ms.
fn slack(interval: Duration) -> Duration {
    interval.checked_div(64).unwrap_or_default().min(MAX_SLACK)
}

/// The most a probe is sent early, to share a wake-up.
const MAX_SLACK: Duration = Duration::from_millis(250);

/// `now + by`, or `now` should the clock overflow (an absurd interval).
fn after(now: Instant, by: Duration) -> Instant {
    now.checked_add(by).unwrap_or(now)
}

/// Where the liveness of one service is kept: its tracker while up, and
/// whether an unhealthy `on-unhealthy = "shutdown"` brought tend down.
#[derive(Debug, Clone, Default)]
pub(super) struct Slot {
    pub tracker: Option<Tracker>,
    pub brought_down: bool,
}

impl<U: Definition> Supervisor<U> {
    /// After a service's transition: start tracking a service that became
    /// ready, stop tracking (cancelling a probe in flight) one that left.
    pub(super) fn follow_health(&mut self, name: &str, now: Instant) {
        let Some(service) = self.services.get_mut(name) else {
            return;
        };
        let policy = service.config().health.as_deref().copied();
        let up = matches!(
            service.phase,
            Phase::Up {
                ready: true,
                stopping: false,
                ..
            }
        );
        match (up, policy, &service.health.tracker) {
            (true, Some(policy), None) => {
                service.health.tracker = Some(Tracker::new(policy, now));
                self.record_health(name);
            }
            (false, _, Some(tracker)) => {
                if tracker.awaiting() {
                    self.actions.push_back(Action::CancelProbe { name: name.into() });
                }
                service.health.tracker = None;
            }
            _ => {}
        }
    }

    /// Sends the probes that are due; fails the ones unanswered in time.
    pub(super) fn health_timer(&mut self, now: Instant) {
        if self.mode != Mode::Running {
            return;
        }
        // Those due within the slack too: `Tracker::due` decides.
        let candidates = self.due(super::timers::Kind::Health, after(now, MAX_SLACK));
        let due: Vec<(String, Next, Duration)> = candidates
            .into_iter()
            .filter_map(|name| {
                let tracker = self.services.get(&name)?.health.tracker.as_ref()?;
                let (next, timeout) = (tracker.next, tracker.policy.timeout);
                tracker.due(now).then_some((name, next, timeout))
            })
            .collect();
        for (name, next, timeout) in due {
            match next {
                Next::Probe(_) => self.probe(&name, timeout, now),
                Next::Answer(_) => {
                    self.actions.push_back(Action::CancelProbe { name: name.clone() });
                    let reason = format!("no answer within {}", humantime::format_duration(timeout));
                    self.answered(&name, false, &reason, now);
                }
            }
        }
    }

    fn probe(&mut self, name: &str, timeout: Duration, now: Instant) {
        if let Some(tracker) = self.tracker(name) {
            tracker.next = Next::Answer(after(now, timeout));
            self.actions.push_back(Action::Probe { name: name.into() });
        }
    }

    /// `Event::ProbeResult`: counts it if a probe is awaited (a late answer
    /// to a probe already timed out or cancelled is dropped).
    pub(super) fn probe_result(&mut self, name: &str, ok: bool, reason: &str, now: Instant) {
        match self.tracker(name) {
            Some(tracker) if tracker.awaiting() => self.answered(name, ok, reason, now),
            _ => tracing::debug!(service = name, ok, "probe answer not awaited"),
        }
    }

    fn answered(&mut self, name: &str, ok: bool, reason: &str, now: Instant) {
        let Some(tracker) = self.tracker(name) else { return };
        let before = tracker.health;
        let unhealthy = tracker.answer(ok, now);
        let (after, action) = (tracker.health, tracker.policy.on_unhealthy);
        if !ok {
            tracing::debug!(service = name, "probe failed: {reason}");
        }
        if after != before {
            self.record_health(name);
        }
        if unhealthy {
            self.unhealthy(name, action, reason, now);
        }
    }

    fn unhealthy(&mut self, name: &str, action: OnUnhealthy, reason: &str, now: Instant) {
        tracing::warn!(service = name, "{name} is unhealthy: {reason}");
        match action {
            OnUnhealthy::None => {}
            OnUnhealthy::Restart => self.route(name, Input::Stop(Then::Fail(format!("unhealthy: {reason}"))), now),
            OnUnhealthy::Shutdown => {
                if let Some(service) = self.services.get_mut(name) {
                    service.health.brought_down = true;
                }
                tracing::info!(service = name, "unhealthy, shutting down");
                self.begin_shutdown(now);
            }
        }
    }

    fn tracker(&mut self, name: &str) -> Option<&mut Tracker> {
        // Its deadline may move.
        self.retime(name);
        self.services.get_mut(name)?.health.tracker.as_mut()
    }
}
