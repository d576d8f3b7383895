//! Reload (SIGHUP): diff the running set against a new set of units.
//!
//! New units start (if enabled); removed ones stop and are forgotten; a
//! changed unit is replaced: its old process stops, then it is handled like a
//! new unit; unchanged ones are left alone. A unit that became invalid is
//! shown invalid, except that a running one keeps running with its old unit
//! and shows the error (killing a working service over a typo is unkind).

use std::collections::BTreeMap;
use std::time::Instant;

use super::config::ServiceConfig;
use super::machine::Supervisor;
use super::order::cycles;
use super::phase::{Input, Phase, Then};
use super::service::Service;

/// Moves the services on a dependency cycle over to the invalid ones.
pub(super) fn split_cycles(
    services: BTreeMap<String, ServiceConfig>,
    mut invalid: BTreeMap<String, String>,
) -> (BTreeMap<String, ServiceConfig>, BTreeMap<String, String>) {
    for (name, reason) in cycles(&services) {
        invalid.entry(name).or_insert(reason);
    }
    let valid = services
        .into_iter()
        .filter(|(name, _)| !invalid.contains_key(name))
        .collect();
    (valid, invalid)
}

impl Supervisor {
    pub(super) fn reload(
        &mut self,
        services: BTreeMap<String, ServiceConfig>,
        invalid: BTreeMap<String, String>,
        now: Instant,
    ) {
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
        for (name, config) in services {
            self.reload_valid(name, config, now);
        }
    }

    fn reload_invalid(&mut self, name: String, reason: String, now: Instant) {
        let before = self.services.get(&name).map(|s| s.phase.state());
        match self.services.get_mut(&name) {
            Some(service) if service.phase.is_live() => {
                tracing::warn!(service = name, reason, "new unit is invalid, keeping the old one");
                service.pending_config = None;
                service.config_error = Some(reason);
            }
            _ => {
                let service = Service::invalid(&name, reason, now);
                self.services.insert(name.clone(), service);
                self.record(&name, before);
            }
        }
    }

    fn reload_valid(&mut self, name: String, config: ServiceConfig, now: Instant) {
        let Some(service) = self.services.get_mut(&name) else {
            let service = Service::new(&name, config, now);
            self.services.insert(name.clone(), service);
            return self.record(&name, None);
        };
        let current = service.pending_config.as_ref().unwrap_or(&service.config);
        if service.phase != Phase::Invalid && *current == config {
            service.config_error = None;
            return;
        }
        if service.phase.is_live() {
            service.config_error = None;
            service.pending_config = Some(config);
            self.route(&name, Input::Stop(Then::Restart), now);
        } else {
            let before = Some(service.phase.state());
            let service = Service::new(&name, config, now);
            self.services.insert(name.clone(), service);
            self.record(&name, before);
        }
    }
}
