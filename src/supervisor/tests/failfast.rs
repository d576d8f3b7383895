//! `on-failure = "shutdown"`: a service that fails for good ends the whole
//! environment, gracefully and in reverse order, with its code.

use super::*;
use crate::supervisor::{OnFailure, RestartPolicy};

fn exit(code: i32) -> Action {
    Action::Exit { code }
}

fn fail_fast(restart: RestartPolicy) -> ServiceConfig {
    ServiceConfig {
        restart,
        on_failure: Some(OnFailure::Shutdown),
        ..ServiceConfig::default()
    }
}

/// db <- app (requires db) <- web (after app), and `job` that fails fast.
fn stack(job: ServiceConfig) -> Vec<(&'static str, ServiceConfig)> {
    let app = ServiceConfig {
        requires: names(&["db"]),
        ..ServiceConfig::default()
    };
    let web = ServiceConfig {
        after: names(&["app"]),
        ..ServiceConfig::default()
    };
    vec![
        ("db", ServiceConfig::default()),
        ("app", app),
        ("web", web),
        ("job", job),
    ]
}

#[test]
fn a_failure_with_restart_no_stops_everything_in_reverse_order_with_its_code() {
    let mut h = Harness::booted(stack(fail_fast(RestartPolicy::No)));
    assert_eq!(core(h.exit("job", ExitStatus::Code(3))), [term("web")]);
    assert_eq!(h.state("job"), ServiceState::Failed);
    assert_eq!(core(h.exit("web", ExitStatus::Signal(TERM))), [term("app")]);
    assert_eq!(core(h.exit("app", ExitStatus::Signal(TERM))), [term("db")]);
    assert_eq!(core(h.exit("db", ExitStatus::Signal(TERM))), [exit(3)]);
}

#[test]
fn death_by_a_signal_exits_128_plus_n() {
    let mut h = Harness::booted(vec![("job", fail_fast(RestartPolicy::No))]);
    assert_eq!(core(h.exit("job", ExitStatus::Signal(KILL))), [exit(128 + KILL)]);
}

#[test]
fn the_start_limit_fails_it_for_good_with_the_last_code() {
    let config = ServiceConfig {
        start_limit_burst: 2,
        ..fail_fast(RestartPolicy::OnFailure)
    };
    let mut h = Harness::booted(vec![("job", config), ("side", ServiceConfig::default())]);
    // the first failure is restarted: no shutdown yet
    assert_eq!(core(h.exit("job", ExitStatus::Code(4))), []);
    assert_eq!(core(h.advance(ms(100))), [spawn("job")]);
    assert_eq!(core(h.exit("job", ExitStatus::Code(5))), [term("side")]);
    assert_eq!(h.detail("job"), "start limit reached");
    assert_eq!(core(h.exit("side", ExitStatus::Signal(TERM))), [exit(5)]);
}

#[test]
fn a_failed_requirement_fails_it_with_the_requirements_code() {
    let db = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let app = ServiceConfig {
        requires: names(&["db"]),
        ..fail_fast(RestartPolicy::OnFailure)
    };
    let mut h = Harness::booted(vec![("db", db), ("app", app), ("side", ServiceConfig::default())]);
    // db's failure stops app, whose failure (once stopped) ends everything
    assert_eq!(core(h.exit("db", ExitStatus::Code(6))), [term("app")]);
    assert_eq!(core(h.exit("app", ExitStatus::Signal(TERM))), [term("side")]);
    assert_eq!(h.detail("app"), "required service db is down for good");
    assert_eq!(core(h.exit("side", ExitStatus::Signal(TERM))), [exit(6)]);
}

#[test]
fn its_code_beats_mains() {
    let main = ServiceConfig {
        main: true,
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("job", fail_fast(RestartPolicy::No)), ("main", main)]);
    assert_eq!(core(h.exit("job", ExitStatus::Code(2))), [term("main")]);
    assert_eq!(core(h.exit("main", ExitStatus::Signal(TERM))), [exit(2)]);
}

#[test]
fn clean_exits_restarts_and_the_default_do_not_shut_down() {
    let mut h = Harness::booted(vec![
        ("done", fail_fast(RestartPolicy::No)),
        ("flaky", fail_fast(RestartPolicy::OnFailure)),
        (
            "plain",
            ServiceConfig {
                restart: RestartPolicy::No,
                ..ServiceConfig::default()
            },
        ),
    ]);
    assert_eq!(core(h.exit("done", ExitStatus::Code(0))), []);
    assert_eq!(core(h.exit("flaky", ExitStatus::Code(1))), []);
    assert_eq!(core(h.exit("plain", ExitStatus::Code(1))), []);
    assert_eq!(h.state("plain"), ServiceState::Failed);
    assert_eq!(core(h.advance(ms(100))), [spawn("flaky")]);
}

#[test]
fn a_failure_during_shutdown_does_not_change_the_code() {
    let mut h = Harness::booted(vec![
        ("job", fail_fast(RestartPolicy::No)),
        ("side", ServiceConfig::default()),
    ]);
    h.send(Event::Shutdown);
    h.exit("job", ExitStatus::Code(9));
    assert_eq!(core(h.exit("side", ExitStatus::Signal(TERM))), [exit(1)]);
}
