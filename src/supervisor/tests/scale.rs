//! The work per event does not grow with the number of services: after an
//! event only the service concerned and its neighbours are looked at again
//! (`Harness::drain` checks after every step that a full pass would have
//! found nothing more).

use super::*;

const MANY: usize = 2000;

fn many(extra: Vec<(&str, ServiceConfig)>) -> Harness {
    let names: Vec<String> = (0..MANY).map(|i| format!("s{i}")).collect();
    let mut services: Vec<(&str, ServiceConfig)> =
        names.iter().map(|n| (n.as_str(), ServiceConfig::default())).collect();
    services.extend(extra);
    Harness::booted(services)
}

fn requires(deps: &[&str]) -> ServiceConfig {
    ServiceConfig {
        requires: names(deps),
        ..ServiceConfig::default()
    }
}

#[test]
fn a_crash_among_thousands_looks_at_that_service_only() {
    let mut h = many(vec![]);
    assert_eq!(h.state("s7"), ServiceState::Ready);
    h.sup.dirty.looked = 0;
    let actions = h.exit("s7", ExitStatus::Code(1));
    assert!(h.sup.dirty.looked <= 4, "looked at {} services", h.sup.dirty.looked);
    assert!(core(actions).is_empty());
    h.sup.dirty.looked = 0;
    let actions = h.advance(secs(1));
    assert_eq!(core(actions), [spawn("s7")]);
    assert!(h.sup.dirty.looked <= 8, "looked at {} services", h.sup.dirty.looked);
    assert_eq!(h.state("s7"), ServiceState::Ready);
}

#[test]
fn a_failure_reaches_dependents_through_the_index() {
    let mut h = many(vec![("db", ServiceConfig::default()), ("web", requires(&["db"]))]);
    h.sup.dirty.looked = 0;
    h.send(Event::Stop { name: "db".into() });
    // An operator stop of a dependency leaves dependents up.
    assert_eq!(h.state("web"), ServiceState::Ready);
    assert!(h.sup.dirty.looked <= 8, "looked at {} services", h.sup.dirty.looked);
    h.exit("db", ExitStatus::Signal(TERM));
    assert_eq!(h.state("db"), ServiceState::Exited);
    assert_eq!(h.state("web"), ServiceState::Ready);
    h.sup.dirty.looked = 0;
    h.send(Event::Start { name: "db".into() });
    assert_eq!(h.state("db"), ServiceState::Ready);
    assert!(h.sup.dirty.looked <= 8, "looked at {} services", h.sup.dirty.looked);
}

#[test]
fn ready_comes_once_the_last_of_thousands_is_up() {
    let names: Vec<String> = (0..MANY).map(|i| format!("s{i}")).collect();
    let services: Vec<(&str, ServiceConfig)> = names.iter().map(|n| (n.as_str(), ServiceConfig::default())).collect();
    let mut h = Harness::new(services);
    h.auto_spawn = false;
    let spawns = h.boot();
    assert_eq!(core(spawns).len(), MANY);
    let mut ready = Vec::new();
    for name in &names {
        for action in h.spawned(name) {
            if let Action::NotifyManager {
                ready: true, status, ..
            } = action
            {
                ready.push((name.clone(), status));
            }
        }
    }
    let last = names.last().cloned().unwrap_or_default();
    assert_eq!(ready, [(last, format!("{MANY} of {MANY} services up"))]);
}

#[test]
fn shutdown_of_thousands_stops_dependents_first() {
    let mut h = many(vec![("db", ServiceConfig::default()), ("web", requires(&["db"]))]);
    let actions = h.send(Event::Shutdown);
    let signals: Vec<&Action> = actions.iter().filter(|a| matches!(a, Action::Signal { .. })).collect();
    assert_eq!(signals.len(), MANY + 1);
    assert!(!signals.contains(&&term("db")));
    let actions = h.exit("web", ExitStatus::Signal(TERM));
    assert_eq!(core(actions), [term("db")]);
}
