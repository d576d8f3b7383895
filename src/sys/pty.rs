//! Pseudo-terminals for `tend ctl exec -t`: a master/slave pair from the
//! environment's own `/dev/ptmx`, and window sizes.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};

/// A new pseudo-terminal; both ends close-on-exec.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pty (`posix_openpt`, `grantpt`, `unlockpt`, then the slave by
/// name), sized `rows` × `cols` when given.
pub fn open(size: Option<(u16, u16)>) -> io::Result<Pty> {
    // O_NOCTTY: PID 1 must never get a controlling terminal by accident.
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&name)?;
    let master = OwnedFd::from(master);
    if let Some((rows, cols)) = size {
        set_size(&master, rows, cols)?;
    }
    Ok(Pty {
        master,
        slave: slave.into(),
    })
}

/// `TIOCSWINSZ`: the terminal's size; its foreground group gets SIGWINCH.
pub fn set_size(tty: impl AsFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through a valid pointer.
    let rc = unsafe { libc::ioctl(tty.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TIOCGWINSZ`: (rows, cols) of a terminal, `None` when it is not one.
pub fn size(tty: impl AsFd) -> Option<(u16, u16)> {
    // SAFETY: an all-zero winsize is a valid value of this plain C struct.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` through a valid pointer.
    let rc = unsafe { libc::ioctl(tty.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_row > 0).then_some((size.ws_row, size.ws_col))
}
