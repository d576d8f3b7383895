//! Bookkeeping that keeps the work per event independent of the number of
//! services: after an event only the services whose state changed, and
//! their neighbours in the dependency graph, are looked at again
//! (`reconcile`), and the counts behind `READY=1` and `STATUS=` are kept up
//! to date per changed service instead of recounted.
//!
//! Anything that changes the set of services or a unit (a reload, a
//! forgotten service, a pending unit taking over) or the mode marks
//! everything: the next settle then looks at every service, as if this
//! module did not exist.

use std::collections::{BTreeMap, BTreeSet};

use super::config::Definition;
use super::machine::{Mode, Supervisor};
use super::order::dependencies;
use super::phase::Phase;
use super::service::Service;

#[derive(Debug, Default)]
pub(super) struct Dirty {
    /// Changed since `reconcile` last looked.
    touched: BTreeSet<String>,
    /// Changed since the counts were last updated.
    recount: BTreeSet<String>,
    /// Look at every service (and count them all) at the next settle.
    all: bool,
    recount_all: bool,
    /// The mode when `reconcile` last looked: what services want depends on it.
    mode: Option<Mode>,
    /// `None` when it must be rebuilt.
    graph: Option<Graph>,
    counts: Counts,
    /// Services `reconcile` looked at, for the tests.
    #[cfg(test)]
    pub(super) looked: usize,
}

/// Who depends on whom, built from the units when needed.
#[derive(Debug, Default)]
struct Graph {
    /// For each name, the services that list it in `requires` or `after`.
    dependents: BTreeMap<String, Vec<String>>,
    /// Services with a schedule, or with a next run left from one.
    scheduled: Vec<String>,
}

/// What `notify` reports, summed over the services.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    /// Neither disabled nor invalid.
    pub total: usize,
    pub up: usize,
    pub failed: usize,
    /// Enabled, valid and not up: what `READY=1` still waits for.
    pub holding: usize,
}

impl Counts {
    fn of<U: Definition>(service: &Service<U>) -> Counts {
        let counted = !matches!(service.phase, Phase::Disabled | Phase::Invalid);
        let up = Supervisor::is_up(service);
        let enabled = service.config().enabled && service.phase != Phase::Invalid;
        Counts {
            total: usize::from(counted),
            up: usize::from(counted && up),
            failed: usize::from(counted && matches!(service.phase, Phase::Failed(_))),
            holding: usize::from(enabled && !up),
        }
    }

    /// One byte, as kept on each service (thousands of them).
    pub(super) fn pack(self) -> u8 {
        let bit = |n: usize, at: u8| u8::from(n > 0) << at;
        bit(self.total, 0) | bit(self.up, 1) | bit(self.failed, 2) | bit(self.holding, 3)
    }

    fn unpack(bits: u8) -> Counts {
        let bit = |at: u8| usize::from(bits & (1 << at) != 0);
        Counts {
            total: bit(0),
            up: bit(1),
            failed: bit(2),
            holding: bit(3),
        }
    }

    fn add(&mut self, other: Counts) {
        self.total = self.total.saturating_add(other.total);
        self.up = self.up.saturating_add(other.up);
        self.failed = self.failed.saturating_add(other.failed);
        self.holding = self.holding.saturating_add(other.holding);
    }

    fn sub(&mut self, other: Counts) {
        self.total = self.total.saturating_sub(other.total);
        self.up = self.up.saturating_sub(other.up);
        self.failed = self.failed.saturating_sub(other.failed);
        self.holding = self.holding.saturating_sub(other.holding);
    }
}

impl Dirty {
    pub(super) fn new() -> Dirty {
        Dirty {
            all: true,
            recount_all: true,
            ..Dirty::default()
        }
    }
}

impl<U: Definition> Supervisor<U> {
    /// `name`'s state may have changed.
    pub(super) fn touch(&mut self, name: &str) {
        self.retime(name);
        if !self.dirty.all && !self.dirty.touched.contains(name) {
            self.dirty.touched.insert(name.to_string());
        }
        if !self.dirty.recount_all && !self.dirty.recount.contains(name) {
            self.dirty.recount.insert(name.to_string());
        }
    }

    /// The set of services or a unit changed: look at everything again.
    pub(super) fn touch_all(&mut self) {
        self.retime_all();
        let dirty = &mut self.dirty;
        dirty.all = true;
        dirty.recount_all = true;
        dirty.graph = None;
        dirty.touched.clear();
        dirty.recount.clear();
    }

    /// The services whose wanted input may have changed since the last
    /// call, in name order: each touched one, what it depends on (it may be
    /// the last one alive now) and what depends on it.
    pub(super) fn take_touched(&mut self) -> Vec<String> {
        if self.dirty.mode != Some(self.mode) {
            self.dirty.mode = Some(self.mode);
            self.dirty.all = true;
        }
        if self.dirty.all {
            self.dirty.all = false;
            self.dirty.touched.clear();
            #[cfg(test)]
            {
                self.dirty.looked += self.services.len();
            }
            return self.services.keys().cloned().collect();
        }
        self.build_graph();
        let touched = std::mem::take(&mut self.dirty.touched);
        let mut names = BTreeSet::new();
        for name in touched {
            let dependents = self.dirty.graph.as_ref().and_then(|g| g.dependents.get(&name));
            names.extend(dependents.into_iter().flatten().cloned());
            if let Some(service) = self.services.get(&name) {
                names.extend(dependencies(service.config()).cloned());
            }
            names.insert(name);
        }
        #[cfg(test)]
        {
            self.dirty.looked += names.len();
        }
        names.into_iter().collect()
    }

    fn build_graph(&mut self) {
        if self.dirty.graph.is_some() {
            return;
        }
        let mut graph = Graph::default();
        for service in self.services.values() {
            for dep in dependencies(service.config()) {
                let dependents = graph.dependents.entry(dep.clone()).or_default();
                dependents.push(service.name.clone());
            }
            if service.config().schedule.is_some() || service.next_run.is_some() {
                graph.scheduled.push(service.name.clone());
            }
        }
        self.dirty.graph = Some(graph);
    }

    /// The services that list `name` in `requires` or `after`; `None` when
    /// the graph must be rebuilt first.
    pub(super) fn dependents_of(&self, name: &str) -> Option<&[String]> {
        let graph = self.dirty.graph.as_ref()?;
        Some(graph.dependents.get(name).map_or(&[], Vec::as_slice))
    }

    /// The services a schedule may concern (see `runs.rs`).
    pub(super) fn scheduled(&mut self) -> Vec<String> {
        self.build_graph();
        self.dirty.graph.as_ref().map_or_else(Vec::new, |g| g.scheduled.clone())
    }

    /// The counts over every service, brought up to date.
    pub(super) fn counts(&mut self) -> Counts {
        if self.dirty.recount_all {
            self.dirty.recount_all = false;
            self.dirty.recount.clear();
            let mut counts = Counts::default();
            for service in self.services.values_mut() {
                let of = Counts::of(service);
                service.counted = of.pack();
                counts.add(of);
            }
            self.dirty.counts = counts;
        }
        for name in std::mem::take(&mut self.dirty.recount) {
            if let Some(service) = self.services.get_mut(&name) {
                let of = Counts::of(service);
                self.dirty.counts.sub(Counts::unpack(service.counted));
                self.dirty.counts.add(of);
                service.counted = of.pack();
            }
        }
        self.dirty.counts
    }
}

#[cfg(test)]
impl<U: Definition> Supervisor<U> {
    /// Checks that looking only at what changed missed nothing: a full pass
    /// finds no service that wants an input, and the counts are a recount's.
    pub(super) fn check_bookkeeping(&self) {
        if !matches!(self.mode, Mode::Running | Mode::ShuttingDown { .. }) {
            return;
        }
        for service in self.services.values() {
            let wanted = self.wanted(service);
            assert!(wanted.is_none(), "{} still wants {wanted:?}", service.name);
        }
        if self.dirty.recount_all || !self.dirty.recount.is_empty() {
            return;
        }
        let mut counts = Counts::default();
        for service in self.services.values() {
            counts.add(Counts::of(service));
        }
        assert_eq!(counts, self.dirty.counts);
    }
}
