//! The thin shell around the pure state machines: one single-threaded event
//! loop (mio) that sleeps in the kernel until a signal arrives or the next
//! deadline passes, and executes the machines' actions.

pub mod capture;
pub mod entrypoint;
pub mod notify;

use std::io;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;

const SIGNALS: Token = Token(0);

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
            events: Events::with_capacity(16),
            signals,
        })
    }

    /// Sleeps until a signal arrives or `deadline` passes; `None` sleeps
    /// without a timeout, so an idle tend costs no wake-up. Returns the
    /// signals received, each once however often it came.
    pub fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Vec<i32>> {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(self.signals.pending().collect())
    }
}
