//! What a connection is busy with between its request and its last reply,
//! and the rules that decide when a waiting request is answered. The
//! rules are pure: they look at the supervisor's status, nothing else.

use std::collections::BTreeMap;
use std::time::Instant;

use super::protocol::{code, ServiceInfo, WaitFor};
use crate::runtime::capture::Ring;
use crate::supervisor::{Event, ServiceState, ServiceStatus, SupervisorError};

/// What the control server needs from the loop that runs it.
pub trait Host {
    /// Every service, by name.
    fn status(&self) -> Vec<ServiceStatus>;
    /// An operator request for the supervisor: start, stop, restart, shutdown.
    fn request(&mut self, event: Event) -> Result<(), SupervisorError>;
    /// Sends a signal to everything a service started.
    fn signal(&mut self, name: &str, signal: i32);
    /// Reads the units again (as SIGHUP does).
    fn reload(&mut self);
    /// The captured lines of a service, if it has any.
    fn ring(&self, name: &str) -> Option<&Ring>;
    /// The last `lines` lines of tend's own log, where it keeps one.
    fn own_log(&self, _lines: usize) -> Option<std::io::Result<Vec<String>>> {
        None
    }
}

/// A request that is not answered yet, or a stream.
#[derive(Debug)]
pub enum Task {
    Idle,
    /// `start` or `restart`: until up or failed.
    Start {
        name: String,
    },
    /// `stop`: until down.
    Stop {
        name: String,
    },
    Wait {
        names: Vec<String>,
        state: WaitFor,
        deadline: Option<Instant>,
    },
    /// `logs --follow`: lines after the `seen`th.
    Follow {
        name: String,
        seen: u64,
    },
    /// `events`: each service's state as last sent.
    Events {
        last: BTreeMap<String, String>,
    },
    /// `exec`: until the command is reaped.
    Exec {
        pid: i32,
    },
    /// `shutdown`: until tend exits.
    Shutdown,
}

impl Task {
    /// Needs the services' status to make progress.
    pub fn watches_status(&self) -> bool {
        matches!(
            self,
            Task::Start { .. } | Task::Stop { .. } | Task::Wait { .. } | Task::Events { .. }
        )
    }
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

/// Are all `names` in `state`? `None`: not yet.
pub fn wait_result(status: &[ServiceStatus], names: &[String], state: WaitFor) -> Option<Outcome> {
    let mut all = true;
    for name in names {
        match status.iter().find(|s| &s.name == name) {
            None => return Some(Err(no_such_unit(name))),
            Some(s) => all &= state.met_by(s.state.as_str()),
        }
    }
    all.then_some(Ok(None))
}

/// Unhealthy services, one line each; healthy when empty. Running, ready,
/// exited cleanly and disabled are fine.
pub fn health(status: &[ServiceStatus]) -> Vec<String> {
    status
        .iter()
        .filter(|s| match s.state {
            ServiceState::Running | ServiceState::Ready | ServiceState::Disabled => false,
            ServiceState::Exited => s.last_exit.is_some_and(|e| !e.success() && e.code() < 128),
            _ => true,
        })
        .map(|s| match &s.detail {
            Some(detail) => format!("{}: {} ({detail})", s.name, s.state),
            None => format!("{}: {}", s.name, s.state),
        })
        .collect()
}

pub fn no_such_unit(name: &str) -> (i32, String) {
    (code::NO_SUCH_UNIT, format!("no service named {name}"))
}

/// The wire form of one service's status.
pub fn info(s: &ServiceStatus, now: Instant) -> ServiceInfo {
    ServiceInfo {
        name: s.name.clone(),
        state: s.state.to_string(),
        pid: s.pid,
        since_ms: now.saturating_duration_since(s.since).as_millis() as u64,
        restarts: s.restarts,
        last_exit: s.last_exit.map(|e| e.to_string()),
        status_text: s.status_text.clone(),
        detail: s.detail.clone(),
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
            status_text: None,
            detail: None,
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
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            wait_result(&status, &names(&["a", "b"]), WaitFor::Running),
            Some(Ok(None))
        );
        assert_eq!(wait_result(&status, &names(&["a", "b"]), WaitFor::Ready), None);
        assert_eq!(
            wait_result(&status, &names(&["a", "x"]), WaitFor::Ready),
            Some(Err((4, "no service named x".into())))
        );
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
}
