//! Pseudo-terminals for `tend ctl exec -t`: a master/slave pair from the
//! environment's own `/dev/ptmx`, window sizes, and a terminal's name.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::{DirEntryExt as _, MetadataExt as _, OpenOptionsExt};
use std::path::{Path, PathBuf};

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

/// The terminal `fd` is (`/dev/pts/3`), `None` when it is none or has no
/// name here: glibc's ttyname_r, step by step (which would link every CPU
/// variant of stpncpy, 14 KiB). Its `/proc/self/fd` link if that names the
/// same terminal, else the first such device in `/dev/pts/`, then `/dev/`
/// (by inode), then `/dev/` again (by stat).
pub fn ttyname(fd: impl AsFd) -> Option<PathBuf> {
    let fd = fd.as_fd();
    // Not a terminal: ENOTTY (glibc asks tcgetattr, as isatty does).
    nix::sys::termios::tcgetattr(fd).ok()?;
    let mine = nix::sys::stat::fstat(fd).ok()?;
    let is_mine = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| {
            m.ino() == mine.st_ino
                && m.dev() == mine.st_dev
                && m.mode() & libc::S_IFMT == libc::S_IFCHR
                && m.rdev() == mine.st_rdev
        })
    };
    if let Ok(link) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        let mut bytes = link.into_os_string().into_vec();
        // A terminal of another mount namespace (see readlink(2)).
        const UNREACHABLE: &[u8] = b"(unreachable)";
        if bytes.len() > UNREACHABLE.len() && bytes.starts_with(UNREACHABLE) {
            bytes.drain(..UNREACHABLE.len());
        }
        let path = PathBuf::from(OsString::from_vec(bytes));
        if path.starts_with("/") && is_mine(&path) {
            return Some(path);
        }
    }
    let pts = Path::new("/dev/pts/");
    let mut found = Scan::NotFound;
    if std::fs::metadata(pts).is_ok_and(|m| m.is_dir()) {
        found = scan(pts, mine.st_ino, false, &is_mine);
    }
    if let Scan::NotFound = found {
        found = scan(Path::new("/dev/"), mine.st_ino, false, &is_mine);
    }
    if let Scan::NotFound = found {
        found = scan(Path::new("/dev/"), mine.st_ino, true, &is_mine);
    }
    match found {
        Scan::Found(path) => Some(path),
        Scan::NotFound | Scan::Unreadable => None,
    }
}

enum Scan {
    Found(PathBuf),
    NotFound,
    /// The directory cannot be read: glibc stops looking.
    Unreadable,
}

/// The first entry of `dir` that is the terminal, trying only those whose
/// inode is `ino` unless `every`.
fn scan(dir: &Path, ino: u64, every: bool, is_mine: &dyn Fn(&Path) -> bool) -> Scan {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Scan::Unreadable;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if (entry.ino() == ino || every) && !["stdin", "stdout", "stderr"].iter().any(|s| name == *s) {
            let path = dir.join(&name);
            if is_mine(&path) {
                return Scan::Found(path);
            }
        }
    }
    Scan::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names glibc's ttyname_r gives: a pty's two ends, and no name for
    /// what is no terminal.
    #[test]
    fn ttyname_as_glibc_names() {
        let pty = open(None).unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let (pipe, _w) = nix::unistd::pipe().unwrap();
        for fd in [pty.slave.as_fd(), pty.master.as_fd(), null.as_fd(), pipe.as_fd()] {
            assert_eq!(ttyname(fd), nix::unistd::ttyname(fd).ok());
        }
        assert!(ttyname(&pty.slave).is_some_and(|p| p.starts_with("/dev/pts/")));
    }
}
