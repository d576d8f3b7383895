//! A machine's devices cgroup (`tend boot --privileged`, where no user
//! namespace forbids device nodes): `tend-TOKEN` under tend's own cgroup,
//! allowed only the rules given, and `tend-TOKEN/machine` below it, which
//! the machine joins. In the v1 `devices` hierarchy the rules are
//! `devices.deny a` then `devices.allow` lines (a v1 cgroup may never
//! allow more than its parent: root inside cannot widen its own list); in
//! the v2 hierarchy, a device program ([`super::devprog`]). Locked, swept
//! and removed as the other hierarchies' `tend-TOKEN` are (see
//! [`super::cgroup`]).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::Flock;

use super::cgroup::{claim, kill_all, own_v1_path, remove_tree, sweep, v1_mount, PREFIX};

/// How long the removal waits for the cgroup to let go of the machine's
/// last processes.
const EMPTY_WITHIN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the devices cgroup {}", .0.display())]
    Claim(PathBuf),
    #[error("cannot attach the device program to {}", .path.display())]
    Program {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {rule:?} to {}", .path.display())]
    Write {
        path: PathBuf,
        rule: String,
        #[source]
        source: io::Error,
    },
}

/// A character device a machine may use: `minor` `None` for all of a
/// major; `access` as v1's `m`, `r`, `w` bits (1, 2, 4), as a device
/// program sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub major: u32,
    pub minor: Option<u32>,
    pub access: u8,
}

impl std::fmt::Display for Rule {
    /// The `devices.allow` line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let minor = self.minor.map_or("*".to_string(), |m| m.to_string());
        let access: String = [(2, 'r'), (4, 'w'), (1, 'm')]
            .iter()
            .filter(|(bit, _)| self.access & bit != 0)
            .map(|(_, c)| *c)
            .collect();
        write!(f, "c {}:{minor} {access}", self.major)
    }
}

/// The machine's devices cgroup; removed on drop.
#[derive(Debug)]
pub struct Devices {
    dir: PathBuf,
    machine: PathBuf,
    /// In the v2 hierarchy (a device program), not v1's `devices`.
    v2: bool,
    _lock: Flock<File>,
}

/// tend's own cgroup in the v1 `devices` hierarchy, read now; `None`
/// where there is none (a pure cgroup v2 host).
pub fn parent() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    locate(&mountinfo, &own)
}

/// [`parent`] on the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
pub fn locate(mountinfo: &str, own: &str) -> Option<PathBuf> {
    let mount = v1_mount(mountinfo, "devices")?;
    let path = own_v1_path(own, "devices")?;
    match path.trim_start_matches('/') {
        "" => Some(mount),
        below => Some(mount.join(below)),
    }
}

impl Devices {
    /// Makes `tend-TOKEN` in `parent` (after sweeping those earlier tends
    /// left there) with only `rules` (`devices.allow` lines) allowed, and
    /// the machine's cgroup below it.
    pub fn create(parent: &Path, token: &str, rules: &[Rule]) -> Result<Devices, Error> {
        let devices = Devices::claim(parent, token)?;
        devices.write("devices.deny", "a")?;
        for rule in rules {
            devices.write("devices.allow", &rule.to_string())?;
        }
        // Made after the rules: a new v1 cgroup copies its parent's.
        devices.make_machine()
    }

    /// The same in the v2 hierarchy at `parent`, without its device
    /// program yet ([`super::devprog::attach`] on [`Devices::dir`]): the
    /// launcher attaches it while the machine's PID 1, cloned into the
    /// machine's cgroup, sets up its mounts. Earlier tends' `tend-*` are
    /// left for [`Devices::sweep`], after.
    pub fn claim_v2(parent: &Path, token: &str) -> Result<Devices, Error> {
        let dir = parent.join(format!("{PREFIX}{token}"));
        let lock = claim(&dir).ok_or_else(|| Error::Claim(dir.clone()))?;
        Devices {
            machine: dir.join("machine"),
            dir,
            v2: true,
            _lock: lock,
        }
        .make_machine()
    }

    /// `tend-TOKEN`, where the rules (or the device program) apply.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the `tend-*` cgroups beside this one that earlier tends
    /// left (see [`super::cgroup::sweep`]).
    pub fn sweep(&self) {
        if let Some(parent) = self.dir.parent() {
            sweep(parent, &self.dir);
        }
    }

    /// `tend-TOKEN` in `parent`, locked, after sweeping those earlier
    /// tends left there.
    fn claim(parent: &Path, token: &str) -> Result<Devices, Error> {
        let dir = parent.join(format!("{PREFIX}{token}"));
        let lock = claim(&dir).ok_or_else(|| Error::Claim(dir.clone()))?;
        sweep(parent, &dir);
        Ok(Devices {
            machine: dir.join("machine"),
            dir,
            v2: false,
            _lock: lock,
        })
    }

    fn make_machine(self) -> Result<Devices, Error> {
        match fs::create_dir(&self.machine) {
            Ok(()) => Ok(self),
            Err(source) => Err(Error::Write {
                path: self.machine.clone(),
                rule: "mkdir".into(),
                source,
            }),
        }
    }

    fn write(&self, file: &str, rule: &str) -> Result<(), Error> {
        let path = self.dir.join(file);
        fs::write(&path, rule).map_err(|source| Error::Write {
            path,
            rule: rule.into(),
            source,
        })
    }

    /// The descriptor it holds (its lock).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&*self._lock)
    }

    /// The machine's cgroup, open, for its PID 1 to be cloned into: only
    /// in the v2 hierarchy (v1's is joined by [`Devices::join`]).
    pub fn open_v2_machine(&self) -> Option<io::Result<std::os::fd::OwnedFd>> {
        self.v2.then(|| super::cgroup::open_dir(&self.machine))
    }

    /// Moves the process `pid` (and all it starts) into the machine's cgroup.
    pub fn join(&self, pid: i32) -> Result<(), Error> {
        let path = self.machine.join("cgroup.procs");
        fs::write(&path, pid.to_string()).map_err(|source| Error::Write {
            path,
            rule: pid.to_string(),
            source,
        })
    }
}

impl Drop for Devices {
    fn drop(&mut self) {
        let deadline = Instant::now() + EMPTY_WITHIN;
        kill_all(&self.machine);
        // The machine's cgroup first (its parent's rmdir then lists nothing).
        let _ = fs::remove_dir(&self.machine);
        // v1 has no events to wait on: the kernel lets go of a cgroup a
        // little after its last task exits (rmdir says EBUSY meanwhile).
        while !remove_tree(&self.dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devices_hierarchy_and_own_path() {
        let mountinfo = "35 25 0:30 / /sys/fs/cgroup/devices rw,nosuid shared:15 - cgroup cgroup rw,devices\n\
                         36 25 0:31 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory\n";
        let own = "5:devices:/system.slice/x.service\n4:memory:/\n0::/\n";
        assert_eq!(
            locate(mountinfo, own),
            Some(PathBuf::from("/sys/fs/cgroup/devices/system.slice/x.service"))
        );
        assert_eq!(
            locate(mountinfo, "5:devices:/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/devices"))
        );
        assert_eq!(locate("", "0::/\n"), None, "a pure v2 host has none");
    }
}
