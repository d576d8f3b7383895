//! tend's own signal mask. A launcher may start tend with signals blocked
//! (the mask survives exec); a blocked signal that tend forwards or acts on
//! would never reach it, so tend unblocks those at start.

use std::io;

/// Removes `signals` from the calling thread's mask.
pub fn unblock(signals: &[i32]) -> io::Result<()> {
    change(libc::SIG_UNBLOCK, signals)
}

fn change(how: i32, signals: &[i32]) -> io::Result<()> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the
    // calls only read and write the set we own.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    match rc {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}
