//! Dependencies, readiness and ready timeouts.

use super::*;
use crate::supervisor::{RestartPolicy, ServiceType};

fn after(deps: &[&str]) -> ServiceConfig {
    ServiceConfig {
        after: names(deps),
        ..ServiceConfig::default()
    }
}

fn requires(deps: &[&str]) -> ServiceConfig {
    ServiceConfig {
        requires: names(deps),
        ..ServiceConfig::default()
    }
}

fn oneshot() -> ServiceConfig {
    ServiceConfig {
        service_type: ServiceType::Oneshot,
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    }
}

fn notify() -> ServiceConfig {
    ServiceConfig {
        service_type: ServiceType::Notify,
        ..ServiceConfig::default()
    }
}

#[test]
fn independent_services_start_at_once() {
    let mut h = Harness::new(vec![("a", after(&[])), ("b", after(&[])), ("c", after(&["a"]))]);
    h.auto_spawn = false;
    assert_eq!(core(h.boot()), [spawn("a"), spawn("b")]);
    assert_eq!(h.detail("c"), "waiting for a");
    assert_eq!(core(h.spawned("b")), []);
    assert_eq!(core(h.spawned("a")), [spawn("c")]);
}

#[test]
fn nothing_starts_before_boot() {
    let mut h = Harness::new(vec![("a", after(&[]))]);
    assert_eq!(h.sup.poll_action(), None);
    assert_eq!(h.state("a"), ServiceState::Starting);
    assert_eq!(core(h.boot()), [spawn("a")]);
}

#[test]
fn oneshot_runs_before_its_dependents() {
    let mut h = Harness::new(vec![("setup", oneshot()), ("app", requires(&["setup"]))]);
    assert_eq!(core(h.boot()), [spawn("setup")]);
    assert_eq!(h.state("setup"), ServiceState::Running);
    assert_eq!(core(h.exit("setup", ExitStatus::Code(0))), [spawn("app")]);
    assert_eq!(h.state("setup"), ServiceState::Exited);
    assert_eq!(h.state("app"), ServiceState::Ready);
}

#[test]
fn failing_oneshot_keeps_dependents_down_until_it_succeeds() {
    let mut h = Harness::booted(vec![
        ("setup", oneshot()),
        ("app", requires(&["setup"])),
        ("web", after(&["setup"])),
    ]);
    assert_eq!(core(h.exit("setup", ExitStatus::Code(1))), []);
    assert_eq!(h.state("setup"), ServiceState::Failed);
    assert_eq!(h.state("app"), ServiceState::Failed);
    assert_eq!(h.detail("app"), "required service setup is down for good");
    assert_eq!(h.state("web"), ServiceState::Starting);
    assert_eq!(h.detail("web"), "waiting for setup");
    assert_eq!(h.due_in(), None);

    // an operator starts the oneshot again: dependents follow when it succeeds
    assert_eq!(core(h.send(Event::Start { name: "setup".into() })), [spawn("setup")]);
    assert_eq!(h.state("app"), ServiceState::Starting);
    let started = core(h.exit("setup", ExitStatus::Code(0)));
    assert_eq!(started, [spawn("app"), spawn("web")]);
}

#[test]
fn after_waits_for_ready_of_a_notify_service() {
    let mut h = Harness::new(vec![("db", notify()), ("app", after(&["db"]))]);
    assert_eq!(core(h.boot()), [spawn("db")]);
    assert_eq!(h.state("db"), ServiceState::Running);
    assert_eq!(core(h.ready("db")), [spawn("app")]);
    assert_eq!(h.state("db"), ServiceState::Ready);
}

#[test]
fn ready_check_decides_for_a_simple_service() {
    let checked = ServiceConfig {
        has_ready_check: true,
        ..ServiceConfig::default()
    };
    let mut h = Harness::new(vec![("web", checked), ("app", after(&["web"]))]);
    let name = "web".to_string();
    let boot = core(h.boot());
    assert_eq!(boot, [spawn("web"), Action::StartReadyCheck { name }]);
    assert_eq!(h.state("web"), ServiceState::Running);
    assert_eq!(core(h.ready("web")), [spawn("app")]);
}

#[test]
fn ready_timeout_stops_and_counts_as_a_failed_start() {
    let slow = ServiceConfig {
        has_ready_check: true,
        ready_timeout: Some(secs(1)),
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("web", slow)]);
    assert_eq!(h.due_in(), Some(secs(1)));
    let cancel = Action::CancelReadyCheck { name: "web".into() };
    assert_eq!(core(h.advance(secs(1))), [cancel, term("web")]);
    assert_eq!(core(h.exit("web", ExitStatus::Signal(TERM))), []);
    assert_eq!(h.state("web"), ServiceState::Starting);
    assert_eq!(h.due_in(), Some(ms(100)));
    assert_eq!(h.get("web").restarts, 1);
}

#[test]
fn ready_failed_without_restart_fails_the_service() {
    let notify_once = ServiceConfig {
        restart: RestartPolicy::No,
        ..notify()
    };
    let mut h = Harness::booted(vec![("db", notify_once)]);
    let failed = Event::ReadyFailed {
        name: "db".into(),
        reason: "refused".into(),
    };
    assert_eq!(core(h.send(failed)), [term("db")]);
    h.exit("db", ExitStatus::Code(0));
    assert_eq!(h.state("db"), ServiceState::Failed);
    assert_eq!(h.detail("db"), "not ready: refused");
}

#[test]
fn failed_requirement_stops_the_dependent() {
    let db = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("db", db), ("app", requires(&["db"]))]);
    assert_eq!(h.state("app"), ServiceState::Ready);
    assert_eq!(core(h.exit("db", ExitStatus::Code(1))), [term("app")]);
    assert_eq!(core(h.exit("app", ExitStatus::Signal(TERM))), []);
    assert_eq!(h.state("app"), ServiceState::Failed);
    assert_eq!(h.due_in(), None);
}

#[test]
fn missing_or_disabled_dependencies() {
    let disabled = ServiceConfig {
        enabled: false,
        ..ServiceConfig::default()
    };
    let mut h = Harness::new(vec![
        ("off", disabled),
        ("a", after(&["off", "gone"])),
        ("b", requires(&["gone"])),
        ("c", requires(&["off"])),
    ]);
    assert_eq!(core(h.boot()), [spawn("a")]);
    assert_eq!(h.state("off"), ServiceState::Disabled);
    assert_eq!(h.state("b"), ServiceState::Failed);
    assert_eq!(h.detail("c"), "waiting for off");
    // starting the disabled requirement lets its dependent follow
    let started = core(h.send(Event::Start { name: "off".into() }));
    assert_eq!(started, [spawn("off"), spawn("c")]);
}

#[test]
fn dependency_cycles_never_start_and_never_hang() {
    let mut h = Harness::new(vec![
        ("a", after(&["b"])),
        ("b", requires(&["a"])),
        ("c", after(&["a"])),
        ("d", after(&[])),
    ]);
    assert_eq!(core(h.boot()), [spawn("d")]);
    assert_eq!(h.state("a"), ServiceState::Invalid);
    assert_eq!(h.detail("b"), "dependency cycle through a, b");
    assert_eq!(h.detail("c"), "waiting for a");
    assert_eq!(h.due_in(), None);
    // a shutdown still completes
    let out = core(h.send(Event::Shutdown));
    assert_eq!(out, [term("d")]);
    assert_eq!(core(h.exit("d", ExitStatus::Signal(TERM))), [Action::Exit { code: 0 }]);
}
