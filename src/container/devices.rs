//! The device nodes a `--privileged` machine may use: only those its /dev
//! holds (see [`super::plan`]). Without a user namespace, root inside could
//! make and open any node (a host disk); a devices cgroup the launcher makes
//! ([`crate::sys::devcgroup`], cgroup v1) refuses every other one, to
//! mknod and to open. A default boot needs none: its user namespace
//! forbids mknod, and host nodes are not its root's to open. On a host
//! without the v1 `devices` controller (pure cgroup v2, which would need a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program), one warning line says device
//! access is not restricted.

use super::options::BootOptions;
use super::plan::DEVICES;
use crate::sys::devcgroup::{self, Devices};

/// Unix98 pty slaves (/dev/pts/N): majors 136 to 143.
const PTS_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;
/// /dev/ptmx (devpts's own ptmx too).
const PTMX: (u64, u64) = (5, 2);

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot restrict the machine's devices (boot without --privileged, whose user namespace needs no devices cgroup)"
)]
pub struct Error(#[source] devcgroup::Error);

/// The `devices.allow` lines: the nodes of /dev (made with mknod under
/// `--privileged`), ptmx and the ptys, and the console (`console`, its
/// device number) when a terminal is bound there.
pub fn rules(console: Option<(u64, u64)>) -> Vec<String> {
    let mut rules: Vec<String> = DEVICES
        .iter()
        .map(|&(_, major, minor)| format!("c {major}:{minor} rwm"))
        .collect();
    rules.push(format!("c {}:{} rw", PTMX.0, PTMX.1));
    rules.extend(PTS_MAJORS.map(|major| format!("c {major}:* rw")));
    if let Some((major, minor)) = console.filter(|(major, _)| !PTS_MAJORS.contains(major)) {
        rules.push(format!("c {major}:{minor} rw"));
    }
    rules
}

/// Under `--privileged`: the machine whose PID 1 is `child` (host pid, not
/// yet let go) in a devices cgroup of its own, removed when the returned
/// value drops. Otherwise nothing.
pub fn restrict(o: &BootOptions, token: &str, child: i32) -> Result<Option<Devices>, Error> {
    if !o.privileged {
        return Ok(None);
    }
    let Some(parent) = devcgroup::parent() else {
        tracing::warn!(
            "--privileged: device access is not restricted (no cgroup v1 devices controller; a cgroup v2 device program is not implemented)"
        );
        return Ok(None);
    };
    // Read-only (tend itself in a container): as where there is none.
    if nix::unistd::access(&parent, nix::unistd::AccessFlags::W_OK).is_err() {
        tracing::warn!(
            "--privileged: device access is not restricted (the devices cgroup {} is not writable)",
            parent.display()
        );
        return Ok(None);
    }
    let console = o.console.as_ref().and_then(|tty| {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(tty).ok()?.rdev();
        Some((nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)))
    });
    let devices = Devices::create(&parent, token, &rules(console)).map_err(Error)?;
    devices.join(child).map_err(Error)?;
    Ok(Some(devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_allow_the_nodes_of_dev_and_nothing_else() {
        let rules = rules(Some((4, 1)));
        for node in [
            "c 1:3 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rw",
            "c 136:* rw",
            "c 143:* rw",
            "c 4:1 rw",
        ] {
            assert!(rules.iter().any(|r| r == node), "{node}: {rules:?}");
        }
        assert!(
            !rules.iter().any(|r| r.starts_with('b') || r.starts_with('a')),
            "{rules:?}"
        );
        let on_a_pty = super::rules(Some((136, 4)));
        assert_eq!(on_a_pty.len(), rules.len() - 1, "a pty console is among the ptys");
    }
}
