//! Shutting down: everything stops in reverse dependency order (a service
//! stops once nothing depending on it is alive, see `deps`), each within its
//! own stop timeout, the whole within the global shutdown timeout. Then
//! [`Action::Exit`] with the code described at [`Supervisor::exit_code`].

use super::config::Definition;
use super::machine::{Mode, Supervisor};
use super::phase::{Input, Phase};
use super::service::Service;
use super::types::Action;
use std::time::Instant;

impl<U: Definition> Supervisor<U> {
    /// Enters shutdown; `settle` then stops the services that nothing depends on.
    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        let deadline = now.checked_add(self.shutdown_timeout);
        self.mode = Mode::ShuttingDown { deadline };
        self.told_status = "stopping".to_string();
        self.actions.push_back(Action::NotifyManager {
            ready: false,
            status: self.told_status.clone(),
            stopping: true,
        });
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

    /// The main service's exit code (128+N for signal N) if there is a main
    /// service and it has exited; otherwise 0 when everything stopped cleanly
    /// and 1 when a service is failed, needed more than its stop signal (or
    /// exited non-zero while stopping), is still alive at the timeout, or
    /// brought tend down by being unhealthy.
    fn exit_code(&self) -> i32 {
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
