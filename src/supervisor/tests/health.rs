//! Liveness checks: when probes go out, retries, the start period, timeouts
//! and what an unhealthy service leads to.

use super::*;
use crate::supervisor::{Health, HealthPolicy, OnUnhealthy, RestartPolicy};

fn checked(on_unhealthy: OnUnhealthy) -> ServiceConfig {
    ServiceConfig {
        health: Some(Box::new(HealthPolicy {
            interval: secs(10),
            timeout: secs(2),
            retries: 3,
            start_period: secs(0),
            on_unhealthy,
        })),
        restart_delay: ms(100),
        ..ServiceConfig::default()
    }
}

fn probe(name: &str) -> Action {
    Action::Probe { name: name.into() }
}

fn cancel(name: &str) -> Action {
    Action::CancelProbe { name: name.into() }
}

fn answer(h: &mut Harness, name: &str, ok: bool) -> Vec<Action> {
    let reason = if ok { "" } else { "http status 500" };
    let event = Event::ProbeResult {
        name: name.into(),
        ok,
        reason: reason.into(),
    };
    core(h.send(event))
}

fn health(h: &Harness, name: &str) -> Option<Health> {
    h.get(name).health
}

#[test]
fn no_check_no_deadline() {
    let h = Harness::booted(vec![("a", ServiceConfig::default())]);
    assert_eq!(h.due_in(), None);
    assert_eq!(health(&h, "a"), None);
}

#[test]
fn one_probe_per_interval_after_each_answer() {
    let mut h = Harness::booted(vec![("a", checked(OnUnhealthy::Restart))]);
    assert_eq!(health(&h, "a"), Some(Health::Starting));
    assert_eq!(h.due_in(), Some(secs(10)));
    assert_eq!(core(h.advance(secs(10))), [probe("a")]);
    // the timeout is the next deadline while the probe is out
    assert_eq!(h.due_in(), Some(secs(2)));
    h.now += ms(300);
    assert_eq!(answer(&mut h, "a", true), []);
    assert_eq!(health(&h, "a"), Some(Health::Healthy));
    assert_eq!(h.due_in(), Some(secs(10)));
    assert_eq!(core(h.advance(secs(10))), [probe("a")]);
}

#[test]
fn unhealthy_after_retries_in_a_row_then_restarted() {
    let mut h = Harness::booted(vec![("a", checked(OnUnhealthy::Restart))]);
    h.advance(secs(10));
    answer(&mut h, "a", true);
    for _ in 0..2 {
        assert_eq!(core(h.advance(secs(10))), [probe("a")]);
        assert_eq!(answer(&mut h, "a", false), []);
        assert_eq!(health(&h, "a"), Some(Health::Healthy), "not yet");
    }
    // a pass in between starts the count again
    h.advance(secs(10));
    answer(&mut h, "a", true);
    for _ in 0..2 {
        h.advance(secs(10));
        assert_eq!(answer(&mut h, "a", false), []);
    }
    h.advance(secs(10));
    assert_eq!(answer(&mut h, "a", false), [term("a")]);
    assert_eq!(h.state("a"), ServiceState::Stopping);
    assert_eq!(health(&h, "a"), None, "no longer tracked once stopping");
    assert_eq!(core(h.exit("a", ExitStatus::Signal(TERM))), []);
    assert_eq!(h.detail("a"), "restart pending");
    assert_eq!(core(h.advance(ms(100))), [spawn("a")]);
    assert_eq!(h.get("a").restarts, 1);
    assert_eq!(health(&h, "a"), Some(Health::Starting), "a fresh start");
}

#[test]
fn a_probe_without_answer_in_time_fails_and_is_cancelled() {
    let config = ServiceConfig {
        restart: RestartPolicy::No,
        ..checked(OnUnhealthy::Restart)
    };
    let mut h = Harness::booted(vec![("a", config)]);
    for _ in 0..2 {
        assert_eq!(core(h.advance(secs(10))), [probe("a")]);
        assert_eq!(core(h.advance(secs(2))), [cancel("a")]);
    }
    assert_eq!(core(h.advance(secs(10))), [probe("a")]);
    assert_eq!(core(h.advance(secs(2))), [cancel("a"), term("a")]);
    // a late answer is ignored
    assert_eq!(answer(&mut h, "a", true), []);
    h.exit("a", ExitStatus::Signal(TERM));
    // restart = "no": an unhealthy service is a failure
    assert_eq!(h.state("a"), ServiceState::Failed);
    assert_eq!(h.detail("a"), "unhealthy: no answer within 2s");
    assert_eq!(h.due_in(), None);
}

#[test]
fn failures_in_the_start_period_do_not_count_until_a_pass() {
    let mut config = checked(OnUnhealthy::Restart);
    if let Some(p) = config.health.as_mut() {
        p.start_period = secs(60);
    }
    let mut h = Harness::booted(vec![("a", config)]);
    for _ in 0..5 {
        h.advance(secs(10));
        assert_eq!(answer(&mut h, "a", false), []);
    }
    assert_eq!(health(&h, "a"), Some(Health::Starting));
    // after the start period, failures count
    for _ in 0..2 {
        h.advance(secs(10));
        assert_eq!(answer(&mut h, "a", false), []);
    }
    h.advance(secs(10));
    assert_eq!(answer(&mut h, "a", false), [term("a")]);

    // a pass within the start period ends it
    let mut config = checked(OnUnhealthy::None);
    if let Some(p) = config.health.as_mut() {
        p.start_period = secs(600);
    }
    let mut h = Harness::booted(vec![("a", config)]);
    h.advance(secs(10));
    answer(&mut h, "a", true);
    for _ in 0..3 {
        h.advance(secs(10));
        answer(&mut h, "a", false);
    }
    assert_eq!(health(&h, "a"), Some(Health::Unhealthy));
}

#[test]
fn none_only_shows_it_and_recovers() {
    let mut h = Harness::booted(vec![("a", checked(OnUnhealthy::None))]);
    for _ in 0..3 {
        h.advance(secs(10));
        assert_eq!(answer(&mut h, "a", false), []);
    }
    assert_eq!(health(&h, "a"), Some(Health::Unhealthy));
    assert_eq!(h.state("a"), ServiceState::Ready);
    // still probed; a pass makes it healthy again
    assert_eq!(core(h.advance(secs(10))), [probe("a")]);
    answer(&mut h, "a", true);
    assert_eq!(health(&h, "a"), Some(Health::Healthy));
}

#[test]
fn shutdown_stops_everything_and_exits_1() {
    let mut h = Harness::booted(vec![
        ("a", checked(OnUnhealthy::Shutdown)),
        ("b", ServiceConfig::default()),
    ]);
    for _ in 0..2 {
        h.advance(secs(10));
        answer(&mut h, "a", false);
    }
    h.advance(secs(10));
    let actions = answer(&mut h, "a", false);
    assert!(
        actions.contains(&term("a")) && actions.contains(&term("b")),
        "{actions:?}"
    );
    // no more probes while shutting down
    h.exit("b", ExitStatus::Signal(TERM));
    let actions = core(h.exit("a", ExitStatus::Signal(TERM)));
    assert_eq!(actions, [Action::Exit { code: 1 }]);
}

#[test]
fn a_service_going_down_cancels_its_probe() {
    let mut h = Harness::booted(vec![("a", checked(OnUnhealthy::Restart))]);
    assert_eq!(core(h.advance(secs(10))), [probe("a")]);
    let actions = core(h.exit("a", ExitStatus::Code(1)));
    assert_eq!(actions, [cancel("a")]);
    assert_eq!(health(&h, "a"), None);
    assert_eq!(answer(&mut h, "a", false), [], "a late answer is ignored");
}

#[test]
fn health_changes_are_changes() {
    let mut h = Harness::booted(vec![("a", checked(OnUnhealthy::None))]);
    while h.sup.poll_change().is_some() {}
    h.advance(secs(10));
    answer(&mut h, "a", true);
    let change = h.sup.poll_change().expect("a change");
    assert_eq!(change.from, Some(ServiceState::Ready));
    assert_eq!(change.to.state, ServiceState::Ready);
    assert_eq!(change.to.health, Some(Health::Healthy));
    // the same health again: no change
    h.advance(secs(10));
    answer(&mut h, "a", true);
    assert_eq!(h.sup.poll_change(), None);
}

#[test]
fn a_notify_service_is_probed_once_ready() {
    let config = ServiceConfig {
        service_type: crate::supervisor::ServiceType::Notify,
        ..checked(OnUnhealthy::Restart)
    };
    let mut h = Harness::booted(vec![("a", config)]);
    assert_eq!(health(&h, "a"), None);

    h.now += secs(1);
    h.ready("a");
    assert_eq!(health(&h, "a"), Some(Health::Starting));
    assert_eq!(h.due_in(), Some(secs(10)));
}

#[test]
fn probes_due_close_together_share_a_wake_up() {
    let mut h = Harness::new(vec![
        ("a", checked(OnUnhealthy::None)),
        ("b", checked(OnUnhealthy::None)),
    ]);
    h.auto_spawn = false;
    h.boot();
    h.spawned("a");
    h.now += ms(100);
    h.spawned("b");
    // a is due 100ms before b; b's probe goes out with a's (within 10s/64)
    assert_eq!(h.due_in(), Some(secs(10) - ms(100)));
    assert_eq!(core(h.advance(secs(10) - ms(100))), [probe("a"), probe("b")]);
    // beyond the slack: a wake-up of its own
    let mut g = Harness::new(vec![
        ("a", checked(OnUnhealthy::None)),
        ("b", checked(OnUnhealthy::None)),
    ]);
    g.auto_spawn = false;
    g.boot();
    g.spawned("a");
    g.now += ms(200);
    g.spawned("b");
    assert_eq!(core(g.advance(secs(10) - ms(200))), [probe("a")]);
    assert_eq!(g.due_in(), Some(ms(200)));
}

/// Three failed probes in a row: the third stops the service.
fn fail_three_probes(h: &mut Harness, name: &str) {
    for _ in 0..2 {
        h.advance(secs(10));
        assert_eq!(answer(h, name, false), []);
    }
    h.advance(secs(10));
    assert_eq!(answer(h, name, false), [term(name)]);
    h.exit(name, ExitStatus::Signal(TERM));
}

#[test]
fn a_service_that_ran_long_before_turning_unhealthy_restarts_after_the_first_delay() {
    let config = ServiceConfig {
        restart_delay_max: secs(5),
        ..checked(OnUnhealthy::Restart)
    };
    let mut h = Harness::booted(vec![("a", config)]);
    // Up for 30 s, well past restart-delay-max, each time: not a crash loop,
    // so the delay starts over instead of doubling.
    for restarts in 1..=2 {
        fail_three_probes(&mut h, "a");
        assert_eq!(core(h.advance(ms(100))), [spawn("a")], "restart {restarts}");
        assert_eq!(h.get("a").restarts, restarts);
    }
}
