//! One cgroup v2 per service, where a writable cgroup2 hierarchy exists, so
//! that stopping a service reaches every process it started, even a daemon
//! that double-forked into a new session. tend removes its cgroups when it
//! exits and, at start, those left by tends that are gone (killed).

use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// tend's directories are `tend-TOKEN`, beside those of other tends sharing
/// the hierarchy; each tend holds a `flock` on its own for as long as it
/// runs, which is how a later tend tells a leftover from a live one.
const PREFIX: &str = "tend-";

/// How long tend waits at exit for its services' cgroups to empty after
/// `cgroup.kill`, so it can remove them.
const EMPTY_WITHIN: Duration = Duration::from_secs(2);

/// The directory under which tend makes its services' cgroups; removed
/// (with them) when dropped.
pub struct Cgroups {
    root: PathBuf,
    /// `root`, open and locked: released by the kernel however tend ends.
    _lock: Flock<File>,
}

/// A service's cgroup.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    /// Open until the service's process is in: see [`Cgroup::spawned`].
    procs: Option<OwnedFd>,
}

impl Cgroups {
    /// Finds a cgroup2 mount and makes `tend-TOKEN` under tend's own cgroup
    /// there, after removing the empty ones earlier tends (no longer
    /// running) left beside it. `None` when there is none or it is not
    /// writable: tend then falls back to process groups.
    pub fn detect(token: &str) -> Option<Cgroups> {
        // Where no cgroup2 sits at the usual places (a booted container has
        // none mounted), skip reading mountinfo.
        let usual = [
            "/sys/fs/cgroup/cgroup.controllers",
            "/sys/fs/cgroup/unified/cgroup.controllers",
        ];
        if !usual.iter().any(|p| Path::new(p).exists()) {
            return None;
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let mount = cgroup2_mount(&mountinfo)?;
        let own = own_v2_path(&own)?;
        let parent = mount.join(own.trim_start_matches('/'));
        let root = parent.join(format!("{PREFIX}{token}"));
        let lock = claim(&root)?;
        sweep(&parent, &root);
        Some(Cgroups { root, _lock: lock })
    }

    pub fn create(&self, service: &str) -> io::Result<Cgroup> {
        let dir = self.root.join(service);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let procs = fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"))?;
        Ok(Cgroup {
            dir,
            procs: Some(procs.into()),
        })
    }

    /// Kills what is left in the services' cgroups, waits (a bounded time)
    /// for them to empty, and removes them and tend's directory: when tend
    /// exits, whichever way its loop ends.
    fn remove(&self) {
        let deadline = Instant::now() + EMPTY_WITHIN;
        for dir in subdirs(&self.root) {
            kill_all(&dir);
            await_empty(&dir, deadline);
            // Killed tasks leave `cgroup.events` a little before the kernel
            // lets go of the cgroup (rmdir says EBUSY meanwhile): at exit,
            // try again briefly rather than leave it behind.
            while !remove_tree(&dir) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let _ = fs::remove_dir(&self.root);
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

/// SIGKILL to every process in the cgroup `dir`: `cgroup.kill`, or one by
/// one on kernels without it (before 5.14).
fn kill_all(dir: &Path) {
    if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
        let _ = super::process::kill(pid, libc::SIGKILL);
    }
}

/// Makes `root` and takes its lock. A starting tend may sweep it between
/// the two steps (it is empty and not yet locked): only a directory still
/// in place once locked counts, else it is made again.
fn claim(root: &Path) -> Option<Flock<File>> {
    for _ in 0..3 {
        fs::create_dir_all(root).ok()?;
        let dir = File::open(root).ok()?;
        // Blocking: only a sweeping tend can hold it, and for a few rmdirs.
        let lock = Flock::lock(dir, FlockArg::LockExclusive).ok()?;
        let (held, there) = (lock.metadata().ok()?, fs::metadata(root));
        if there.is_ok_and(|m| (m.dev(), m.ino()) == (held.dev(), held.ino())) {
            return Some(lock);
        }
    }
    None
}

/// Removes, under `parent`, the `tend-*` directories whose lock can be
/// taken (their tend is gone), with their empty cgroups; a live tend's
/// holds its lock, and a cgroup still holding processes stays.
fn sweep(parent: &Path, own: &Path) {
    for dir in subdirs(parent) {
        let ours = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PREFIX));
        if !ours || dir == own {
            continue;
        }
        let Ok(file) = File::open(&dir) else { continue };
        if let Ok(_lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            let _ = remove_tree(&dir);
            tracing::debug!("removed the cgroups an earlier tend left in {}", dir.display());
        }
    }
}

/// The directories in `dir` (a cgroup's children).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes a cgroup and its children, deepest first; those still holding
/// processes stay (rmdir refuses them). Whether it is gone.
fn remove_tree(dir: &Path) -> bool {
    for child in subdirs(dir) {
        remove_tree(&child);
    }
    match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Waits until `cgroup.events` says no process is left in `dir`, or the
/// deadline passes. The kernel signals changes of that file to poll(2) as
/// POLLPRI.
fn await_empty(dir: &Path, deadline: Instant) {
    let Ok(mut events) = File::open(dir.join("cgroup.events")) else {
        return;
    };
    loop {
        let mut text = String::new();
        let read = events.rewind().and_then(|()| events.read_to_string(&mut text));
        if read.is_err() || text.lines().any(|l| l == "populated 0") {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(timeout) = PollTimeout::try_from(left) else {
            return;
        };
        if left.is_zero() {
            return;
        }
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        if nix::poll::poll(&mut fds, timeout).is_err() {
            return;
        }
    }
}

impl Cgroup {
    /// The open `cgroup.procs`, for a child to write itself into.
    pub fn procs_fd(&self) -> Option<RawFd> {
        self.procs.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The process is in: close `cgroup.procs`. Every descriptor PID 1
    /// holds is one more that each later spawn copies and closes again.
    pub fn spawned(&mut self) {
        self.procs = None;
    }

    pub fn pids(&self) -> Vec<i32> {
        let text = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Sends `signal` to every process in the cgroup. SIGKILL uses
    /// `cgroup.kill`, which also catches processes forking meanwhile.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        if signal == libc::SIGKILL && fs::write(self.dir.join("cgroup.kill"), "1").is_ok() {
            return Ok(());
        }
        for pid in self.pids() {
            super::process::kill(pid, signal)?;
        }
        Ok(())
    }

    /// Removes the cgroup; fails while processes remain.
    pub fn remove(&self) -> io::Result<()> {
        fs::remove_dir(&self.dir)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// The mount point of the cgroup2 hierarchy in a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mount_point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// The cgroup2 path (`0::/path`) in a `/proc/self/cgroup` text.
pub fn own_v2_path(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string)
}

/// mountinfo escapes space, tab, newline and backslash as `\\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
";

    #[test]
    fn finds_the_v2_hierarchy_on_hybrid_machines() {
        assert_eq!(cgroup2_mount(HYBRID), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("25 1 0:23 / /sys rw - sysfs sysfs rw\n"), None);
        let escaped = "31 30 0:27 / /a\\040b rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(escaped), Some(PathBuf::from("/a b")));
    }

    #[test]
    fn own_path_is_the_v2_line() {
        let text = "12:memory:/x\n0::/user.slice/session-1.scope\n";
        assert_eq!(own_v2_path(text).as_deref(), Some("/user.slice/session-1.scope"));
        assert_eq!(own_v2_path("3:cpu:/\n"), None);
    }
}
