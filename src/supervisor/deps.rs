//! What follows from the services' states: a waiting service whose
//! dependencies are met starts, one whose required dependency failed for good
//! fails too, one that recovers comes back, and at shutdown a service stops
//! once nothing that depends on it is alive. Also what the manager above is
//! told (`READY=1`, `STATUS=`).

use std::time::Instant;

use super::config::{Definition, ServiceType};
use super::dirty::Counts;
use super::machine::{Mode, Supervisor};
use super::order::depends_on;
use super::phase::{Failure, Input, Phase, Then};
use super::service::Service;
use super::types::Action;

/// A dependency as its dependents see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dep {
    /// Ready, or a oneshot that exited 0.
    Met,
    /// On its way up.
    Pending,
    /// Down and staying down without failing: disabled, stopped, exited 0.
    Down,
    /// Failed for good, or invalid.
    Broken,
}

/// What a waiting service's dependencies allow.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Met,
    Wait(String),
    Broken(String),
}

impl<U: Definition> Supervisor<U> {
    /// Feeds the inputs that follow from the current states until none
    /// follows. Bounded: a cascade is at most as long as there are services.
    pub(super) fn reconcile(&mut self, now: Instant) {
        for _ in 0..=self.services.len() {
            let touched = self.take_touched();
            let inputs: Vec<(String, Input)> = touched
                .into_iter()
                .filter_map(|name| {
                    let input = self.wanted(self.services.get(&name)?)?;
                    Some((name, input))
                })
                .collect();
            if inputs.is_empty() {
                return;
            }
            let mode = self.mode;
            for (name, input) in inputs {
                self.route(&name, input, now);
                if self.mode != mode {
                    // shutdown began (main went down): what is wanted changed
                    break;
                }
            }
        }
    }

    /// The input that follows from this service's state and its neighbours'.
    pub(super) fn wanted(&self, service: &Service<U>) -> Option<Input> {
        let shutting_down = matches!(self.mode, Mode::ShuttingDown { .. });
        match &service.phase {
            Phase::Waiting | Phase::Delay { .. } if shutting_down => Some(Input::Stop(Then::Down)),
            Phase::Spawning | Phase::Up { .. } if shutting_down => {
                let last = !self.has_live_dependents(&service.name);
                last.then_some(Input::Stop(Then::Down))
            }
            _ if shutting_down => None,
            Phase::Waiting => match self.verdict(service) {
                Verdict::Met => Some(Input::DepsMet),
                Verdict::Broken(dep) => Some(Input::DepBroken(dep)),
                Verdict::Wait(_) => None,
            },
            Phase::Delay { .. } | Phase::Spawning | Phase::Up { .. } => {
                self.broken_requirement(service).map(Input::DepBroken)
            }
            Phase::Failed(Failure::Dependency(_)) => {
                // A scheduled unit waits for its next due time instead.
                let scheduled = service.config().schedule.is_some();
                let recovered = self.broken_requirement(service).is_none();
                (recovered && !scheduled).then_some(Input::Start)
            }
            _ => None,
        }
    }

    fn dep(&self, name: &str) -> Option<Dep> {
        self.services.get(name).map(Self::dep_of)
    }

    fn dep_of(service: &Service<U>) -> Dep {
        match &service.phase {
            Phase::Invalid | Phase::Failed(_) => Dep::Broken,
            Phase::Disabled => Dep::Down,
            Phase::Exited if Self::completed_oneshot(service) => Dep::Met,
            Phase::Exited => Dep::Down,
            Phase::Up { ready: true, .. } => Dep::Met,
            Phase::Stopping {
                then: Then::Down | Then::Forget,
                ..
            } => Dep::Down,
            Phase::Stopping {
                then: Then::Blocked(_), ..
            } => Dep::Broken,
            Phase::Waiting | Phase::Delay { .. } | Phase::Spawning => Dep::Pending,
            Phase::Up { .. } | Phase::Stopping { .. } => Dep::Pending,
        }
    }

    fn completed_oneshot(service: &Service<U>) -> bool {
        service.config().service_type == ServiceType::Oneshot
            && service.last_exit.is_some_and(|status| status.success())
    }

    /// `requires` must be met (a missing or broken one is fatal); `after` is
    /// ignored for services that are down or missing, but waits for one that
    /// is coming up or has failed.
    fn verdict(&self, service: &Service<U>) -> Verdict {
        if let Some(dep) = self.broken_requirement(service) {
            return Verdict::Broken(dep);
        }
        let config = service.config();
        let waits_for = |name: &String, required: bool| match self.dep(name) {
            Some(Dep::Met) => false,
            Some(Dep::Pending | Dep::Broken) => true,
            Some(Dep::Down) | None => required,
        };
        let required = config.requires.iter().find(|d| waits_for(d, true));
        let ordered = config.after.iter().find(|d| waits_for(d, false));
        match required.or(ordered) {
            Some(dep) => Verdict::Wait(dep.clone()),
            None => Verdict::Met,
        }
    }

    /// The first `requires` entry that is missing, invalid or failed for good.
    fn broken_requirement(&self, service: &Service<U>) -> Option<String> {
        let requires = &service.config().requires;
        let broken = |name: &&String| matches!(self.dep(name), None | Some(Dep::Broken));
        requires.iter().find(broken).cloned()
    }

    fn has_live_dependents(&self, name: &str) -> bool {
        if let Some(dependents) = self.dependents_of(name) {
            let live = |d: &String| d != name && self.services.get(d).is_some_and(|s| s.phase.is_live());
            return dependents.iter().any(live);
        }
        self.services
            .values()
            .any(|s| s.name != name && s.phase.is_live() && depends_on(s.config(), name))
    }

    /// Why a service is in its state, for `status`.
    pub(super) fn detail(&self, service: &Service<U>) -> Option<String> {
        match (&service.phase, &service.config_error) {
            (Phase::Invalid, error) => error.clone(),
            (Phase::Waiting, _) => match self.verdict(service) {
                Verdict::Wait(dep) => Some(format!("waiting for {dep}")),
                Verdict::Met | Verdict::Broken(_) => None,
            },
            (Phase::Delay { .. }, _) => Some("restart pending".to_string()),
            // Stopped as failed (ready or watchdog timeout): say why now.
            (
                Phase::Stopping {
                    then: Then::Fail(reason),
                    ..
                },
                _,
            ) => Some(reason.clone()),
            (Phase::Failed(failure), _) => Some(failure.to_string()),
            (Phase::Exited, _) if service.stopped => Some("stopped".to_string()),
            (_, Some(error)) => Some(format!("reload refused, running the old unit: {error}")),
            (_, None) => None,
        }
    }

    /// Up as far as `READY=1` is concerned: met, or exited 0 (its job done).
    pub(super) fn is_up(service: &Service<U>) -> bool {
        let scheduled = service.config().schedule.is_some();
        Self::dep_of(service) == Dep::Met
            || (service.phase == Phase::Exited
                && (scheduled || service.last_exit.is_some_and(|status| status.success())))
    }

    /// Tells the manager above about `READY=1` (once every enabled service is
    /// up) and about changes of the one-line summary.
    pub(super) fn notify(&mut self) {
        let Counts {
            total,
            up,
            failed,
            holding,
        } = self.counts();
        let ready = holding == 0 && !self.told_ready;
        // Most settles change no count: no summary to write and compare.
        if !ready && self.told_counts == Some([up, total, failed]) {
            return;
        }
        self.told_counts = Some([up, total, failed]);
        let mut status = format!("{up} of {total} services up");
        if failed > 0 {
            status.push_str(&format!(", {failed} failed"));
        }
        if ready || status != self.told_status {
            self.told_ready |= ready;
            self.told_status.clone_from(&status);
            let stopping = false;
            let notify = Action::NotifyManager {
                ready,
                status,
                stopping,
            };
            self.actions.push_back(notify);
        }
    }
}
