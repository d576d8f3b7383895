//! Supervisor tests with simulated time, in the manner of dinit's
//! `advance_time`: a [`Harness`] holds `now`, fakes the event loop (every
//! `Spawn` gets a pid at once unless `auto_spawn` is off) and hands back the
//! actions each step produced.

mod changes;
mod deps;
mod failfast;
mod health;
mod misc;
mod reload;
mod restart;
mod scale;
mod schedule;
mod shutdown;
mod watchdog;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Action, Event, ExitStatus, ServiceConfig, ServiceState, ServiceStatus, Supervisor};

pub(super) const TERM: i32 = libc::SIGTERM;
pub(super) const KILL: i32 = libc::SIGKILL;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn spawn(name: &str) -> Action {
    Action::Spawn { name: name.into() }
}

pub(super) fn term(name: &str) -> Action {
    Action::Signal {
        name: name.into(),
        signal: TERM,
    }
}

pub(super) fn kill_all(name: &str) -> Action {
    Action::KillAll { name: name.into() }
}

pub(super) fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub(super) fn configs(services: Vec<(&str, ServiceConfig)>) -> BTreeMap<String, ServiceConfig> {
    services
        .into_iter()
        .map(|(name, config)| (name.to_string(), config))
        .collect()
}

/// Drops the `NotifyManager` chatter.
pub(super) fn core(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::NotifyManager { .. }))
        .collect()
}

pub(super) struct Harness {
    pub sup: Supervisor,
    pub now: Instant,
    pub auto_spawn: bool,
    next_pid: i32,
}

impl Harness {
    pub fn new(services: Vec<(&str, ServiceConfig)>) -> Self {
        Self::with(services, &[], secs(30))
    }

    pub fn with(services: Vec<(&str, ServiceConfig)>, invalid: &[(&str, &str)], shutdown_timeout: Duration) -> Self {
        let now = Instant::now();
        let invalid = invalid
            .iter()
            .map(|(name, reason)| (name.to_string(), reason.to_string()))
            .collect();
        let sup = Supervisor::new(configs(services), invalid, shutdown_timeout, now);
        Harness {
            sup,
            now,
            auto_spawn: true,
            next_pid: 100,
        }
    }

    /// Boots and spawns everything that starts at once.
    pub fn booted(services: Vec<(&str, ServiceConfig)>) -> Self {
        let mut h = Self::new(services);
        h.boot();
        h
    }

    pub fn boot(&mut self) -> Vec<Action> {
        self.sup.boot(self.now);
        self.drain()
    }

    pub fn send(&mut self, event: Event) -> Vec<Action> {
        let result = self.sup.handle(event, self.now);
        assert_eq!(result, Ok(()));
        self.drain()
    }

    /// Moves the clock and fires every timer that came due, like the loop.
    pub fn advance(&mut self, by: Duration) -> Vec<Action> {
        self.now += by;
        let mut out = Vec::new();
        for _ in 0..100 {
            match self.sup.next_deadline() {
                Some(at) if at <= self.now => out.extend(self.send(Event::Timer)),
                _ => return out,
            }
        }
        panic!("a deadline stays due after Timer");
    }

    pub fn spawned(&mut self, name: &str) -> Vec<Action> {
        let pid = self.next_pid;
        self.next_pid += 1;
        self.send(Event::Spawned { name: name.into(), pid })
    }

    pub fn exit(&mut self, name: &str, status: ExitStatus) -> Vec<Action> {
        let pid = self.get(name).pid.expect("service has a pid");
        self.send(Event::Exited {
            pid,
            status,
            service: Some(name.into()),
        })
    }

    pub fn ready(&mut self, name: &str) -> Vec<Action> {
        self.send(Event::Ready { name: name.into() })
    }

    pub fn get(&self, name: &str) -> ServiceStatus {
        let all = self.sup.status();
        all.into_iter().find(|s| s.name == name).expect("known service")
    }

    pub fn state(&self, name: &str) -> ServiceState {
        self.get(name).state
    }

    pub fn detail(&self, name: &str) -> String {
        self.get(name).detail.unwrap_or_default()
    }

    /// How long until the next deadline.
    pub fn due_in(&self) -> Option<Duration> {
        let at = self.sup.next_deadline()?;
        Some(at.saturating_duration_since(self.now))
    }

    /// Pops every action; answers `Spawn` with `Spawned` when `auto_spawn`.
    pub(super) fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        loop {
            let mut spawns = Vec::new();
            while let Some(action) = self.sup.poll_action() {
                if let (true, Action::Spawn { name }) = (self.auto_spawn, &action) {
                    spawns.push(name.clone());
                }
                out.push(action);
            }
            self.sup.check_bookkeeping();
            self.sup.check_timers();
            if spawns.is_empty() {
                return out;
            }
            for name in spawns {
                let pid = self.next_pid;
                self.next_pid += 1;
                let event = Event::Spawned { name, pid };
                assert_eq!(self.sup.handle(event, self.now), Ok(()));
            }
        }
    }
}
