//! Scheduled oneshots with simulated time: the wall clock is data, each
//! next run a deadline, a run still going when the next is due is skipped.

use std::time::{SystemTime, UNIX_EPOCH};

use super::*;
use crate::supervisor::schedule::{civil_from_days, Utc};
use crate::supervisor::{RestartPolicy, Schedule, ServiceType};

fn job(schedule: &str) -> ServiceConfig {
    ServiceConfig {
        service_type: ServiceType::Oneshot,
        schedule: Some(Box::new(Schedule::parse(schedule).unwrap())),
        ..ServiceConfig::default()
    }
}

/// The wall time of "YYYY-MM-DDTHH:MM:SSZ".
fn wall(text: &str) -> SystemTime {
    let n = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (y, mo, d) = (n(0..4), n(5..7), n(8..10));
    // search the day: tests stay near 2026
    let day = (0..40_000).find(|&day| civil_from_days(day) == (y, mo, d)).unwrap();
    let secs = day * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// Boots with the wall clock at `at`.
fn booted_at(services: Vec<(&str, ServiceConfig)>, at: &str) -> Harness {
    let mut h = Harness::new(services);
    h.sup.set_wall(h.now, wall(at));
    h.boot();
    h
}

fn next_run(h: &Harness, name: &str) -> String {
    let at = h.get(name).next_run.expect("a next run");
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
    Utc(secs as i64).to_string()
}

#[test]
fn a_scheduled_oneshot_waits_for_its_minute_then_for_the_next() {
    let mut h = booted_at(vec![("job", job("*/5 * * * *"))], "2026-11-30T10:33:30Z");
    assert_eq!(h.state("job"), ServiceState::Exited);
    assert_eq!(next_run(&h, "job"), "2026-11-30T10:35:00Z");
    assert_eq!(h.due_in(), Some(secs(90)));
    assert_eq!(core(h.advance(secs(90) - ms(1))), []);
    assert_eq!(core(h.advance(ms(1))), [spawn("job")]);
    assert_eq!(next_run(&h, "job"), "2026-11-30T10:40:00Z");
    h.advance(secs(3));
    h.exit("job", ExitStatus::Code(0));
    assert_eq!(h.state("job"), ServiceState::Exited);
    assert_eq!(h.due_in(), Some(secs(300 - 3)));
}

#[test]
fn a_run_still_going_when_the_next_is_due_is_skipped() {
    let mut h = booted_at(vec![("job", job("* * * * *"))], "2026-11-30T10:00:30Z");
    assert_eq!(core(h.advance(secs(30))), [spawn("job")]);
    // still running a minute later: that run is skipped, the one after is not
    assert_eq!(core(h.advance(secs(60))), []);
    assert_eq!(h.state("job"), ServiceState::Running);
    assert_eq!(next_run(&h, "job"), "2026-11-30T10:03:00Z");
    h.advance(secs(10));
    h.exit("job", ExitStatus::Code(0));
    assert_eq!(core(h.advance(secs(50))), [spawn("job")]);
}

#[test]
fn month_ends_and_february_29() {
    let mut h = booted_at(vec![("job", job("0 0 1 * *"))], "2026-01-31T23:59:30Z");
    assert_eq!(core(h.advance(secs(30))), [spawn("job")]);
    h.exit("job", ExitStatus::Code(0));
    assert_eq!(next_run(&h, "job"), "2026-03-01T00:00:00Z");
    assert_eq!(h.due_in(), Some(secs(28 * 86_400)));

    let mut h = booted_at(vec![("job", job("0 12 29 2 *"))], "2024-02-28T12:00:00Z");
    assert_eq!(h.due_in(), Some(secs(86_400)));
    assert_eq!(core(h.advance(secs(86_400))), [spawn("job")]);
    h.exit("job", ExitStatus::Code(0));
    assert_eq!(next_run(&h, "job"), "2028-02-29T12:00:00Z");
}

#[test]
fn without_a_wall_clock_nothing_is_scheduled() {
    let mut h = Harness::booted(vec![("job", job("* * * * *"))]);
    assert_eq!(h.state("job"), ServiceState::Exited);
    assert_eq!((h.due_in(), h.get("job").next_run), (None, None));
    // the wall clock arrives later
    h.sup.set_wall(h.now, wall("2026-11-30T10:00:59Z"));
    assert_eq!(h.due_in(), Some(secs(1)));
}

#[test]
fn a_wall_clock_set_back_does_not_run_a_minute_twice() {
    let mut h = booted_at(vec![("job", job("* * * * *"))], "2026-11-30T10:00:30Z");
    // the 10:01 run is due on the loop's clock, but the wall clock, read
    // again on this wake-up, is still a second before it
    h.now += secs(30);
    h.sup.set_wall(h.now, wall("2026-11-30T10:00:59Z"));
    assert_eq!(core(h.send(Event::Timer)), [spawn("job")]);
    assert_eq!(next_run(&h, "job"), "2026-11-30T10:02:00Z");
}

#[test]
fn idle_scheduled_units_count_as_up() {
    let mut h = Harness::new(vec![("job", job("@daily"))]);
    h.sup.set_wall(h.now, wall("2026-11-30T10:00:00Z"));
    let told = h
        .boot()
        .into_iter()
        .any(|a| matches!(a, Action::NotifyManager { ready: true, .. }));
    assert!(told, "READY=1 does not wait for the first run");
}

#[test]
fn an_operator_stop_pauses_the_schedule_and_a_start_runs_and_resumes_it() {
    let mut h = booted_at(vec![("job", job("@hourly"))], "2026-11-30T10:00:00Z");
    h.send(Event::Stop { name: "job".into() });
    assert_eq!((h.due_in(), h.get("job").next_run), (None, None));
    assert_eq!(core(h.send(Event::Start { name: "job".into() })), [spawn("job")]);
    assert_eq!(next_run(&h, "job"), "2026-11-30T11:00:00Z");
}

#[test]
fn a_disabled_scheduled_unit_has_no_run_until_started() {
    let off = ServiceConfig {
        enabled: false,
        ..job("@hourly")
    };
    let mut h = booted_at(vec![("job", off)], "2026-11-30T10:00:00Z");
    assert_eq!((h.state("job"), h.due_in()), (ServiceState::Disabled, None));
    assert_eq!(core(h.send(Event::Start { name: "job".into() })), [spawn("job")]);
    assert_eq!(next_run(&h, "job"), "2026-11-30T11:00:00Z");
}

#[test]
fn a_failed_run_is_retried_by_the_next_due_time() {
    let no = ServiceConfig {
        restart: RestartPolicy::No,
        ..job("* * * * *")
    };
    let mut h = booted_at(vec![("job", no)], "2026-11-30T10:00:59Z");
    h.advance(secs(1));
    h.exit("job", ExitStatus::Code(1));
    assert_eq!(h.state("job"), ServiceState::Failed);
    assert_eq!(core(h.advance(secs(60))), [spawn("job")]);
}

#[test]
fn no_run_starts_while_shutting_down() {
    let mut h = booted_at(vec![("job", job("* * * * *"))], "2026-11-30T10:00:59Z");
    let out = core(h.send(Event::Shutdown));
    assert_eq!(out, [Action::Exit { code: 0 }]);
    assert_eq!(h.sup.next_deadline(), None);
}

#[test]
fn a_recovered_requirement_does_not_run_it_before_its_time() {
    let db = ServiceConfig {
        restart: RestartPolicy::No,
        ..ServiceConfig::default()
    };
    let report = ServiceConfig {
        requires: names(&["db"]),
        ..job("*/10 * * * *")
    };
    let mut h = booted_at(vec![("db", db), ("report", report)], "2026-11-30T10:09:00Z");
    h.exit("db", ExitStatus::Code(1));
    // due with db down: the run fails for the dependency
    assert_eq!(core(h.advance(secs(60))), []);
    assert_eq!(h.detail("report"), "required service db is down for good");
    // db comes back: report waits for 10:20
    assert_eq!(core(h.send(Event::Start { name: "db".into() })), [spawn("db")]);
    assert_eq!(h.state("report"), ServiceState::Failed);
    assert_eq!(core(h.advance(secs(600))), [spawn("report")]);
}
