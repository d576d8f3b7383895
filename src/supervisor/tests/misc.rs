//! Orphans, idle deadlines, sd_notify upward, status text.

use super::*;
use crate::supervisor::{RestartPolicy, ServiceType};

fn notify_manager(actions: &[Action]) -> Vec<(bool, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::NotifyManager { ready, status, .. } => Some((*ready, status.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn unknown_pids_are_ignored() {
    let mut h = Harness::booted(vec![("a", Default::default())]);
    let before = h.sup.status();
    let orphan = Event::Exited {
        pid: 4242,
        status: ExitStatus::Code(1),
        service: None,
    };
    assert_eq!(h.send(orphan), []);
    // Named for a service whose process it is not: ignored too.
    let stale = Event::Exited {
        pid: 4242,
        status: ExitStatus::Code(1),
        service: Some("a".into()),
    };
    assert_eq!(h.send(stale), []);
    assert_eq!(h.sup.status(), before);
}

#[test]
fn no_deadline_while_idle() {
    let no = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let notify = ServiceConfig {
        service_type: ServiceType::Notify,
        ..ServiceConfig::default()
    };
    let mut h = Harness::booted(vec![("a", Default::default()), ("b", no), ("c", notify)]);
    // a notify service without ready_timeout may take its time
    assert_eq!(h.sup.next_deadline(), None);
    h.ready("c");
    h.exit("b", ExitStatus::Code(0));
    assert_eq!(h.sup.next_deadline(), None);
}

#[test]
fn manager_is_told_ready_once_every_enabled_service_is_up() {
    let notify = ServiceConfig {
        service_type: ServiceType::Notify,
        ..ServiceConfig::default()
    };
    let off = ServiceConfig {
        enabled: false,
        ..ServiceConfig::default()
    };
    let mut h = Harness::new(vec![("a", Default::default()), ("b", notify), ("off", off)]);
    let boot = h.boot();
    let expected = [
        (false, "0 of 2 services up".into()),
        (false, "1 of 2 services up".into()),
    ];
    assert_eq!(notify_manager(&boot), expected);
    let ready = h.ready("b");
    assert_eq!(notify_manager(&ready), [(true, "2 of 2 services up".into())]);

    // a crash changes the status line; READY=1 is not sent again
    let crash = h.exit("a", ExitStatus::Code(1));
    assert_eq!(notify_manager(&crash), [(false, "1 of 2 services up".into())]);
    let back = h.advance(ms(100));
    assert_eq!(notify_manager(&back), [(false, "2 of 2 services up".into())]);
}

#[test]
fn no_services_is_ready_at_boot() {
    let mut h = Harness::new(vec![]);
    let boot = h.boot();
    assert_eq!(notify_manager(&boot), [(true, "0 of 0 services up".into())]);
    let out = h.send(Event::Shutdown);
    assert_eq!(out.last(), Some(&Action::Exit { code: 0 }));
}

#[test]
fn status_text_and_stopping_announcement_are_shown() {
    let mut h = Harness::booted(vec![("a", Default::default())]);
    let text = Event::Status {
        name: "a".into(),
        text: "serving".into(),
    };
    h.send(text);
    assert_eq!(h.get("a").status_text.as_deref(), Some("serving"));
    h.send(Event::Stopping { name: "a".into() });
    assert_eq!(h.state("a"), ServiceState::Stopping);
    // its exit afterwards still follows the restart policy
    h.exit("a", ExitStatus::Code(1));
    assert_eq!(core(h.advance(ms(100))), [spawn("a")]);
}

#[test]
fn since_tracks_state_changes() {
    let mut h = Harness::booted(vec![("a", Default::default())]);
    let t0 = h.now;
    h.advance(secs(5));
    assert_eq!(h.get("a").since, t0);
    h.exit("a", ExitStatus::Code(1));
    assert_eq!(h.get("a").since, t0 + secs(5));
}

#[test]
fn illegal_events_are_ignored() {
    let mut h = Harness::booted(vec![("a", Default::default())]);
    let before = h.sup.status();
    h.send(Event::Spawned {
        name: "a".into(),
        pid: 7,
    });
    h.send(Event::Ready { name: "nope".into() });
    h.send(Event::Timer);
    assert_eq!(h.sup.status(), before);
}
