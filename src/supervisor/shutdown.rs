//! Shutting down: everything stops in reverse dependency order (a service
//! stops once nothing depending on it is alive, see `deps`), each within its
//! own stop timeout, the whole within the global shutdown timeout. Then
//! [`Action::Exit`] with the code described at [`Supervisor::exit_code`].

use super::config::Definition;
use super::machine::{Mode, Supervisor};
use super::phase::{Failure, Input, Phase};
use super::service::Service;
use super::types::Action;
use std::time::Instant;

impl<U: Definition> Supervisor<U> {
    /// Enters shutdown; `settle` then stops the services that nothing depends on.
    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        let deadline = now.checked_add(self.shutdown_timeout);
        self.mode = Mode::ShuttingDown { deadline };
        self.told_status = "stopping".to_string();
        self.told_counts = None;
        self.actions.push_back(Action::NotifyManager {
            ready: false,
            status: self.told_status.clone(),
            stopping: true,
        });
    }

    /// A service with `on-failure = "shutdown"` failed for good: everything
    /// stops, and tend exits with its code.
    pub(super) fn fail_fast(&mut self, name: &str, now: Instant) {
        let code = self.failure_code(name);
        tracing::warn!(
            service = name,
            code,
            "failed for good with on-failure = \"shutdown\", shutting down"
        );
        self.failed_fast = Some(code);
        self.begin_shutdown(now);
    }

    /// The code a failed service stands for: its exit code (128+N for a
    /// signal); for a failed dependency, that of the dependency whose own
    /// failure it was; 1 when no process exit explains it (a failed spawn).
    fn failure_code(&self, name: &str) -> i32 {
        let mut name = name;
        // Bounded: a chain of dependencies is at most as long as there are services.
        for _ in 0..=self.services.len() {
            let Some(service) = self.services.get(name) else { break };
            let last = service.last_exit.map(|status| status.code()).filter(|code| *code != 0);
            match &service.phase {
                Phase::Failed(Failure::Dependency(dep)) => name = dep,
                Phase::Failed(Failure::Exited(status)) => return status.code(),
                Phase::Failed(Failure::StartLimit) => return last.unwrap_or(1),
                _ => break,
            }
        }
        1
    }

    /// A second shutdown request: kill everything still alive now, without
    /// waiting for dependents or stop timeouts; exit once all are reaped.
    pub(super) fn escalate(&mut self, now: Instant) {
        tracing::warn!("second shutdown request, killing every service");
        let live: Vec<String> = self.live().map(|s| s.name.clone()).collect();
        for name in live {
            self.route(&name, Input::Kill, now);
        }
    }

    /// The global timeout passed: kill what is left and exit without waiting.
    pub(super) fn shutdown_timed_out(&mut self) {
        tracing::warn!("shutdown timed out, killing every service");
        let kills: Vec<Action> = self.live().map(|s| Action::KillAll { name: s.name.clone() }).collect();
        self.actions.extend(kills);
        self.finish();
    }

    pub(super) fn finish(&mut self) {
        // No line of our own: the loop logs the exit after the last changes.
        let code = self.exit_code();
        self.actions.push_back(Action::Exit { code });
        self.mode = Mode::Done;
    }

    /// The code of a service that failed fast (`on-failure = "shutdown"`);
    /// else the main service's exit code (128+N for signal N) if there is a main
    /// service and it has exited; otherwise 0 when everything stopped cleanly
    /// and 1 when a service is failed, needed more than its stop signal (or
    /// exited non-zero while stopping), is still alive at the timeout, or
    /// brought tend down by being unhealthy.
    fn exit_code(&self) -> i32 {
        if let Some(code) = self.failed_fast {
            return code;
        }
        let main = self.services.values().find(|s| s.config().main);
        if let Some(status) = main.filter(|s| !s.phase.is_live()).and_then(|s| s.last_exit) {
            return status.code();
        }
        let unclean = self.services.values().any(|s| {
            s.phase.is_live() || s.unclean_stop || matches!(s.phase, Phase::Failed(_)) || s.health.brought_down
        });
        i32::from(unclean)
    }

    fn live(&self) -> impl Iterator<Item = &Service<U>> {
        self.services.values().filter(|s| s.phase.is_live())
    }
}
