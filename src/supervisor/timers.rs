//! When each service next needs a timer, kept per changed service (as
//! `dirty.rs` keeps the counts): the loop's next wake-up, and the services
//! a timer concerns, are found without looking at every service. With
//! thousands of services, those passes were most of the supervisor's work
//! per event. (An exit needs no look-up: the loop names its service.)
//!
//! A service is looked at again when `touch` (every routed input) or a
//! schedule or health change marks it, and all of them after `touch_all`;
//! the index is brought up to date at the end of `settle`, which ends every
//! public entry point.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::config::Definition;
use super::machine::{Mode, Supervisor};
use super::service::Service;

/// What a deadline is for: a phase's own (start or stop timeout, restart
/// delay), a scheduled run, or a health probe. The last two count only
/// while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Phase,
    Run,
    Health,
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    /// Every deadline, in time order.
    due: BTreeSet<(Instant, Kind, String)>,
    /// The entries of `due` of each service that has any.
    of: HashMap<String, Vec<(Instant, Kind)>>,
    /// Services to look at again; `all`: every one.
    stale: BTreeSet<String>,
    all: bool,
}

impl Timers {
    pub(super) fn new() -> Timers {
        Timers {
            all: true,
            ..Timers::default()
        }
    }
}

/// A service's deadlines now.
fn deadlines<U: Definition>(service: &Service<U>) -> Vec<(Instant, Kind)> {
    let phase = service.phase.deadline().map(|at| (at, Kind::Phase));
    let run = service.next_run.map(|run| (run.at, Kind::Run));
    let health = service.health.tracker.as_ref().map(|t| (t.deadline(), Kind::Health));
    phase.into_iter().chain(run).chain(health).collect()
}

impl<U: Definition> Supervisor<U> {
    /// `name`'s pid or deadlines may have changed.
    pub(super) fn retime(&mut self, name: &str) {
        if !self.timers.all && !self.timers.stale.contains(name) {
            self.timers.stale.insert(name.to_string());
        }
    }

    pub(super) fn retime_all(&mut self) {
        self.timers.all = true;
        self.timers.stale.clear();
    }

    /// Brings the index up to date with the services marked.
    pub(super) fn refresh_timers(&mut self) {
        let names: Vec<String> = if std::mem::take(&mut self.timers.all) {
            self.timers.due.clear();
            self.timers.of.clear();
            self.timers.stale.clear();
            self.services.keys().cloned().collect()
        } else {
            std::mem::take(&mut self.timers.stale).into_iter().collect()
        };
        for name in names {
            self.reindex(name);
        }
    }

    fn reindex(&mut self, name: String) {
        let timers = &mut self.timers;
        for (at, kind) in timers.of.remove(&name).unwrap_or_default() {
            timers.due.remove(&(at, kind, name.clone()));
        }
        let Some(service) = self.services.get(&name) else {
            return;
        };
        let now = deadlines(service);
        if now.is_empty() {
            return;
        }
        for &(at, kind) in &now {
            timers.due.insert((at, kind, name.clone()));
        }
        timers.of.insert(name, now);
    }

    /// The earliest deadline of any service (scheduled runs and probes only
    /// while running).
    pub(super) fn earliest_timer(&self) -> Option<Instant> {
        let running = self.mode == Mode::Running;
        let mut due = self.timers.due.iter();
        due.find(|(_, kind, _)| running || *kind == Kind::Phase)
            .map(|(at, _, _)| *at)
    }

    /// The services with a deadline of `kind` at or before `until`.
    pub(super) fn due(&mut self, kind: Kind, until: Instant) -> Vec<String> {
        self.refresh_timers();
        let due = self.timers.due.iter().take_while(|(at, _, _)| *at <= until);
        due.filter(|(_, k, _)| *k == kind)
            .map(|(_, _, name)| name.clone())
            .collect()
    }
}

#[cfg(test)]
impl<U: Definition> Supervisor<U> {
    /// The index says what a look at every service says.
    pub(super) fn check_timers(&self) {
        if self.timers.all || !self.timers.stale.is_empty() {
            return;
        }
        let mut due = BTreeSet::new();
        for service in self.services.values() {
            for (at, kind) in deadlines(service) {
                due.insert((at, kind, service.name.clone()));
            }
        }
        assert_eq!(due, self.timers.due);
    }
}
