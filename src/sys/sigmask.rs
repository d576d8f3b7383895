//! tend's own signal mask, and the signalfd its PID-1 loop reads.
//!
//! A launcher may start tend with signals blocked (the mask survives exec).
//! The PID-1 loops block the signals they act on and read them in batches
//! from a signalfd: no handler, no self-pipe. Blocked signals are queued
//! even where they would be ignored, including at PID 1 of a PID namespace,
//! which otherwise drops from outside every signal it has no handler for
//! (`sig_ignored` in kernel/signal.c: "Blocked signals are never ignored").
//! Children get an empty mask back in `spawn`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Removes `signals` from the calling thread's mask.
pub fn unblock(signals: &[i32]) -> io::Result<()> {
    change(libc::SIG_UNBLOCK, signals)
}

fn change(how: i32, signals: &[i32]) -> io::Result<()> {
    let set = set_of(signals);
    // SAFETY: reads the set we own; no old mask is asked for.
    let rc = unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
    match rc {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

fn set_of(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the
    // calls only write the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Signals received, each once however often it came, handed out lowest
/// first (the order the kernel hands standard signals out): a set of bits,
/// so a wake-up allocates nothing for them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    bits: u64,
    /// The child a SIGCHLD named (its sender), the first read; 0: none.
    child: i32,
}

impl Received {
    pub fn add(&mut self, signal: i32) {
        if (1..=64).contains(&signal) {
            self.bits |= 1 << (signal - 1);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// The child the first SIGCHLD read named: one whose state changed
    /// (others may have too: standard signals do not queue).
    pub fn child(&self) -> Option<i32> {
        (self.child > 0).then_some(self.child)
    }
}

impl Iterator for Received {
    type Item = i32;

    fn next(&mut self) -> Option<i32> {
        if self.bits == 0 {
            return None;
        }
        let bit = self.bits.trailing_zeros();
        self.bits &= self.bits - 1;
        Some(bit as i32 + 1)
    }
}

impl FromIterator<i32> for Received {
    fn from_iter<I: IntoIterator<Item = i32>>(signals: I) -> Received {
        let mut received = Received::default();
        signals.into_iter().for_each(|s| received.add(s));
        received
    }
}

/// A signalfd for a set of signals, which it blocks.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
    /// Reads wait for a signal: for a loop with no other source, which
    /// then sleeps in the read itself instead of in epoll and a read.
    blocking: bool,
}

impl SignalFd {
    /// Blocks `signals` (first, so none can act in between), gives them
    /// their default action (an inherited SIG_IGN for SIGCHLD would make
    /// the kernel reap children itself), and opens the signalfd that reads
    /// them.
    pub fn new(signals: &[i32]) -> io::Result<SignalFd> {
        Self::open(signals, false)
    }

    /// The same, its first read of [`SignalFd::read_all`] waiting for a
    /// signal.
    pub fn blocking(signals: &[i32]) -> io::Result<SignalFd> {
        Self::open(signals, true)
    }

    fn open(signals: &[i32], blocking: bool) -> io::Result<SignalFd> {
        change(libc::SIG_BLOCK, signals)?;
        for &sig in signals {
            // SAFETY: a zeroed sigaction is SIG_DFL with no flags and an
            // empty mask; the call reads it only.
            let rc = unsafe {
                let action: libc::sigaction = std::mem::zeroed();
                libc::sigaction(sig, &action, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let set = set_of(signals);
        let flags = if blocking { 0 } else { libc::SFD_NONBLOCK };
        // SAFETY: reads the set we own; the new fd is ours alone.
        let fd = unsafe { libc::signalfd(-1, &set, flags | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd just returned this fd, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd { fd, blocking })
    }

    /// Every pending signal, each once however often it came, read in
    /// batches until none is left. A blocking one waits for the first.
    pub fn read_all(&self) -> io::Result<Received> {
        // Standard signals pending at once are at most 31: one batch but
        // for queued realtime ones.
        const BATCH: usize = 32;
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let mut received = Received::default();
        let mut infos = [std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit(); BATCH];
        loop {
            if self.blocking && !received.is_empty() && !self.pending()? {
                return Ok(received);
            }
            // SAFETY: the kernel writes at most the buffer's size into it.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), infos.as_mut_ptr().cast(), size * BATCH) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(received),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            let count = n as usize / size;
            for info in &infos[..count] {
                // SAFETY: the read filled the first `count` entries.
                let info = unsafe { info.assume_init_ref() };
                received.add(info.ssi_signo as i32);
                if info.ssi_signo == libc::SIGCHLD as u32 && received.child == 0 {
                    received.child = info.ssi_pid as i32;
                }
            }
            if count < BATCH {
                return Ok(received);
            }
        }
    }

    /// Whether its first read waits for a signal ([`SignalFd::blocking`]).
    pub fn waits(&self) -> bool {
        self.blocking
    }

    /// Whether a read would find a signal now.
    fn pending(&self) -> io::Result<bool> {
        let mut fds = [libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one pollfd we own; a zero timeout never sleeps.
        match unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) } {
            n if n >= 0 => Ok(n > 0),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::Received;

    #[test]
    fn received_signals_come_once_each_lowest_first() {
        let received: Received = [17, 1, 17, 64, 0, 65, -3, 15].into_iter().collect();
        assert_eq!(received.collect::<Vec<_>>(), [1, 15, 17, 64]);
        assert!(Received::default().is_empty());
    }
}
