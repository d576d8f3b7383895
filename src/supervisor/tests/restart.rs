//! Restart policy, backoff and start limit.

use super::*;
use crate::supervisor::{RestartPolicy, SupervisorError};

fn crashy() -> ServiceConfig {
    ServiceConfig {
        restart_delay: ms(100),
        restart_delay_max: secs(1),
        start_limit_burst: 100,
        ..ServiceConfig::default()
    }
}

/// Crashes `name`, checks the restart waits exactly `delay`.
fn crash_and_expect_restart_after(h: &mut Harness, name: &str, delay: Duration) {
    assert_eq!(core(h.exit(name, ExitStatus::Code(1))), []);
    assert_eq!(h.state(name), ServiceState::Starting);
    assert_eq!(h.due_in(), Some(delay));
    assert_eq!(core(h.advance(delay - ms(1))), []);
    assert_eq!(core(h.advance(ms(1))), [spawn(name)]);
    assert_eq!(h.state(name), ServiceState::Ready);
}

#[test]
fn backoff_doubles_per_failure_up_to_the_cap() {
    let mut h = Harness::booted(vec![("a", crashy())]);
    for delay in [100, 200, 400, 800, 1000, 1000] {
        crash_and_expect_restart_after(&mut h, "a", ms(delay));
    }
    assert_eq!(h.get("a").restarts, 6);
}

#[test]
fn backoff_starts_over_after_staying_up() {
    let mut h = Harness::booted(vec![("a", crashy())]);
    crash_and_expect_restart_after(&mut h, "a", ms(100));
    crash_and_expect_restart_after(&mut h, "a", ms(200));
    // up just short of restart_delay_max: still a crash loop
    h.advance(ms(999));
    crash_and_expect_restart_after(&mut h, "a", ms(400));
    // up for restart_delay_max: the sequence starts over
    h.advance(secs(1));
    crash_and_expect_restart_after(&mut h, "a", ms(100));
}

#[test]
fn start_limit_fails_the_service_until_an_operator_start() {
    let config = ServiceConfig {
        start_limit_burst: 3,
        start_limit_interval: secs(10),
        ..crashy()
    };
    let mut h = Harness::booted(vec![("a", config)]);
    crash_and_expect_restart_after(&mut h, "a", ms(100));
    crash_and_expect_restart_after(&mut h, "a", ms(200));
    // a fourth start within 10s is refused
    assert_eq!(core(h.exit("a", ExitStatus::Code(1))), []);
    assert_eq!(h.state("a"), ServiceState::Failed);
    assert_eq!(h.detail("a"), "start limit reached");
    assert_eq!(h.due_in(), None);
    assert_eq!(core(h.advance(secs(60))), []);

    assert_eq!(core(h.send(Event::Start { name: "a".into() })), [spawn("a")]);
    // the limit and the backoff start from scratch
    crash_and_expect_restart_after(&mut h, "a", ms(100));
    crash_and_expect_restart_after(&mut h, "a", ms(200));
}

#[test]
fn starts_outside_the_interval_do_not_count() {
    let config = ServiceConfig {
        start_limit_burst: 2,
        start_limit_interval: secs(1),
        restart_delay_max: secs(5),
        ..crashy()
    };
    let mut h = Harness::booted(vec![("a", config)]);
    h.advance(secs(2));
    crash_and_expect_restart_after(&mut h, "a", ms(100));
    h.advance(secs(2));
    crash_and_expect_restart_after(&mut h, "a", ms(200));
}

#[test]
fn restart_no_stays_down() {
    let no = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("bad", no.clone()), ("good", no)]);
    assert_eq!(core(h.exit("bad", ExitStatus::Code(2))), []);
    assert_eq!(core(h.exit("good", ExitStatus::Code(0))), []);
    assert_eq!(h.state("bad"), ServiceState::Failed);
    assert_eq!(h.detail("bad"), "exited with code 2");
    assert_eq!(h.state("good"), ServiceState::Exited);
    assert_eq!(h.get("good").last_exit, Some(ExitStatus::Code(0)));
    assert_eq!(h.due_in(), None);
}

#[test]
fn on_failure_ignores_exit_0_but_always_restarts() {
    let always = ServiceConfig {
        restart: RestartPolicy::Always,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("always", always), ("onfail", crashy())]);
    assert_eq!(core(h.exit("onfail", ExitStatus::Code(0))), []);
    assert_eq!(h.state("onfail"), ServiceState::Exited);
    assert_eq!(core(h.exit("always", ExitStatus::Code(0))), []);
    assert_eq!(h.state("always"), ServiceState::Starting);
    assert_eq!(core(h.advance(ms(100))), [spawn("always")]);
}

#[test]
fn death_by_signal_is_a_failure() {
    let mut h = Harness::booted(vec![("a", crashy())]);
    assert_eq!(core(h.exit("a", ExitStatus::Signal(KILL))), []);
    assert_eq!(core(h.advance(ms(100))), [spawn("a")]);
}

#[test]
fn failed_spawn_follows_the_restart_policy() {
    let no = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::new(vec![("a", crashy()), ("b", no)]);
    h.auto_spawn = false;
    assert_eq!(core(h.boot()), [spawn("a"), spawn("b")]);
    let failed = |name: &str| Event::SpawnFailed {
        name: name.into(),
        reason: "no such file".into(),
    };
    h.send(failed("a"));
    h.send(failed("b"));
    assert_eq!(h.state("a"), ServiceState::Starting);
    assert_eq!(core(h.advance(ms(100))), [spawn("a")]);
    assert_eq!(h.state("b"), ServiceState::Failed);
    assert_eq!(h.detail("b"), "cannot spawn: no such file");
}

#[test]
fn operator_stop_keeps_it_down_and_restart_is_immediate() {
    let always = ServiceConfig {
        restart: RestartPolicy::Always,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("a", always)]);
    assert_eq!(core(h.send(Event::Restart { name: "a".into() })), [term("a")]);
    assert_eq!(core(h.exit("a", ExitStatus::Signal(TERM))), [spawn("a")]);

    assert_eq!(core(h.send(Event::Stop { name: "a".into() })), [term("a")]);
    assert_eq!(h.state("a"), ServiceState::Stopping);
    assert_eq!(core(h.exit("a", ExitStatus::Signal(TERM))), []);
    assert_eq!(h.state("a"), ServiceState::Exited);
    assert_eq!(h.due_in(), None);
    assert_eq!(h.get("a").restarts, 0);
}

#[test]
fn operator_errors_are_typed() {
    let mut h = Harness::with(vec![("a", crashy())], &[("bad", "unknown field")], secs(1));
    h.boot();
    let unknown = h.sup.handle(Event::Start { name: "x".into() }, h.now);
    assert_eq!(unknown, Err(SupervisorError::UnknownService { name: "x".into() }));
    let invalid = h.sup.handle(Event::Restart { name: "bad".into() }, h.now);
    assert_eq!(
        invalid,
        Err(SupervisorError::InvalidService {
            name: "bad".into(),
            reason: "unknown field".into()
        })
    );
    h.send(Event::Shutdown);
    let late = h.sup.handle(Event::Start { name: "a".into() }, h.now);
    assert_eq!(late, Err(SupervisorError::ShuttingDown));
}

#[test]
fn start_while_stopping_restarts_after_the_stop() {
    let mut h = Harness::booted(vec![("a", crashy())]);
    h.send(Event::Stop { name: "a".into() });
    assert_eq!(core(h.send(Event::Start { name: "a".into() })), []);
    assert_eq!(core(h.exit("a", ExitStatus::Signal(TERM))), [spawn("a")]);
}

#[test]
fn no_delay_restarts_in_the_same_turn_after_an_exit_but_not_after_a_failed_start() {
    let config = ServiceConfig {
        restart_delay: Duration::ZERO,
        start_limit_burst: 100,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("a", config)]);
    // An exit: the spawn follows at once, no timer.
    assert_eq!(core(h.exit("a", ExitStatus::Code(1))), [spawn("a")]);
    assert_eq!(h.get("a").restarts, 1);
    // A failed start: the retry waits for a turn of the loop (a timer due
    // now), so a spawn that keeps failing cannot hold it.
    h.auto_spawn = false;
    assert_eq!(core(h.exit("a", ExitStatus::Code(1))), [spawn("a")]);
    let failed = Event::SpawnFailed {
        name: "a".into(),
        reason: "no such file".into(),
    };
    assert_eq!(core(h.send(failed)), []);
    assert_eq!(h.due_in(), Some(Duration::ZERO));
    assert_eq!(h.detail("a"), "restart pending");
    assert_eq!(core(h.advance(Duration::ZERO)), [spawn("a")]);
}
