//! Fault injection for tests: `TEND_TEST_FAULT=N:ERRNO` makes the Nth
//! step of a boot's setup (counted from 1: every call through [`Sys`] that
//! can fail, then the steps after the mounts) fail with `ERRNO` (a number,
//! or a name such as `EIO`) instead of being made. A test walks N over
//! every step and checks that each failure leaves the host as it was.
//!
//! A variable and not an option: it is for tend's own tests, out of the
//! way of `tend boot --help`; unset, it costs one `getenv` per boot. When N
//! is past the last step, the boot runs normally and says on stderr how
//! many steps it had, so the walker counts them without knowing them.
//!
//! A new step of the setup is covered when it goes through [`Sys`] (a new
//! method must be added to [`Faulty`] too: the compiler says so) or calls
//! [`Fault::step`] first, as bringing up loopback does.
//!
//! How the steps are numbered: the launcher's come first, the child's
//! after. The launcher counts writing the machine's lease and making the
//! machine's cgroups (before the clone: made, bounded, devices restricted;
//! after it: joined, `container::cgroups`) and each change its network
//! makes (the registry's shared file,
//! the sysctls, every link request, the table: see
//! `container::net::apply::Faulty`), 1 to L. Once its network is made it
//! tells the child L over their "go" channel ([`tell`]); the child waits
//! for that number before its first counted step ([`told`]) and counts its
//! own from L + 1. Only when the variable is set: then the child mounts
//! after the network is made instead of meanwhile, so every N names the
//! same step in every run. A failed launcher step kills the child before
//! it counted anything. Undoing is never counted: it runs after the
//! failure, and its own failures are not reported.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::mount::{Kind, Sys};

/// The variable read at the start of a boot's setup.
pub const VARIABLE: &str = "TEND_TEST_FAULT";

/// Counts the steps and fails the chosen one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The step to fail (1-based) and its errno; `None`: never fail.
    target: Option<(u64, Errno)>,
    /// Steps counted so far.
    pub steps: u64,
}

impl Fault {
    /// From [`VARIABLE`]; unset or malformed: no fault (a warning for the
    /// latter, as the test asked for something it will not get).
    pub fn from_env() -> Fault {
        let Some(value) = std::env::var_os(VARIABLE) else {
            return Fault::default();
        };
        let value = value.to_string_lossy();
        match parse(&value) {
            Some(target) => Fault {
                target: Some(target),
                steps: 0,
            },
            None => {
                tracing::warn!("{VARIABLE}={value}: expected STEP:ERRNO; ignored");
                Fault::default()
            }
        }
    }

    /// Whether a fault was asked for (then the launcher and the child
    /// exchange the launcher's count, see [`tell`]).
    pub fn armed(&self) -> bool {
        self.target.is_some()
    }

    /// One more step: `Err` when it is the one to fail.
    pub fn step(&mut self) -> Result<(), Errno> {
        self.steps = self.steps.saturating_add(1);
        match self.target {
            Some((n, errno)) if n == self.steps => Err(errno),
            _ => Ok(()),
        }
    }

    /// When a fault was asked for and the steps ran out before it: the line
    /// that tells the walker how many steps there are.
    pub fn unreached(&self) -> Option<String> {
        let (n, _) = self.target?;
        (n > self.steps).then(|| format!("{VARIABLE}: step {n} not reached: the setup has {} steps", self.steps))
    }
}

/// The launcher: its step count to the child, on their "go" channel.
pub fn tell(go: impl AsFd, steps: u64) -> std::io::Result<()> {
    let bytes = steps.to_ne_bytes();
    let mut sent = 0;
    while sent < bytes.len() {
        sent += super::fdpass::send(&go, &bytes[sent..], &[])?;
    }
    Ok(())
}

/// The child: the launcher's step count, read exactly (the channel is a
/// stream: the next "go" stays unread).
pub fn told(go: impl AsFd) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    let mut got = 0;
    while got < bytes.len() {
        let mut fds = Vec::new();
        match super::fdpass::recv(&go, &mut bytes[got..], &mut fds, false)? {
            0 => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            n => got += n,
        }
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// `N:ERRNO`, N ≥ 1, ERRNO a number or a name (`EIO`).
pub fn parse(text: &str) -> Option<(u64, Errno)> {
    let (n, errno) = text.split_once(':')?;
    let n: u64 = n.trim().parse().ok().filter(|&n| n > 0)?;
    let errno = errno.trim();
    let errno = match errno.parse::<i32>() {
        Ok(raw) if raw > 0 => Errno::from_raw(raw),
        Ok(_) => return None,
        Err(_) => by_name(errno)?,
    };
    Some((n, errno))
}

/// The errnos a test is likely to ask for by name.
fn by_name(name: &str) -> Option<Errno> {
    Some(match name {
        "EPERM" => Errno::EPERM,
        "ENOENT" => Errno::ENOENT,
        "EIO" => Errno::EIO,
        "EAGAIN" => Errno::EAGAIN,
        "ENOMEM" => Errno::ENOMEM,
        "EACCES" => Errno::EACCES,
        "EBUSY" => Errno::EBUSY,
        "EEXIST" => Errno::EEXIST,
        "EINVAL" => Errno::EINVAL,
        "EMFILE" => Errno::EMFILE,
        "ENOSPC" => Errno::ENOSPC,
        "EROFS" => Errno::EROFS,
        "ENOSYS" => Errno::ENOSYS,
        _ => return None,
    })
}

/// A [`Sys`] that counts each fallible call as a step of `fault` and fails
/// the chosen one before it reaches `inner`.
pub struct Faulty<'a> {
    pub inner: &'a mut dyn Sys,
    pub fault: &'a mut Fault,
}

impl Sys for Faulty<'_> {
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.mount(source, target, fstype, flags, data)
    }

    fn umount_detach(&mut self, target: &Path) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.umount_detach(target)
    }

    fn set_read_only(&mut self, target: &Path, recursive: bool) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.set_read_only(target, recursive)
    }

    /// Not a step: stat cannot fail in a way the boot reports.
    fn kind(&mut self, path: &Path) -> Option<Kind> {
        self.inner.kind(path)
    }

    fn mkdir_all(&mut self, path: &Path) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.mkdir_all(path)
    }

    fn create_file(&mut self, path: &Path) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.create_file(path)
    }

    fn mknod(&mut self, path: &Path, major: u64, minor: u64, mode: u32) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.mknod(path, major, minor, mode)
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.symlink(target, link)
    }

    fn chdir(&mut self, path: &Path) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.chdir(path)
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.pivot_root(new_root, put_old)
    }

    fn sethostname(&mut self, name: &str) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.sethostname(name)
    }

    fn attach_tree(&mut self, fd: i32, target: &Path) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.attach_tree(fd, target)
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.chown(path, uid, gid)
    }

    fn set_fs_ids(&mut self, uid: u32, gid: u32) -> Result<(), Errno> {
        self.fault.step()?;
        self.inner.set_fs_ids(uid, gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::record::Recorder;

    #[test]
    fn parses_step_and_errno() {
        assert_eq!(parse("3:5"), Some((3, Errno::EIO)));
        assert_eq!(parse("12:ENOSPC"), Some((12, Errno::ENOSPC)));
        assert_eq!(parse("0:EIO"), None, "steps count from 1");
        assert_eq!(parse("1:0"), None);
        assert_eq!(parse("1:EWHAT"), None);
        assert_eq!(parse("x:EIO"), None);
        assert_eq!(parse("1"), None);
    }

    #[test]
    fn fails_the_nth_call_only_and_counts_the_rest() {
        let mut recorder = Recorder::permissive();
        let mut fault = Fault {
            target: Some((2, Errno::EIO)),
            steps: 0,
        };
        let mut sys = Faulty {
            inner: &mut recorder,
            fault: &mut fault,
        };
        assert_eq!(sys.mkdir_all(Path::new("/a")), Ok(()));
        assert_eq!(sys.kind(Path::new("/a")), Some(Kind::Dir), "stat is no step");
        assert_eq!(sys.sethostname("x"), Err(Errno::EIO));
        assert_eq!(sys.chdir(Path::new("/")), Ok(()));
        assert_eq!(recorder.calls, ["mkdir /a", "chdir /"], "the failed call is not made");
        assert_eq!(fault.steps, 3);
        assert_eq!(fault.unreached(), None);
        let far = Fault {
            target: Some((9, Errno::EIO)),
            steps: 4,
        };
        assert!(far.unreached().is_some_and(|l| l.ends_with("has 4 steps")));
        assert_eq!(Fault::default().unreached(), None);
    }
}
