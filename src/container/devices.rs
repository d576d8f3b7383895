//! The device nodes a `--privileged` machine may use: only those its /dev
//! holds (see [`super::plan`]). Without a user namespace, root inside could
//! make and open any node (a host disk); the launcher's devices control
//! refuses every other one, to mknod and to open: a cgroup v2 device
//! program ([`crate::sys::devprog`]) on the machine's `tend-TOKEN` (the one
//! `--memory` made, or one of its own) where tend can attach one, else a
//! v1 `devices` cgroup ([`crate::sys::devcgroup`]). The v2 one first: PID 1
//! is cloned into it, where joining v1's is a move that waits for an RCU
//! grace period. A default boot needs none: its user namespace forbids
//! mknod, and host nodes are not its root's to open. Where tend can write
//! neither (tend in a container with read-only cgroups), one warning line
//! says device access is not restricted.

use std::path::Path;

use super::options::BootOptions;
use super::plan::DEVICES;
use crate::sys::devcgroup::{self, Devices, Rule};

/// Unix98 pty slaves (/dev/pts/N): majors 136 to 143.
const PTS_MAJORS: std::ops::RangeInclusive<u32> = 136..=143;
/// /dev/ptmx (devpts's own ptmx too).
const PTMX: (u32, u32) = (5, 2);
const RWM: u8 = 7;
const RW: u8 = 6;

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot restrict the machine's devices (boot without --privileged, whose user namespace needs no devices cgroup)"
)]
pub struct Error(#[source] pub(super) devcgroup::Error);

/// What the machine may use: the nodes of /dev (made with mknod under
/// `--privileged`), ptmx and the ptys, and the console (`console`, its
/// device number) when a terminal is bound there.
pub fn rules(console: Option<(u32, u32)>) -> Vec<Rule> {
    let rule = |major: u32, minor: Option<u32>, access: u8| Rule { major, minor, access };
    let mut rules: Vec<Rule> = DEVICES
        .iter()
        .map(|&(_, major, minor)| rule(major as u32, Some(minor as u32), RWM))
        .collect();
    rules.push(rule(PTMX.0, Some(PTMX.1), RW));
    rules.extend(PTS_MAJORS.map(|major| rule(major, None, RW)));
    if let Some((major, minor)) = console.filter(|(major, _)| !PTS_MAJORS.contains(major)) {
        rules.push(rule(major, Some(minor), RW));
    }
    rules
}

/// Under `--privileged`: the machine's devices restricted to [`rules`],
/// before its PID 1 is cloned. A device program in the v2 hierarchy where
/// tend can attach one: on `bound_v2`, the `tend-TOKEN` its `--memory`
/// bounds made (a process has one v2 cgroup: the program goes there), else
/// on a `tend-TOKEN` of its own, which PID 1 is cloned into (no move, which
/// would wait for an RCU grace period). Else v1's `devices` controller,
/// which the launcher joins PID 1 to. What it returns removes its cgroups
/// when it drops. Otherwise nothing.
pub fn restrict(o: &BootOptions, token: &str, bound_v2: Option<&Path>) -> Result<Option<Devices>, Error> {
    if !o.privileged {
        return Ok(None);
    }
    let console = o.console.as_ref().and_then(|tty| {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(tty).ok()?.rdev();
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        Some((u32::try_from(major).ok()?, u32::try_from(minor).ok()?))
    });
    let rules = rules(console);
    let writable = |dir: &Path| nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok();
    let v2 = crate::sys::cgroup::find().v2.filter(|p| writable(p));
    let on_v2 = match (bound_v2, v2) {
        (Some(root), _) => Some(
            crate::sys::devprog::attach(root, &rules)
                .map(|()| None)
                .map_err(|source| devcgroup::Error::Program {
                    path: root.to_path_buf(),
                    source,
                }),
        ),
        (None, Some(parent)) => Some(Devices::create_v2(&parent, token, &rules).map(Some)),
        (None, None) => None,
    };
    if let Some(Ok(devices)) = on_v2 {
        return Ok(devices);
    }
    // No v2, or one that takes no device program (bpf(2) refused).
    match (on_v2, devcgroup::parent().filter(|p| writable(p))) {
        (_, Some(parent)) => Devices::create(&parent, token, &rules).map(Some).map_err(Error),
        (Some(Err(e)), None) => Err(Error(e)),
        (_, None) => {
            tracing::warn!("--privileged: device access is not restricted (no writable devices cgroup, v1 or v2)");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_allow_the_nodes_of_dev_and_nothing_else() {
        let rules = rules(Some((4, 1)));
        let lines: Vec<String> = rules.iter().map(ToString::to_string).collect();
        for node in [
            "c 1:3 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rw",
            "c 136:* rw",
            "c 143:* rw",
            "c 4:1 rw",
        ] {
            assert!(lines.iter().any(|r| r == node), "{node}: {lines:?}");
        }
        assert_eq!(
            lines.len(),
            6 + 1 + 8 + 1,
            "the nodes, ptmx, the ptys, the console: {lines:?}"
        );
        let on_a_pty = super::rules(Some((136, 4)));
        assert_eq!(on_a_pty.len(), rules.len() - 1, "a pty console is among the ptys");
    }
}
