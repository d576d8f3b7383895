//! Stopping one service, shutting down everything, and the exit code.

use super::*;
use crate::supervisor::RestartPolicy;

fn exit(code: i32) -> Action {
    Action::Exit { code }
}

/// db <- app (requires db) <- web (after app), plus a main-less setup.
fn stack() -> Vec<(&'static str, ServiceConfig)> {
    vec![
        ("db", ServiceConfig::default()),
        (
            "app",
            ServiceConfig {
                requires: names(&["db"]),
                ..ServiceConfig::default()
            },
        ),
        (
            "web",
            ServiceConfig {
                after: names(&["app"]),
                ..ServiceConfig::default()
            },
        ),
    ]
}

fn main_service() -> ServiceConfig {
    ServiceConfig {
        main: true,
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    }
}

#[test]
fn stop_escalates_to_kill_after_the_stop_timeout() {
    let config = ServiceConfig {
        stop_timeout: secs(5),
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("a", config)]);
    assert_eq!(core(h.send(Event::Stop { name: "a".into() })), [term("a")]);
    assert_eq!(h.due_in(), Some(secs(5)));
    assert_eq!(core(h.advance(secs(5) - ms(1))), []);
    assert_eq!(core(h.advance(ms(1))), [kill_all("a")]);
    assert_eq!(h.due_in(), None);
    assert_eq!(core(h.exit("a", ExitStatus::Signal(KILL))), []);
    assert_eq!(h.state("a"), ServiceState::Exited);
    assert_eq!(h.due_in(), None);
}

#[test]
fn shutdown_stops_in_reverse_dependency_order() {
    let mut h = Harness::booted(stack());
    let out = h.send(Event::Shutdown);
    let stopping = Action::NotifyManager {
        ready: false,
        status: "stopping".into(),
        stopping: true,
    };
    assert_eq!(out, [stopping, term("web")]);
    assert_eq!(core(h.exit("web", ExitStatus::Signal(TERM))), [term("app")]);
    assert_eq!(core(h.exit("app", ExitStatus::Code(0))), [term("db")]);
    assert_eq!(core(h.exit("db", ExitStatus::Signal(TERM))), [exit(0)]);
    assert_eq!(h.sup.next_deadline(), None);
    // after exit, everything is ignored
    assert_eq!(h.send(Event::Shutdown), []);
}

#[test]
fn services_not_yet_started_are_dropped_at_shutdown() {
    let mut h = Harness::new(stack());
    h.auto_spawn = false;
    assert_eq!(core(h.boot()), [spawn("db")]);
    assert_eq!(core(h.send(Event::Shutdown)), []);
    // the spawn in flight is stopped as soon as its pid is known
    assert_eq!(core(h.spawned("db")), [term("db")]);
    assert_eq!(core(h.exit("db", ExitStatus::Signal(TERM))), [exit(0)]);
}

#[test]
fn shutdown_timeout_kills_everything_and_exits() {
    let mut h = Harness::with(stack(), &[], secs(3));
    h.boot();
    assert_eq!(core(h.send(Event::Shutdown)), [term("web")]);
    assert_eq!(h.due_in(), Some(secs(3)));
    let out = core(h.advance(secs(3)));
    assert_eq!(out, [kill_all("app"), kill_all("db"), kill_all("web"), exit(1)]);
    assert_eq!(h.sup.next_deadline(), None);
}

#[test]
fn second_shutdown_kills_what_is_left() {
    let mut h = Harness::booted(stack());
    h.send(Event::Shutdown);
    let out = core(h.send(Event::Shutdown));
    assert_eq!(out, [kill_all("app"), kill_all("db"), kill_all("web")]);
    h.exit("web", ExitStatus::Signal(KILL));
    h.exit("app", ExitStatus::Signal(KILL));
    assert_eq!(core(h.exit("db", ExitStatus::Signal(KILL))), [exit(1)]);
}

#[test]
fn main_exit_code_becomes_the_exit_code() {
    let mut h = Harness::booted(vec![("main", main_service()), ("side", Default::default())]);
    assert_eq!(core(h.exit("main", ExitStatus::Code(3))), [term("side")]);
    assert_eq!(core(h.exit("side", ExitStatus::Code(1))), [exit(3)]);
}

#[test]
fn main_killed_by_a_signal_exits_128_plus_n() {
    let mut h = Harness::booted(vec![("main", main_service())]);
    assert_eq!(core(h.exit("main", ExitStatus::Signal(KILL))), [exit(128 + KILL)]);

    // asked to shut down, main dies of SIGTERM like under tini: 143
    let mut h = Harness::booted(vec![("main", main_service())]);
    assert_eq!(core(h.send(Event::Shutdown)), [term("main")]);
    assert_eq!(core(h.exit("main", ExitStatus::Signal(TERM))), [exit(128 + TERM)]);
}

#[test]
fn a_restarting_main_does_not_shut_down() {
    let config = ServiceConfig {
        restart: RestartPolicy::OnFailure,
        ..main_service()
    };
    let mut h = Harness::booted(vec![("main", config)]);
    assert_eq!(core(h.exit("main", ExitStatus::Code(1))), []);
    assert_eq!(core(h.advance(ms(100))), [spawn("main")]);
    assert_eq!(core(h.exit("main", ExitStatus::Code(0))), [exit(0)]);
}

#[test]
fn without_main_exit_code_is_0_only_when_all_stopped_cleanly() {
    // clean: stop signal or code 0
    let mut h = Harness::booted(vec![("a", Default::default()), ("b", Default::default())]);
    h.send(Event::Shutdown);
    h.exit("a", ExitStatus::Code(0));
    assert_eq!(core(h.exit("b", ExitStatus::Signal(TERM))), [exit(0)]);

    // unclean: needed SIGKILL
    let mut h = Harness::booted(vec![("a", Default::default())]);
    h.send(Event::Shutdown);
    assert_eq!(core(h.advance(secs(10))), [kill_all("a")]);
    assert_eq!(core(h.exit("a", ExitStatus::Signal(KILL))), [exit(1)]);

    // unclean: a service had failed for good
    let no = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("a", no), ("b", Default::default())]);
    h.exit("a", ExitStatus::Code(1));
    h.send(Event::Shutdown);
    assert_eq!(core(h.exit("b", ExitStatus::Signal(TERM))), [exit(1)]);
}

#[test]
fn a_service_dying_during_shutdown_is_not_restarted() {
    let mut h = Harness::booted(stack());
    h.send(Event::Shutdown);
    // db crashes by itself while web is still stopping
    assert_eq!(core(h.exit("db", ExitStatus::Code(1))), []);
    assert_eq!(h.state("db"), ServiceState::Failed);
    assert_eq!(core(h.exit("web", ExitStatus::Signal(TERM))), [term("app")]);
    assert_eq!(core(h.exit("app", ExitStatus::Signal(TERM))), [exit(1)]);
}

#[test]
fn operator_stop_of_main_shuts_everything_down() {
    let mut h = Harness::booted(vec![("main", main_service()), ("side", Default::default())]);
    assert_eq!(core(h.send(Event::Stop { name: "main".into() })), [term("main")]);
    assert_eq!(core(h.exit("main", ExitStatus::Code(0))), [term("side")]);
    assert_eq!(core(h.exit("side", ExitStatus::Signal(TERM))), [exit(0)]);
}
