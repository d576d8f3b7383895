//! `tend boot --memory/--cpus/--pids`: the whole machine in one cgroup the
//! launcher makes (`tend-TOKEN/machine`, in v2 and in the v1 hierarchies,
//! locked, swept and removed as a service's are), so its PID 1, services
//! and `ctl exec` commands share the bounds. Made before the clone, so that
//! PID 1 starts in its v2 cgroup; the v1 ones are joined before it is let
//! go on; removed when the machine has ended.

use std::os::fd::BorrowedFd;

use crate::sys::cgroup::{Cgroup, Cgroups};
use crate::unit::Resources;

/// The machine's cgroup, removed (with what is left in it) when dropped.
pub struct Bound {
    // Declared first: dropped before the roots it lives in.
    machine: Option<Cgroup>,
    roots: Option<Cgroups>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the machine's cgroup")]
    Create(#[source] std::io::Error),
    #[error("cannot bound the machine: {0}")]
    Limit(String),
    #[error("cannot put the machine in its cgroup")]
    Join(#[source] std::io::Error),
}

impl Bound {
    /// The machine's `tend-TOKEN` in the v2 hierarchy, when it has one
    /// (the machine's cgroup is below it).
    pub fn v2_root(&self) -> Option<&std::path::Path> {
        self.roots.as_ref()?.v2_dir()
    }

    /// How many of the machine's processes the kernel's OOM killer killed.
    pub fn oom_kills(&self) -> u64 {
        self.machine.as_ref().map_or(0, Cgroup::oom_kills)
    }

    /// Whether the machine has a cgroup of its bounds.
    pub fn exists(&self) -> bool {
        self.machine.is_some()
    }

    /// The machine's v2 cgroup, open, for PID 1 to be cloned into.
    pub fn v2_machine(&self) -> Option<BorrowedFd<'_>> {
        self.machine.as_ref()?.v2_dir()
    }

    /// The descriptors it holds (see [`crate::sys::cgroup::close_inherited`]).
    pub fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        let machine = self.machine.iter().flat_map(Cgroup::raw_fds);
        machine.chain(self.roots.iter().flat_map(Cgroups::raw_fds)).collect()
    }

    /// Moves PID 1 (host pid `child`) into the machine's cgroups it is not
    /// in yet (all but v2's when it was cloned into that one).
    pub fn join(&self, child: i32, in_v2: bool) -> Result<(), Error> {
        match &self.machine {
            Some(machine) => machine.join_after_clone(child, in_v2).map_err(Error::Join),
            None => Ok(()),
        }
    }
}

/// The machine's cgroup with `resources` applied, not joined yet. Without
/// bounds, nothing; where tend can write no cgroup (a rootless boot
/// without a delegated one), one line, and it boots unbound.
pub fn bound(resources: &Resources, token: &str) -> Result<Bound, Error> {
    let none = Bound {
        machine: None,
        roots: None,
    };
    if resources.is_empty() {
        return Ok(none);
    }
    let Some(roots) = Cgroups::detect(token) else {
        tracing::warn!("--memory, --cpus, --pids not applied: no writable cgroup (read-only or not delegated)");
        return Ok(none);
    };
    let machine = roots
        .create("machine", &resources.controllers())
        .map_err(Error::Create)?;
    let problems = machine.apply(&Resources::default(), resources);
    if !problems.is_empty() {
        return Err(Error::Limit(problems.join("; ")));
    }
    Ok(Bound {
        machine: Some(machine),
        roots: Some(roots),
    })
}
