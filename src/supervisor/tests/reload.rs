//! Reload: the diff between the running set and a new one.

use super::*;
use crate::supervisor::RestartPolicy;

/// A new set of units, as SIGHUP hands it over.
struct Reload(
    Vec<(&'static str, ServiceConfig)>,
    &'static [(&'static str, &'static str)],
);

fn reload(services: Vec<(&'static str, ServiceConfig)>, invalid: &'static [(&'static str, &'static str)]) -> Reload {
    Reload(services, invalid)
}

impl Harness {
    fn reload(&mut self, Reload(services, invalid): Reload) -> Vec<Action> {
        let invalid = invalid
            .iter()
            .map(|(name, reason)| (name.to_string(), reason.to_string()))
            .collect();
        self.sup.reload(configs(services), invalid, self.now);
        self.drain()
    }
}

fn changed() -> ServiceConfig {
    ServiceConfig {
        stop_timeout: secs(3),
        ..ServiceConfig::default()
    }
}

#[test]
fn reload_starts_new_stops_removed_restarts_changed() {
    let plain = ServiceConfig::default;
    let mut h = Harness::booted(vec![("same", plain()), ("edit", plain()), ("gone", plain())]);
    let pid_same = h.get("same").pid;
    let event = reload(vec![("same", plain()), ("edit", changed()), ("new", plain())], &[]);
    assert_eq!(core(h.reload(event)), [term("gone"), term("edit"), spawn("new")]);
    assert_eq!(h.get("same").pid, pid_same);

    // the changed one comes back with its new config as soon as it stopped
    assert_eq!(core(h.exit("edit", ExitStatus::Signal(TERM))), [spawn("edit")]);
    assert_eq!(core(h.send(Event::Stop { name: "edit".into() })), [term("edit")]);
    assert_eq!(h.due_in(), Some(secs(3)));

    // the removed one is forgotten once it exited
    assert_eq!(h.state("gone"), ServiceState::Stopping);
    assert_eq!(core(h.exit("gone", ExitStatus::Signal(TERM))), []);
    let listed: Vec<String> = h.sup.status().into_iter().map(|s| s.name).collect();
    assert_eq!(listed, names(&["edit", "new", "same"]));
}

#[test]
fn reload_of_an_identical_set_changes_nothing() {
    let set = || vec![("a", ServiceConfig::default()), ("b", changed())];
    let mut h = Harness::booted(set());
    assert_eq!(core(h.reload(reload(set(), &[]))), []);
    assert_eq!(h.state("a"), ServiceState::Ready);
}

#[test]
fn invalid_unit_keeps_a_running_service_on_its_old_config() {
    let no = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("up", Default::default()), ("down", no)]);
    h.exit("down", ExitStatus::Code(0));
    let event = reload(vec![], &[("up", "bad port"), ("down", "bad port")]);
    assert_eq!(core(h.reload(event)), []);
    assert_eq!(h.state("up"), ServiceState::Ready);
    assert_eq!(h.detail("up"), "reload refused, running the old unit: bad port");
    assert_eq!(h.state("down"), ServiceState::Invalid);
    assert_eq!(h.detail("down"), "bad port");

    // it still restarts under the old unit, and a fixed unit clears the error
    assert_eq!(core(h.exit("up", ExitStatus::Code(1))), []);
    assert_eq!(core(h.advance(ms(100))), [spawn("up")]);
    let fixed = reload(vec![("up", Default::default())], &[("down", "bad port")]);
    assert_eq!(core(h.reload(fixed)), []);
    assert_eq!(h.get("up").detail, None);
}

#[test]
fn changed_unit_of_a_down_service_is_handled_like_a_new_one() {
    let no = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("a", no.clone())]);
    h.exit("a", ExitStatus::Code(1));
    assert_eq!(h.state("a"), ServiceState::Failed);
    let fixed = ServiceConfig {
        stop_timeout: secs(1),
        ..no
    };
    assert_eq!(core(h.reload(reload(vec![("a", fixed)], &[]))), [spawn("a")]);
}

#[test]
fn reload_can_disable_and_rescue_invalid_units() {
    let mut h = Harness::with(vec![("a", Default::default())], &[("b", "typo")], secs(1));
    h.boot();
    let off = ServiceConfig {
        enabled: false,
        ..ServiceConfig::default()
    };
    let event = reload(vec![("a", off), ("b", Default::default())], &[]);
    assert_eq!(core(h.reload(event)), [term("a"), spawn("b")]);
    assert_eq!(core(h.exit("a", ExitStatus::Signal(TERM))), []);
    assert_eq!(h.state("a"), ServiceState::Disabled);
}

#[test]
fn reload_that_makes_a_cycle_stops_nothing_running() {
    let mut h = Harness::booted(vec![("a", Default::default()), ("b", Default::default())]);
    let after = |dep: &str| ServiceConfig {
        after: names(&[dep]),
        ..ServiceConfig::default()
    };
    let event = reload(vec![("a", after("b")), ("b", after("a"))], &[]);
    assert_eq!(core(h.reload(event)), []);
    assert!(h.detail("a").contains("dependency cycle through a, b"));
    assert_eq!(h.due_in(), None);
}

#[test]
fn removing_a_service_that_never_ran_forgets_it_at_once() {
    let blocked = ServiceConfig {
        after: names(&["never"]),
        ..ServiceConfig::default()
    };
    let never = ServiceConfig {
        service_type: crate::supervisor::ServiceType::Notify,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("never", never.clone()), ("w", blocked)]);
    assert_eq!(h.state("w"), ServiceState::Starting);
    assert_eq!(core(h.reload(reload(vec![("never", never)], &[]))), []);
    assert_eq!(h.sup.status().len(), 1);
}

/// A definition with a part the runtime changes in place (like a unit's
/// cgroup limits): `unchanged` ignores it.
#[derive(Debug)]
struct InPlace {
    config: ServiceConfig,
    limit: u32,
}

impl crate::supervisor::Definition for InPlace {
    fn config(&self) -> &ServiceConfig {
        &self.config
    }

    fn unchanged(&self, new: &Self) -> bool {
        self.config == new.config
    }
}

#[test]
fn a_change_made_in_place_keeps_the_service_and_hands_out_the_new_definition() {
    let now = Instant::now();
    let unit = |limit| {
        let config = ServiceConfig::default();
        [("web".to_string(), InPlace { config, limit })].into()
    };
    let mut sup = crate::supervisor::Supervisor::new(unit(32), Default::default(), secs(30), now);
    sup.boot(now);
    while sup.poll_action().is_some() {}
    sup.handle(
        Event::Spawned {
            name: "web".into(),
            pid: 7,
        },
        now,
    )
    .unwrap();
    sup.reload(unit(64), Default::default(), now);
    let actions: Vec<Action> = std::iter::from_fn(|| sup.poll_action()).collect();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Signal { .. } | Action::Spawn { .. })),
        "{actions:?}"
    );
    assert_eq!(sup.service("web").and_then(|s| s.pid), Some(7));
    assert_eq!(sup.definition("web").map(|u| u.limit), Some(64));
}
