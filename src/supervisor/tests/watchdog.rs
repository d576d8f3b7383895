//! The sd_notify watchdog: `WATCHDOG=1` within the interval once ready, or
//! the service is stopped with the watchdog signal and counts as failed;
//! `WATCHDOG=trigger`; `EXTEND_TIMEOUT_USEC=`.

use super::*;
use crate::supervisor::{RestartPolicy, ServiceType};

const ABRT: i32 = libc::SIGABRT;

fn watched(every: Duration) -> ServiceConfig {
    ServiceConfig {
        service_type: ServiceType::Notify,
        watchdog: Some(every),
        ..ServiceConfig::default()
    }
}

fn signal(name: &str, signal: i32) -> Action {
    Action::Signal {
        name: name.into(),
        signal,
    }
}

fn watchdog(name: &str) -> Event {
    Event::Watchdog { name: name.into() }
}

fn extend(name: &str, by: Duration) -> Event {
    Event::ExtendTimeout { name: name.into(), by }
}

#[test]
fn the_watchdog_starts_once_ready_and_each_ping_starts_it_over() {
    let mut h = Harness::booted(vec![("d", watched(secs(30)))]);
    // starting may take longer than the interval (as systemd's)
    assert_eq!(h.due_in(), None);
    h.ready("d");
    assert_eq!(h.due_in(), Some(secs(30)));
    assert_eq!(core(h.advance(secs(20))), []);
    h.send(watchdog("d"));
    assert_eq!(h.due_in(), Some(secs(30)));
    assert_eq!(core(h.advance(secs(29))), []);
    assert_eq!(h.state("d"), ServiceState::Ready);
}

#[test]
fn a_silent_service_is_stopped_with_sigabrt_then_restarted() {
    let mut h = Harness::booted(vec![("d", watched(secs(30)))]);
    h.ready("d");
    assert_eq!(core(h.advance(secs(30))), [signal("d", ABRT)]);
    assert_eq!(h.state("d"), ServiceState::Stopping);
    assert_eq!(core(h.exit("d", ExitStatus::Signal(ABRT))), []);
    assert_eq!(h.detail("d"), "restart pending");
    assert_eq!(core(h.advance(ms(100))), [spawn("d")]);
    assert_eq!(h.get("d").restarts, 1);
    // the new instance starts without a watchdog until it is ready again
    assert_eq!(h.due_in(), None);
}

#[test]
fn one_that_ignores_the_watchdog_signal_is_killed_after_the_stop_timeout() {
    let config = ServiceConfig {
        watchdog_signal: libc::SIGUSR1,
        restart: RestartPolicy::No,
        stop_timeout: secs(5),
        ..watched(secs(1))
    };
    let mut h = Harness::booted(vec![("d", config)]);
    h.ready("d");
    assert_eq!(core(h.advance(secs(1))), [signal("d", libc::SIGUSR1)]);
    assert_eq!(core(h.advance(secs(5))), [kill_all("d")]);
    h.exit("d", ExitStatus::Signal(KILL));
    assert_eq!(h.state("d"), ServiceState::Failed);
    assert_eq!(h.detail("d"), "watchdog timeout: no WATCHDOG=1 within 1s");
}

#[test]
fn pings_before_ready_do_not_arm_it() {
    let mut h = Harness::booted(vec![("d", watched(secs(30)))]);
    h.send(watchdog("d"));
    assert_eq!(h.due_in(), None);
}

#[test]
fn watchdog_trigger_fails_it_at_once() {
    let config = ServiceConfig {
        restart: RestartPolicy::No,
        ..watched(secs(30))
    };
    let mut h = Harness::booted(vec![("d", config)]);
    h.ready("d");
    let out = core(h.send(Event::WatchdogTrigger { name: "d".into() }));
    assert_eq!(out, [signal("d", ABRT)]);
    h.exit("d", ExitStatus::Signal(ABRT));
    assert_eq!(h.state("d"), ServiceState::Failed);
    assert_eq!(h.detail("d"), "watchdog triggered");
}

#[test]
fn extend_timeout_moves_the_start_deadline() {
    let config = ServiceConfig {
        ready_timeout: Some(secs(5)),
        ..watched(secs(30))
    };
    let mut h = Harness::booted(vec![("d", config)]);
    h.advance(secs(4));
    h.send(extend("d", secs(10)));
    assert_eq!(h.due_in(), Some(secs(10)));
    // a shorter extension never brings the deadline closer
    h.send(extend("d", secs(1)));
    assert_eq!(h.due_in(), Some(secs(10)));
    assert_eq!(core(h.advance(secs(9))), []);
    assert_eq!(core(h.advance(secs(1))), [term("d")]);
}

#[test]
fn extend_timeout_moves_the_watchdog_and_the_stop_deadline() {
    let mut h = Harness::booted(vec![("d", watched(secs(30)))]);
    h.ready("d");
    h.send(extend("d", secs(90)));
    assert_eq!(h.due_in(), Some(secs(90)));
    assert_eq!(core(h.advance(secs(60))), []);

    assert_eq!(core(h.send(Event::Stop { name: "d".into() })), [term("d")]);
    assert_eq!(h.due_in(), Some(secs(10)));
    h.advance(secs(8));
    h.send(extend("d", secs(20)));
    assert_eq!(core(h.advance(secs(19))), []);
    assert_eq!(core(h.advance(secs(1))), [kill_all("d")]);
}

#[test]
fn without_a_watchdog_a_ready_service_has_no_deadline() {
    let notify = ServiceConfig {
        service_type: ServiceType::Notify,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("d", notify)]);
    h.ready("d");
    h.send(watchdog("d"));
    h.send(extend("d", secs(5)));
    assert_eq!(h.due_in(), None);
}

fn interval(name: &str, every: Duration) -> Event {
    Event::WatchdogInterval {
        name: name.into(),
        every,
    }
}

#[test]
fn watchdog_usec_sets_the_interval_for_this_run_only() {
    let config = ServiceConfig {
        restart_delay: ms(100),
        ..watched(secs(30))
    };
    let mut h = Harness::booted(vec![("d", config)]);
    // Set before ready: it applies once the watchdog starts.
    h.send(interval("d", secs(10)));
    assert_eq!(h.due_in(), None);
    h.ready("d");
    assert_eq!(h.due_in(), Some(secs(10)));
    h.advance(secs(4));
    // Set while running: the deadline starts over with the new interval.
    h.send(interval("d", secs(2)));
    assert_eq!(h.due_in(), Some(secs(2)));
    h.send(watchdog("d"));
    assert_eq!(h.due_in(), Some(secs(2)));
    assert_eq!(core(h.advance(secs(2))), [signal("d", ABRT)]);
    h.exit("d", ExitStatus::Signal(ABRT));
    assert_eq!(h.detail("d"), "restart pending");
    assert_eq!(core(h.advance(ms(100))), [spawn("d")]);
    // The next run has the unit's interval again.
    h.ready("d");
    assert_eq!(h.due_in(), Some(secs(30)));
}

#[test]
fn watchdog_usec_zero_turns_it_off_even_without_one_in_the_unit() {
    let mut h = Harness::booted(vec![("d", watched(secs(30)))]);
    h.ready("d");
    h.send(interval("d", Duration::ZERO));
    assert_eq!(h.due_in(), None);
    assert_eq!(core(h.advance(secs(3600))), []);
    assert_eq!(h.state("d"), ServiceState::Ready);
    // A unit without a watchdog gets one when the service asks.
    let plain = ServiceConfig {
        service_type: ServiceType::Notify,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("p", plain)]);
    h.ready("p");
    assert_eq!(h.due_in(), None);
    h.send(interval("p", secs(5)));
    assert_eq!(h.due_in(), Some(secs(5)));
}
