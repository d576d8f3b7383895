//! The state changes the supervisor emits: one per change of a service's
//! user-visible state, with from, to, why and when, in the order things
//! happened, interleaved correctly with the actions.

use super::*;
use crate::supervisor::{Change, RestartPolicy, ServiceType};

fn changes(h: &mut Harness) -> Vec<(String, Option<ServiceState>, ServiceState, Option<String>)> {
    let mut out = Vec::new();
    while let Some(c) = h.sup.poll_change() {
        out.push((c.to.name.clone(), c.from, c.to.state, c.to.detail.clone()));
    }
    out
}

fn all(h: &mut Harness) -> Vec<Change> {
    std::iter::from_fn(|| h.sup.poll_change()).collect()
}

use ServiceState as S;

#[test]
fn boot_and_dependencies_in_order() {
    let web = ServiceConfig {
        service_type: ServiceType::Notify,
        ..ServiceConfig::default()
    };
    let ticker = ServiceConfig {
        after: names(&["web"]),
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("web", web), ("ticker", ticker)]);
    assert_eq!(
        changes(&mut h),
        [
            ("ticker".into(), None, S::Starting, Some("waiting for web".into())),
            ("web".into(), None, S::Starting, None),
            ("web".into(), Some(S::Starting), S::Running, None),
        ]
    );
    h.now += ms(250);
    h.ready("web");
    let got = all(&mut h);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[0].name(), got[0].from, got[0].state()),
        ("web", Some(S::Running), S::Ready)
    );
    assert_eq!(got[0].at(), h.now, "stamped with the time of the change");
    assert_eq!((got[1].name(), got[1].state()), ("ticker", S::Ready));
    assert!(got[0].seq < got[1].seq);
}

#[test]
fn a_change_waits_for_the_actions_before_it() {
    let ticker = ServiceConfig {
        after: names(&["web"]),
        ..ServiceConfig::default()
    };
    let web = ServiceConfig {
        service_type: ServiceType::Notify,
        ..ServiceConfig::default()
    };
    let mut h = Harness::new(vec![("web", web), ("ticker", ticker)]);
    h.sup.boot(h.now);
    // boot's changes come before the spawn of web
    assert_eq!(changes(&mut h).len(), 2);
    assert_eq!(h.sup.poll_action(), Some(spawn("web")));
    h.sup
        .handle(
            Event::Spawned {
                name: "web".into(),
                pid: 7,
            },
            h.now,
        )
        .unwrap();
    // "web: running" came after the manager was told "0 of 2 up"
    assert_eq!(changes(&mut h), []);
    assert!(matches!(h.sup.poll_action(), Some(Action::NotifyManager { .. })));
    assert_eq!(changes(&mut h), [("web".into(), Some(S::Starting), S::Running, None)]);
    h.sup.handle(Event::Ready { name: "web".into() }, h.now).unwrap();
    // web: ready, then ticker is spawned, then its change
    assert_eq!(changes(&mut h), [("web".into(), Some(S::Running), S::Ready, None)]);
    assert_eq!(h.sup.poll_action(), Some(spawn("ticker")));
    h.sup
        .handle(
            Event::Spawned {
                name: "ticker".into(),
                pid: 8,
            },
            h.now,
        )
        .unwrap();
    while h.sup.poll_action().is_some() {}
    assert_eq!(changes(&mut h), [("ticker".into(), Some(S::Starting), S::Ready, None)]);
}

#[test]
fn a_stop_by_hand_says_stopped_a_crash_says_why() {
    let once = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("web", Default::default()), ("job", once)]);
    changes(&mut h);
    h.send(Event::Stop { name: "web".into() });
    assert_eq!(changes(&mut h), [("web".into(), Some(S::Ready), S::Stopping, None)]);
    h.now += ms(30);
    h.exit("web", ExitStatus::Signal(TERM));
    assert_eq!(
        changes(&mut h),
        [("web".into(), Some(S::Stopping), S::Exited, Some("stopped".into()))]
    );
    assert!(h.get("web").stopped);
    h.exit("job", ExitStatus::Code(2));
    assert_eq!(
        changes(&mut h),
        [(
            "job".into(),
            Some(S::Ready),
            S::Failed,
            Some("exited with code 2".into())
        )]
    );
    // started again: no longer "stopped"
    h.send(Event::Start { name: "web".into() });
    assert_eq!(
        changes(&mut h),
        [
            ("web".into(), Some(S::Exited), S::Starting, None),
            ("web".into(), Some(S::Starting), S::Ready, None)
        ]
    );
    assert!(!h.get("web").stopped);
}

#[test]
fn nothing_changes_nothing_is_emitted() {
    let mut h = Harness::booted(vec![("a", Default::default())]);
    changes(&mut h);
    h.send(Event::Status {
        name: "a".into(),
        text: "busy".into(),
    });
    h.send(Event::Exited {
        pid: 4242,
        status: ExitStatus::Code(1),
        service: None,
    });
    assert_eq!(changes(&mut h), []);
}

#[test]
fn restarts_show_starting_with_the_delay() {
    let mut h = Harness::booted(vec![("a", Default::default())]);
    changes(&mut h);
    h.exit("a", ExitStatus::Code(1));
    assert_eq!(
        changes(&mut h),
        [("a".into(), Some(S::Ready), S::Starting, Some("restart pending".into()))]
    );
    h.advance(secs(1));
    assert_eq!(changes(&mut h), [("a".into(), Some(S::Starting), S::Ready, None)]);
}

#[test]
fn reload_adds_and_removes() {
    let mut h = Harness::booted(vec![("a", Default::default()), ("b", Default::default())]);
    changes(&mut h);
    let services = configs(vec![("a", Default::default()), ("c", Default::default())]);
    let invalid = [("d".to_string(), "bad key".to_string())].into_iter().collect();
    h.sup.reload(services, invalid, h.now);
    h.drain();
    let got = changes(&mut h);
    assert!(
        got.contains(&("b".into(), Some(S::Ready), S::Stopping, None)),
        "{got:?}"
    );
    assert!(got.contains(&("c".into(), None, S::Starting, None)), "{got:?}");
    assert!(
        got.contains(&("c".into(), Some(S::Starting), S::Ready, None)),
        "{got:?}"
    );
    assert!(
        got.contains(&("d".into(), None, S::Invalid, Some("bad key".into()))),
        "{got:?}"
    );
    h.exit("b", ExitStatus::Signal(TERM));
    let gone = all(&mut h);
    assert_eq!(gone.len(), 1);
    assert!(gone[0].removed && gone[0].name() == "b");
}

#[test]
fn shutdown_changes_come_before_exit() {
    let mut h = Harness::booted(vec![("a", Default::default())]);
    changes(&mut h);
    h.sup.handle(Event::Shutdown, h.now).unwrap();
    let pid = h.get("a").pid.unwrap();
    while h.sup.poll_action().is_some() {}
    assert_eq!(changes(&mut h), [("a".into(), Some(S::Ready), S::Stopping, None)]);
    h.sup
        .handle(
            Event::Exited {
                pid,
                status: ExitStatus::Signal(TERM),
                service: Some("a".into()),
            },
            h.now,
        )
        .unwrap();
    // the exit change is handed out before Exit is polled
    assert_eq!(
        changes(&mut h),
        [("a".into(), Some(S::Stopping), S::Exited, Some("stopped".into()))]
    );
    assert_eq!(h.sup.poll_action(), Some(Action::Exit { code: 0 }));
}
