//! Durations from outside (`--grace`, `--shutdown-timeout`, a unit's
//! `stop-timeout`, `restart-delay`...) parsed as tend parses them, then
//! used as tend uses them: as deadlines of the single-command mode and of
//! the supervisor, driven through a short life (start, crash, restart,
//! stop, shutdown) with the clock moved to each deadline.
//!
//! Input: up to six durations, one per line; then the last line's bytes
//! pick the events.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tend::entrypoint::{Entrypoint, Event as EpEvent, Settings};
use tend::supervisor::{Action, Event, ExitStatus, RestartPolicy, ServiceConfig, Supervisor};
use tend::unit::duration_arg as parse_duration;

fn entrypoint(grace: Duration, now: Instant) {
    let settings = Settings {
        group: false,
        success_codes: Vec::new(),
        grace,
    };
    let mut ep = Entrypoint::new(2, settings);
    ep.handle(
        EpEvent::Exited {
            pid: 2,
            status: ExitStatus::Code(1),
        },
        now,
    );
    if let Some(at) = ep.next_deadline() {
        ep.handle(EpEvent::Timer, at);
    }
    ep.handle(EpEvent::NoChildren, now);
}

fn supervisor(d: &[Duration], moves: &[u8], now: Instant) {
    let config = ServiceConfig {
        has_ready_check: true,
        ready_timeout: Some(d[0]),
        restart: RestartPolicy::Always,
        restart_delay: d[1],
        restart_delay_max: d[2],
        start_limit_interval: d[3],
        stop_timeout: d[4],
        ..ServiceConfig::default()
    };
    let services = BTreeMap::from([("s".to_string(), config)]);
    let mut sup = Supervisor::new(services, BTreeMap::new(), d[5], now);
    sup.boot(now);
    let (mut now, mut pid) = (now, 100);
    let name = || "s".to_string();
    for &m in moves.iter().take(32) {
        while let Some(action) = sup.poll_action() {
            if let Action::Spawn { name } = action {
                pid += 1;
                let _ = sup.handle(Event::Spawned { name, pid }, now);
            }
        }
        let event = match m % 8 {
            0 => Event::Exited {
                pid,
                status: ExitStatus::Code(1),
                service: Some(name()),
            },
            1 => Event::Ready { name: name() },
            2 => Event::Stop { name: name() },
            3 => Event::Start { name: name() },
            4 => Event::Restart { name: name() },
            5 => Event::Shutdown,
            _ => {
                // The loop sleeps until the next deadline.
                if let Some(at) = sup.next_deadline() {
                    now = now.max(at);
                }
                Event::Timer
            }
        };
        let _ = sup.handle(event, now);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let mut durations = Vec::new();
    for line in lines.by_ref().take(6) {
        match parse_duration(line.trim()) {
            Ok(d) => {
                assert_eq!(parse_duration(&humantime::format_duration(d).to_string()), Ok(d));
                durations.push(d);
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }
    let Some(&first) = durations.first() else { return };
    let now = Instant::now();
    entrypoint(first, now);
    while durations.len() < 6 {
        durations.push(first);
    }
    let moves = lines.next().unwrap_or("").as_bytes();
    supervisor(&durations, moves, now);
});
