//! A detached launcher's watch over its machine: PID 1's output into the
//! machine's log, and PID 1's readiness for the `tend boot --detach` that
//! waits for it. The caller is told "ok" on `READY=1`; when a service fails
//! first (no `READY=1` can follow), the machine is stopped and the caller
//! told why once PID 1 is gone; when PID 1 ends first, its exit code and
//! last line.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::launch::{Detached, Error};
use super::options::BootOptions;
use crate::ctl::client::Client;
use crate::registry;
use crate::runtime::notify::{self, Notice};
use crate::runtime::own_log::LogFile;
use crate::runtime::Reactor;
use crate::sys::process;

const OUTPUT: Token = Token(1);
const NOTIFY: Token = Token(2);

pub struct Watch {
    name: String,
    socket: PathBuf,
    log: LogFile,
    output: std::fs::File,
    notify: std::os::unix::net::UnixDatagram,
    /// The `tend boot --detach` waiting, until the machine is up or failed.
    pub up: Option<OwnedFd>,
    /// Why the boot failed, told once PID 1 is gone.
    failure: Option<String>,
}

impl Watch {
    /// In the launcher, once the machine runs: PID 1's ends of the pipe
    /// and of the log are PID 1's alone.
    pub fn new(d: Detached, o: &BootOptions, reactor: &Reactor) -> Result<Watch, Error> {
        let registry = reactor.registry();
        let register = |fd: i32, token| registry.register(&mut SourceFd(&fd), token, Interest::READABLE);
        register(d.output_r.as_raw_fd(), OUTPUT).map_err(Error::Watch)?;
        register(d.notify.as_raw_fd(), NOTIFY).map_err(Error::Watch)?;
        Ok(Watch {
            name: o.name.clone(),
            socket: registry::socket_path(&registry::dir(), &o.name),
            log: d.log,
            output: std::fs::File::from(d.output_r),
            notify: d.notify,
            up: None,
            failure: None,
        })
    }

    pub fn ready(&mut self, token: Token, pid1: i32) {
        match token {
            OUTPUT => self.drain_output(),
            NOTIFY => self.read_notices(pid1),
            _ => {}
        }
    }

    /// PID 1 ended with `code`: the caller learns how, if still waiting.
    pub fn ended(&mut self, code: i32) {
        self.drain_output();
        let Some(up) = self.up.take() else {
            return;
        };
        let message = match self.failure.take() {
            Some(why) => why,
            None if code == 0 => "ok".into(),
            None => {
                let mut why = format!("machine {} stopped before it was ready (exit code {code})", self.name);
                if let Some(last) = self.log.last_line() {
                    why.push_str(": ");
                    why.push_str(last.strip_prefix("tend: ").unwrap_or(&last));
                }
                why
            }
        };
        super::launch::tell(up, &message);
    }

    fn drain_output(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.output.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if let Err(e) = self.log.append(&buf[..n]) {
                        tracing::warn!("cannot write the machine's log: {}", crate::sys::describe(&e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn read_notices(&mut self, pid1: i32) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.notify.recv(&mut buf) {
            for notice in notify::parse(&buf[..n]) {
                self.notice(notice, pid1);
            }
        }
    }

    fn notice(&mut self, notice: Notice, pid1: i32) {
        if self.failure.is_some() {
            return;
        }
        match notice {
            Notice::Ready => {
                if let Some(up) = self.up.take() {
                    super::launch::tell(up, "ok");
                }
            }
            // The summary changed while booting: a failed service means
            // READY=1 will never come.
            Notice::Status(summary) if self.up.is_some() => {
                // The services and why, asked; the summary ("3 of 4 services
                // up, 1 failed") when PID 1 cannot answer.
                let failed = failed_services(&self.socket).or_else(|| summary.contains(" failed").then_some(summary));
                if let Some(failed) = failed {
                    self.failure = Some(format!("machine {} failed to boot: {failed}", self.name));
                    let _ = process::kill(pid1, libc::SIGTERM);
                }
            }
            Notice::Status(_) | Notice::Stopping => {}
            // tend's own PID 1 sends none of these.
            Notice::Watchdog | Notice::WatchdogTrigger | Notice::ExtendTimeout(_) | Notice::WatchdogUsec(_) => {}
        }
    }
}

/// The failed services of the machine and why, asked over its socket.
fn failed_services(socket: &std::path::Path) -> Option<String> {
    let mut client = Client::connect(socket).ok()?;
    // PID 1 answers between two turns of its loop; never hang on it.
    client.stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let services = client.status(&[]).ok()?;
    let failed: Vec<String> = services
        .iter()
        .filter(|s| s.state == crate::supervisor::ServiceState::Failed)
        .map(|s| match &s.detail {
            Some(why) => format!("{}: {why}", s.name),
            None => s.name.clone(),
        })
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}
