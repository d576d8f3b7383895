//! The device nodes a `--privileged` machine may use: only those its /dev
//! holds (see [`super::plan`]). Without a user namespace, root inside could
//! make and open any node (a host disk); the launcher's devices control
//! refuses every other one, to mknod and to open: a cgroup v2 device
//! program ([`crate::sys::devprog`]) on the machine's `tend-TOKEN` (the one
//! `--memory` made, or one of its own) where tend can attach one, else a
//! v1 `devices` cgroup ([`crate::sys::devcgroup`]). The v2 one first: PID 1
//! is cloned into it, where joining v1's is a move that waits for an RCU
//! grace period; the program is loaded and attached after the clone,
//! while PID 1 sets up its mounts, and before it runs anything of the
//! machine's. A default boot needs none: its user namespace forbids
//! mknod, and host nodes are not its root's to open. Where tend can write
//! neither (tend in a container with read-only cgroups), one warning line
//! says device access is not restricted.

use std::path::{Path, PathBuf};

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

/// Under `--privileged`, before its PID 1 is cloned: where the machine's
/// devices will be restricted to [`rules`]. A device program in the v2
/// hierarchy where tend can write one: on `bound_v2`, the `tend-TOKEN` its
/// `--memory` bounds made (a process has one v2 cgroup: the program goes
/// there), else on a `tend-TOKEN` of its own, made now, which PID 1 is
/// cloned into (no move, which would wait for an RCU grace period). The
/// program itself is loaded and attached by [`Restriction::finish`], while
/// PID 1 sets up its mounts: the kernel's verifier then costs the boot
/// nothing. Else v1's `devices` controller, which the launcher joins PID 1
/// to. What it holds removes its cgroups when it drops. Otherwise nothing.
pub fn restrict(o: &BootOptions, token: &str, bound_v2: Option<&Path>) -> Result<Restriction, Error> {
    let mut restriction = Restriction::default();
    if !o.privileged {
        return Ok(restriction);
    }
    let console = o.console.as_ref().and_then(|tty| {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(tty).ok()?.rdev();
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        Some((u32::try_from(major).ok()?, u32::try_from(minor).ok()?))
    });
    let rules = rules(console);
    let v2 = crate::sys::cgroup::find_v2().filter(|p| writable(p));
    let on_v2 = match (bound_v2, v2) {
        (Some(root), _) => Some(Ok((root.to_path_buf(), None))),
        (None, Some(parent)) => Some(Devices::claim_v2(&parent, token).map(|d| (d.dir().to_path_buf(), Some(d)))),
        (None, None) => None,
    };
    match on_v2 {
        Some(Ok((dir, devices))) => {
            restriction.devices = devices;
            restriction.program = Some(Program {
                dir,
                rules,
                token: token.to_string(),
            });
            Ok(restriction)
        }
        Some(Err(e)) => {
            restriction.devices = v1(token, &rules, Some(e))?;
            Ok(restriction)
        }
        None => {
            restriction.devices = v1(token, &rules, None)?;
            Ok(restriction)
        }
    }
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The v1 `devices` cgroup where v2 has none for the machine (`v2_error`:
/// why), or none at all: one warning, nothing restricted.
fn v1(token: &str, rules: &[Rule], v2_error: Option<devcgroup::Error>) -> Result<Option<Devices>, Error> {
    match (v2_error, devcgroup::parent().filter(|p| writable(p))) {
        (_, Some(parent)) => Devices::create(&parent, token, rules).map(Some).map_err(Error),
        (Some(e), None) => Err(Error(e)),
        (None, None) => {
            tracing::warn!("--privileged: device access is not restricted (no writable devices cgroup, v1 or v2)");
            Ok(None)
        }
    }
}

/// What [`restrict`] made, and the device program it still owes.
#[derive(Default)]
pub struct Restriction {
    /// The machine's devices cgroup (v2, or v1's), removed on drop; PID 1
    /// joins a v1 one.
    pub devices: Option<Devices>,
    /// v1's, made by [`Restriction::finish`] where v2 took no program.
    pub fallback: Option<Devices>,
    /// To attach once PID 1 is cloned, before it is let go on.
    program: Option<Program>,
}

/// A device program to load: on which cgroup, allowing which rules.
struct Program {
    dir: PathBuf,
    rules: Vec<Rule>,
    token: String,
}

impl Restriction {
    /// After the clone, before PID 1 goes on to anything but tend's own
    /// setup: the device program attached (it applies at once to the
    /// processes below), or, where v2 takes none (bpf(2) refused), PID 1
    /// (host pid `child`) moved into a v1 `devices` cgroup instead. The
    /// `tend-*` cgroups earlier tends left are swept after, off the boot's
    /// path.
    pub fn finish(&mut self, child: i32) -> Result<(), Error> {
        let Some(program) = self.program.take() else {
            return Ok(());
        };
        let attached =
            crate::sys::devprog::attach(&program.dir, &program.rules).map_err(|source| devcgroup::Error::Program {
                path: program.dir.clone(),
                source,
            });
        if let Some(devices) = &self.devices {
            devices.sweep();
        }
        if let Err(e) = attached {
            // PID 1 stays in the v2 cgroup without a program, removed with
            // the machine; v1's decides its devices.
            let v1 = v1(&program.token, &program.rules, Some(e))?;
            if let Some(v1) = &v1 {
                v1.join(child).map_err(Error)?;
            }
            self.fallback = v1;
        }
        Ok(())
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
