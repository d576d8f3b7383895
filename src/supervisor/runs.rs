//! Scheduled runs of oneshot units: the wall clock comes in as data
//! ([`Supervisor::set_wall`]), each scheduled unit's next run becomes a
//! deadline on the loop's clock, and when it is due the unit is started,
//! unless its last run is still going: then this run is skipped and logged.
//! Nothing wakes the loop between runs.
//!
//! The next run is computed once, when the previous one came due (or at
//! boot): a wall clock set forward or back later moves no deadline already
//! set.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::config::Definition;
use super::machine::{Mode, Supervisor};
use super::phase::{Input, Phase};
use super::schedule::Utc;
use super::service::{NextRun, Service};

impl<U: Definition> Supervisor<U> {
    /// The wall clock reads `wall` at `now`. Without it no schedule runs;
    /// the loop passes it at boot and after each wake-up. Only the first
    /// reading arms schedules by itself: after it, every settle that a
    /// wake-up's events cause arms them with the reading of that wake-up,
    /// and a wake-up that brings none (a log line) needs no settle.
    pub fn set_wall(&mut self, now: Instant, wall: SystemTime) {
        if self.wall.replace((now, wall)).is_none() {
            self.settle(now);
        }
    }

    /// Milliseconds since the Unix epoch at `now`, by the last wall reading.
    fn wall_ms(&self, now: Instant) -> Option<i64> {
        let (then, wall) = self.wall?;
        let since_epoch = |d: Duration| i64::try_from(d.as_millis()).ok();
        let at_then = match wall.duration_since(UNIX_EPOCH) {
            Ok(d) => since_epoch(d)?,
            Err(e) => since_epoch(e.duration())?.checked_neg()?,
        };
        match now.checked_duration_since(then) {
            Some(later) => at_then.checked_add(since_epoch(later)?),
            None => at_then.checked_sub(since_epoch(then.saturating_duration_since(now))?),
        }
    }

    /// Gives each scheduled unit whose schedule runs its next run, and
    /// takes it from those whose schedule stopped.
    pub(super) fn arm_schedules(&mut self, now: Instant) {
        let wall_ms = match (self.mode, self.wall_ms(now)) {
            (Mode::Running, Some(ms)) => ms,
            _ => return,
        };
        for name in self.scheduled() {
            let Some(service) = self.services.get_mut(&name) else {
                continue;
            };
            let unit = service.unit.clone().filter(|_| service.schedule_on);
            let Some(schedule) = unit.as_ref().and_then(|u| u.config().schedule.as_ref()) else {
                if service.next_run.take().is_some() {
                    self.retime(&name);
                }
                continue;
            };
            if service.next_run.is_some() {
                continue;
            }
            let after = wall_ms.div_euclid(1000).max(service.last_due.unwrap_or(i64::MIN));
            service.next_run = schedule.next_after(after).and_then(|wall| {
                let wait = wall.checked_mul(1000)?.checked_sub(wall_ms)?;
                let at = now.checked_add(Duration::from_millis(u64::try_from(wait).ok()?))?;
                Some(NextRun { at, wall })
            });
            self.retime(&name);
        }
    }

    /// Starts each scheduled unit whose run is due, or skips the run of one
    /// still busy with its last.
    pub(super) fn run_schedules(&mut self, now: Instant) {
        if self.mode != Mode::Running {
            return;
        }
        let due = self.due(super::timers::Kind::Run, now);
        for name in due {
            let Some(service) = self.services.get_mut(&name) else {
                continue;
            };
            let Some(run) = service.next_run.take() else { continue };
            service.last_due = Some(run.wall);
            let down = matches!(service.phase, Phase::Exited | Phase::Failed(_));
            self.retime(&name);
            match down {
                true => {
                    tracing::info!("{name}: run due at {}", Utc(run.wall));
                    self.route(&name, Input::Start, now);
                }
                false => tracing::info!(
                    "{name}: run due at {} skipped: the previous run is still going",
                    Utc(run.wall)
                ),
            }
        }
    }

    /// When a service's next scheduled run is due, on the wall clock.
    pub(super) fn next_run_of(&self, service: &Service<U>) -> Option<SystemTime> {
        if self.mode != Mode::Running {
            return None;
        }
        let run = service.next_run?;
        UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(run.wall).ok()?))
    }
}
