//! The thin shell around the pure state machines: one single-threaded event
//! loop (mio) that sleeps in the kernel until a signal arrives or the next
//! deadline passes, and executes the machines' actions. Signals are data:
//! blocked, and read in batches from a signalfd.
// PID 1 never dies of an overflow: deadline and counter arithmetic here is
// checked or saturating (tests may use plain operators).
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod capture;
pub mod control;
pub mod entrypoint;
pub mod init;
pub mod logfile;
pub mod notify;
pub mod output;
pub mod own_log;
pub mod probe;
pub mod ready;
pub mod services;

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;

use crate::sys::sigmask::{Received, SignalFd};

const SIGNALS: Token = Token(0);

/// What woke the loop.
#[derive(Debug, Default)]
pub struct Wake {
    /// Signals received, each once however often it came.
    pub signals: Received,
    /// Other sources that became ready (readable, or writable for connects).
    pub ready: Vec<Token>,
}

/// Where signals come from: PID 1's loops read them as data from a
/// signalfd; the boot launcher, whose children must not inherit a blocked
/// mask, keeps signal-hook's handler and self-pipe.
enum SignalSource {
    Fd(SignalFd),
    Handlers(Signals),
}

/// The poller and the signal source; all work happens in the loop.
pub struct Reactor {
    poll: Poll,
    events: Events,
    signals: SignalSource,
}

impl Reactor {
    /// Blocks `signals` and reads them from a signalfd (PID 1's loops).
    /// Call before starting children, so no SIGCHLD or forwarded signal can
    /// be missed; children start with an empty mask (`sys::spawn`).
    pub fn new(signals: &[i32]) -> io::Result<Self> {
        let reactor = Self::with_fd(SignalFd::new(signals)?)?;
        // PID 1's dispositions are final now (its signals are blocked and
        // at their default): children reset only those that are not. Not
        // for `tend --`, whose one child would save what the asking costs.
        crate::sys::dispositions::settle();
        Ok(reactor)
    }

    /// The same for a loop whose only sources are signals and deadlines
    /// (`tend --`; nothing may be registered with it): without a deadline,
    /// it sleeps in the signalfd's read, one system call a wake-up as
    /// tini's `sigtimedwait` (an orphan storm wakes it for each).
    pub fn signals_only(signals: &[i32]) -> io::Result<Self> {
        Self::with_fd(SignalFd::blocking(signals)?)
    }

    fn with_fd(fd: SignalFd) -> io::Result<Self> {
        let poll = Poll::new()?;
        let raw = fd.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&raw), SIGNALS, Interest::READABLE)?;
        Ok(Self::with(poll, SignalSource::Fd(fd)))
    }

    /// Installs handlers for `signals` and unblocks them (a launcher may
    /// have started tend with them blocked): for the boot launcher.
    pub fn with_handlers(signals: &[i32]) -> io::Result<Self> {
        let poll = Poll::new()?;
        crate::sys::dispositions::unsettle();
        let mut handled = Signals::new(signals.iter().copied())?;
        crate::sys::sigmask::unblock(signals)?;
        poll.registry().register(&mut handled, SIGNALS, Interest::READABLE)?;
        Ok(Self::with(poll, SignalSource::Handlers(handled)))
    }

    fn with(poll: Poll, signals: SignalSource) -> Self {
        Reactor {
            poll,
            events: Events::with_capacity(64),
            signals,
        }
    }

    /// Where other sources (pipes, sockets) are registered; token 0 is taken.
    pub fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// Sleeps until a signal arrives, a source is ready or `deadline`
    /// passes; `None` sleeps without a timeout, so an idle tend costs no
    /// wake-up.
    pub fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        if let (None, SignalSource::Fd(fd)) = (deadline, &self.signals) {
            if fd.waits() {
                return Ok(Wake {
                    signals: fd.read_all()?,
                    ready: Vec::new(),
                });
            }
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let mut signalled = false;
        let mut ready = Vec::new();
        for token in self.events.iter().map(|e| e.token()) {
            match token {
                SIGNALS => signalled = true,
                other => ready.push(other),
            }
        }
        let signals = match &mut self.signals {
            SignalSource::Fd(fd) if signalled => fd.read_all()?,
            SignalSource::Fd(_) => Received::default(),
            SignalSource::Handlers(handled) => handled.pending().collect(),
        };
        Ok(Wake { signals, ready })
    }
}
