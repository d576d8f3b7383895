//! The thin shell around the pure state machines: one single-threaded event
//! loop (mio) that sleeps in the kernel until a signal arrives or the next
//! deadline passes, and executes the machines' actions.
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
pub mod probe;
pub mod ready;
pub mod services;

use std::io;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;

const SIGNALS: Token = Token(0);

/// What woke the loop.
#[derive(Debug, Default)]
pub struct Wake {
    /// Signals received, each once however often it came.
    pub signals: Vec<i32>,
    /// Other sources that became ready (readable, or writable for connects).
    pub ready: Vec<Token>,
}

/// The poller and the signal self-pipe (signal-hook: the handler only
/// records the signal and wakes the loop; all work happens in the loop).
pub struct Reactor {
    poll: Poll,
    events: Events,
    signals: Signals,
}

impl Reactor {
    /// Installs handlers for `signals`. Call before starting children, so no
    /// SIGCHLD or forwarded signal can be missed.
    pub fn new(signals: &[i32]) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut signals = Signals::new(signals.iter().copied())?;
        poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(64),
            signals,
        })
    }

    /// Where other sources (pipes, sockets) are registered; token 0 is taken.
    pub fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// Sleeps until a signal arrives, a source is ready or `deadline`
    /// passes; `None` sleeps without a timeout, so an idle tend costs no
    /// wake-up.
    pub fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let ready = self
            .events
            .iter()
            .map(|e| e.token())
            .filter(|t| *t != SIGNALS)
            .collect();
        Ok(Wake {
            signals: self.signals.pending().collect(),
            ready,
        })
    }
}
