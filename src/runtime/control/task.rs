//! What a connection is busy with between its request and its last reply,
//! and the rules that decide when a waiting request is answered. The
//! rules are pure: they look at a service's status as of its latest
//! change, nothing else.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::ctl::protocol::{code, ServiceInfo, WaitFor};
use crate::runtime::capture::Ring;
use crate::supervisor::{Event, ServiceState, ServiceStatus, SupervisorError};

/// What the control server needs from the loop that runs it.
pub trait Host {
    /// Every service, by name.
    fn status(&self) -> Vec<ServiceStatus>;
    /// One service, if known.
    fn service(&self, name: &str) -> Option<ServiceStatus>;
    /// The `seq` the supervisor's next change will carry: a task started
    /// now reads only the changes from there on.
    fn next_change(&self) -> u64;
    /// An operator request for the supervisor: start, stop, restart, shutdown.
    fn request(&mut self, event: Event) -> Result<(), SupervisorError>;
    /// Sends a signal to everything a service started.
    fn signal(&mut self, name: &str, signal: i32);
    /// Reads the units again (as SIGHUP does); why not, when their
    /// directory cannot be read (the units then stay as they were).
    fn reload(&mut self) -> Result<(), String>;
    /// The captured lines of a service, if it has any.
    fn ring(&self, name: &str) -> Option<&Ring>;
    /// The last `lines` lines of tend's own log, where it keeps one.
    fn own_log(&self, _lines: usize) -> Option<std::io::Result<Vec<String>>> {
        None
    }
    /// What a running service uses, read from its cgroup now.
    fn usage(&self, _name: &str) -> Option<crate::sys::cgroup::Usage> {
        None
    }
    /// The same for every running service, by name in `str` order (a
    /// status of all takes them in one pass, not a lookup each).
    fn usages(&self) -> Usages<'_> {
        Box::new(std::iter::empty())
    }
}

/// Every running service's usage, by name in `str` order, each read from
/// its cgroup as it is taken (a batched status sends the first batch
/// before the last is read).
pub type Usages<'a> = Box<dyn Iterator<Item = (std::sync::Arc<str>, crate::sys::cgroup::Usage)> + 'a>;

/// A request that is not answered yet, or a stream.
#[derive(Debug)]
pub enum Task {
    Idle,
    /// `start` or `restart`: until up or failed; changes from `since` on.
    Start {
        name: String,
        since: u64,
    },
    /// `stop`: until down.
    Stop {
        name: String,
        since: u64,
    },
    /// `wait`: until every service of `states` is in `state`.
    Wait {
        states: BTreeMap<String, ServiceState>,
        state: WaitFor,
        deadline: Option<Instant>,
        since: u64,
    },
    /// `logs --follow`: lines after the `seen`th.
    Follow {
        name: String,
        seen: u64,
    },
    /// `events`: every change from `since` on.
    Events {
        since: u64,
    },
    /// `exec`: until the command is reaped.
    Exec {
        pid: i32,
    },
    /// `shutdown`: until tend exits.
    Shutdown,
}

/// An answer: `Ok(message)` or `Err((code, message))`.
pub type Outcome = Result<Option<String>, (i32, String)>;

/// Has a started service come up? `None`: not yet.
pub fn start_result(s: &ServiceStatus) -> Option<Outcome> {
    let why = || s.detail.clone().or(s.last_exit.map(|e| e.to_string()));
    match s.state {
        ServiceState::Ready => Some(Ok(None)),
        ServiceState::Exited if s.last_exit.map_or(true, |e| e.success()) => Some(Ok(None)),
        ServiceState::Exited | ServiceState::Failed => Some(Err((
            code::FAILED,
            format!(
                "{} failed: {}",
                s.name,
                why().unwrap_or_else(|| "unknown reason".into())
            ),
        ))),
        ServiceState::Invalid => Some(Err((code::FAILED, format!("{} is invalid", s.name)))),
        ServiceState::Disabled => Some(Err((code::FAILED, format!("{} is disabled", s.name)))),
        ServiceState::Starting | ServiceState::Running | ServiceState::Stopping => None,
    }
}

/// Has a stopped service gone down? `None`: not yet.
pub fn stop_result(s: &ServiceStatus) -> Option<Outcome> {
    match s.state {
        ServiceState::Exited | ServiceState::Failed | ServiceState::Disabled | ServiceState::Invalid => Some(Ok(None)),
        _ => None,
    }
}

/// The states of the services named, as `wait` starts.
pub fn wait_states(status: &[ServiceStatus], names: &[String]) -> Result<BTreeMap<String, ServiceState>, String> {
    let mut states = BTreeMap::new();
    for name in names {
        match status.iter().find(|s| &s.name == name) {
            None => return Err(name.clone()),
            Some(s) => states.insert(name.clone(), s.state),
        };
    }
    Ok(states)
}

/// Are all services of `states` in `state`? `None`: not yet.
pub fn wait_result(states: &BTreeMap<String, ServiceState>, state: WaitFor) -> Option<Outcome> {
    states.values().all(|s| state.met_by(*s)).then_some(Ok(None))
}

/// Is this service as it should be? Running and ready are; a disabled
/// one is; an exited one is unless it was stopped while enabled (the
/// environment lacks it) or exited non-zero while stopping; starting,
/// stopping, failed and invalid are not; nor is one whose liveness check
/// says unhealthy.
pub fn healthy(s: &ServiceStatus) -> bool {
    if s.health == Some(crate::supervisor::Health::Unhealthy) {
        return false;
    }
    match s.state {
        ServiceState::Running | ServiceState::Ready | ServiceState::Disabled => true,
        ServiceState::Exited if s.stopped && s.enabled => false,
        ServiceState::Exited => !s.last_exit.is_some_and(|e| !e.success() && e.code() < 128),
        ServiceState::Starting | ServiceState::Stopping | ServiceState::Failed | ServiceState::Invalid => false,
    }
}

/// Unhealthy services, one line each; healthy when empty.
pub fn health(status: &[ServiceStatus]) -> Vec<String> {
    status
        .iter()
        .filter(|s| !healthy(s))
        .map(|s| match (&s.detail, s.health) {
            (_, Some(health @ crate::supervisor::Health::Unhealthy)) => format!("{}: {} ({health})", s.name, s.state),
            (Some(detail), _) => format!("{}: {} ({detail})", s.name, s.state),
            (None, _) => format!("{}: {}", s.name, s.state),
        })
        .collect()
}

pub fn no_such_unit(name: &str) -> (i32, String) {
    (code::NO_SUCH_UNIT, format!("no service named {name}"))
}

/// The wire form of one service's status.
pub fn info(s: &ServiceStatus, now: Instant) -> ServiceInfo {
    into_info(s.clone(), now)
}

/// [`info`], taking the status's strings (`status` of thousands).
pub fn into_info(s: ServiceStatus, now: Instant) -> ServiceInfo {
    ServiceInfo {
        name: s.name,
        state: s.state,
        pid: s.pid,
        since_ms: now.saturating_duration_since(s.since).as_millis() as u64,
        restarts: s.restarts,
        last_exit: s.last_exit.map(|e| e.to_string()),
        status_text: s.status_text,
        detail: s.detail,
        next_run_ms: s
            .next_run
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64),
        health: s.health,
        oom_kills: s.oom_kills,
        memory_bytes: None,
        cpu_usec: None,
        tasks: None,
    }
}

/// A refused operator request, as a reply.
pub fn refused(e: &SupervisorError) -> (i32, String) {
    let code = match e {
        SupervisorError::UnknownService { .. } => code::NO_SUCH_UNIT,
        SupervisorError::InvalidService { .. } | SupervisorError::ShuttingDown => code::FAILED,
    };
    (code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::ExitStatus;

    fn service(name: &str, state: ServiceState, last_exit: Option<ExitStatus>) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state,
            pid: None,
            since: Instant::now(),
            restarts: 0,
            last_exit,
            oom_kills: 0,
            status_text: None,
            detail: None,
            enabled: true,
            stopped: false,
            next_run: None,
            health: None,
        }
    }

    #[test]
    fn start_waits_for_ready_or_failure() {
        let s = |state, exit| start_result(&service("a", state, exit));
        assert_eq!(s(ServiceState::Ready, None), Some(Ok(None)));
        assert_eq!(s(ServiceState::Starting, None), None);
        assert_eq!(s(ServiceState::Running, None), None, "a notify service not ready yet");
        assert_eq!(s(ServiceState::Stopping, None), None, "a restart on its way");
        assert_eq!(
            s(ServiceState::Exited, Some(ExitStatus::Code(0))),
            Some(Ok(None)),
            "a oneshot"
        );
        let failed = s(ServiceState::Failed, Some(ExitStatus::Code(3)));
        assert_eq!(failed, Some(Err((1, "a failed: exited with code 3".into()))));
    }

    #[test]
    fn stop_waits_for_down() {
        assert_eq!(stop_result(&service("a", ServiceState::Stopping, None)), None);
        assert_eq!(stop_result(&service("a", ServiceState::Exited, None)), Some(Ok(None)));
    }

    #[test]
    fn wait_for_all_names() {
        let status = [
            service("a", ServiceState::Ready, None),
            service("b", ServiceState::Running, None),
        ];
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let states = wait_states(&status, &names(&["a", "b"])).unwrap();
        let wait = |word: &str| word.parse::<WaitFor>().unwrap();
        assert_eq!(wait_result(&states, wait("running")), Some(Ok(None)));
        assert_eq!(wait_result(&states, wait("ready")), None);
        assert_eq!(wait_states(&status, &names(&["a", "x"])), Err("x".to_string()));
    }

    #[test]
    fn health_names_what_is_wrong() {
        let status = [
            service("a", ServiceState::Ready, None),
            service("b", ServiceState::Failed, None),
            service("c", ServiceState::Exited, Some(ExitStatus::Code(0))),
            service("d", ServiceState::Exited, Some(ExitStatus::Signal(15))),
        ];
        assert_eq!(health(&status), ["b: failed"]);
    }

    #[test]
    fn a_running_service_whose_check_fails_is_unhealthy() {
        let mut web = service("web", ServiceState::Ready, None);
        web.health = Some(crate::supervisor::Health::Unhealthy);
        assert_eq!(health(&[web.clone()]), ["web: ready (unhealthy)"]);
        web.health = Some(crate::supervisor::Health::Starting);
        assert!(health(&[web]).is_empty());
    }

    #[test]
    fn an_enabled_service_stopped_by_hand_is_unhealthy() {
        let mut stopped = service("web", ServiceState::Exited, Some(ExitStatus::Signal(15)));
        stopped.stopped = true;
        stopped.detail = Some("stopped".into());
        assert_eq!(health(&[stopped.clone()]), ["web: exited (stopped)"]);
        stopped.enabled = false;
        assert!(health(&[stopped]).is_empty(), "back where its unit puts it");
    }
}
