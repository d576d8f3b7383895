//! Reload (SIGHUP): diff the running set against a new set of units.
//!
//! New units start (if enabled); removed ones stop and are forgotten; a
//! changed unit is replaced: its old process stops, then it is handled like a
//! new unit; unchanged ones are left alone. A unit that became invalid is
//! shown invalid, except that a running one keeps running with its old unit
//! and shows the error (killing a working service over a typo is unkind).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use super::config::Definition;
use super::machine::Supervisor;
use super::order::cycles;
use super::phase::{Input, Then};
use super::service::Service;

/// Moves the services on a dependency cycle over to the invalid ones.
pub(super) fn split_cycles<U: Definition>(
    services: BTreeMap<String, U>,
    mut invalid: BTreeMap<String, String>,
) -> (BTreeMap<String, U>, BTreeMap<String, String>) {
    for (name, reason) in cycles(&services) {
        invalid.entry(name).or_insert(reason);
    }
    let valid = crate::sorted::map(services.into_iter().filter(|(name, _)| !invalid.contains_key(name)));
    (valid, invalid)
}

impl<U: Definition> Supervisor<U> {
    pub(super) fn diff(&mut self, services: BTreeMap<String, U>, invalid: BTreeMap<String, String>, now: Instant) {
        let (services, invalid) = split_cycles(services, invalid);
        let removed: Vec<String> = self
            .services
            .keys()
            .filter(|name| !services.contains_key(*name) && !invalid.contains_key(*name))
            .cloned()
            .collect();
        for name in removed {
            self.route(&name, Input::Stop(Then::Forget), now);
        }
        for (name, reason) in invalid {
            self.reload_invalid(name, reason, now);
        }
        for (name, unit) in services {
            self.reload_valid(name, unit, now);
        }
    }

    fn reload_invalid(&mut self, name: String, reason: String, now: Instant) {
        let before = self.services.get(&name).map(|s| s.phase.state());
        match self.services.get_mut(&name) {
            Some(service) if service.phase.is_live() => {
                tracing::warn!(service = name, reason, "new unit is invalid, keeping the old one");
                service.pending = None;
                service.config_error = Some(reason);
            }
            _ => {
                let service = Service::invalid(&name, reason, now);
                self.services.insert(name.clone(), service);
                self.record(&name, before);
            }
        }
    }

    fn reload_valid(&mut self, name: String, unit: U, now: Instant) {
        let Some(service) = self.services.get_mut(&name) else {
            let service = Service::new(&name, Rc::new(unit), now);
            self.services.insert(name.clone(), service);
            return self.record(&name, None);
        };
        let current = service.pending.as_ref().or(service.unit.as_ref());
        if current.is_some_and(|current| current.unchanged(&unit)) {
            // Kept running, but with the new definition: what differs (the
            // cgroup limits) the runtime changes in place.
            service.config_error = None;
            let slot = if service.pending.is_some() {
                &mut service.pending
            } else {
                &mut service.unit
            };
            *slot = Some(Rc::new(unit));
            return;
        }
        if service.phase.is_live() {
            service.config_error = None;
            service.pending = Some(Rc::new(unit));
            self.route(&name, Input::Stop(Then::Restart), now);
        } else {
            let before = Some(service.phase.state());
            let service = Service::new(&name, Rc::new(unit), now);
            self.services.insert(name.clone(), service);
            self.record(&name, before);
        }
    }
}
