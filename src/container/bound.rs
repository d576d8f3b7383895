//! `tend boot --memory/--cpus/--pids`: the whole machine in one cgroup the
//! launcher makes (`tend-TOKEN/machine`, in v2 and in the v1 hierarchies,
//! locked, swept and removed as a service's are), so its PID 1, services
//! and `ctl exec` commands share the bounds. The launcher puts PID 1 in it
//! before letting it go, and removes it when the machine has ended.

use crate::sys::cgroup::{Cgroup, Cgroups};
use crate::unit::Resources;

/// The machine's cgroup, removed (with what is left in it) when dropped.
pub struct Bound {
    // Declared first: dropped before the roots it lives in.
    _machine: Option<Cgroup>,
    _roots: Option<Cgroups>,
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
        self._roots.as_ref()?.v2_dir()
    }
}

/// Bounds the machine whose PID 1 is `child` (host pid, not yet running
/// its setup). Without bounds, nothing; where tend can write no cgroup (a
/// rootless boot without a delegated one), one line, and it boots unbound.
pub fn bound(resources: &Resources, token: &str, child: i32) -> Result<Bound, Error> {
    let none = Bound {
        _machine: None,
        _roots: None,
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
    machine.join(child).map_err(Error::Join)?;
    Ok(Bound {
        _machine: Some(machine),
        _roots: Some(roots),
    })
}
