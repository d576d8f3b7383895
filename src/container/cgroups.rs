//! The machine's cgroups, made before its PID 1 is cloned: its bounds
//! ([`super::bound`]) and, under `--privileged`, its devices
//! ([`super::devices`]). PID 1 is cloned straight into their v2 cgroup (a
//! move after the clone waits for an RCU grace period, milliseconds); the
//! launcher joins it to the v1 ones, if any, and attaches the device
//! program (while PID 1 mounts its root) before letting it go on. All
//! removed when dropped, once the machine has ended.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::bound::{self, Bound};
use super::devices;
use super::options::BootOptions;
use crate::sys::devcgroup::Devices;
use crate::sys::fault::Fault;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bound(#[from] bound::Error),
    #[error(transparent)]
    Devices(#[from] devices::Error),
    #[error("cannot open the machine's cgroup")]
    Open(#[source] std::io::Error),
    #[error("cannot {0}")]
    Step(&'static str, #[source] std::io::Error),
}

/// One step of a fault test (see [`crate::sys::fault`]): `what` fails when
/// it is the chosen one.
fn step(fault: &mut Fault, what: &'static str) -> Result<(), Error> {
    fault.step().map_err(|errno| Error::Step(what, errno.into()))
}

pub struct MachineCgroups {
    // Declared first: dropped (removed) before the bounds.
    devices: devices::Restriction,
    /// The devices' v2 cgroup, open for the clone.
    devices_v2: Option<OwnedFd>,
    bound: Bound,
}

impl MachineCgroups {
    /// The cgroups `o` asks for, named `tend-TOKEN` in each hierarchy;
    /// each made with a step of `fault`.
    pub fn make(o: &BootOptions, token: &str, fault: &mut Fault) -> Result<MachineCgroups, Error> {
        if !o.resources.is_empty() {
            step(fault, "create the machine's cgroup")?;
        }
        let bound = bound::bound(&o.resources, token)?;
        if !o.resources.is_empty() {
            // Made and bounded: what a failure here tries is their removal.
            step(fault, "bound the machine")?;
        }
        if o.privileged {
            step(fault, "restrict the machine's devices")?;
        }
        let devices = devices::restrict(o, token, bound.v2_root())?;
        let devices_v2 = match devices.devices.as_ref().and_then(Devices::open_v2_machine) {
            Some(open) => Some(open.map_err(Error::Open)?),
            None => None,
        };
        Ok(MachineCgroups {
            devices,
            devices_v2,
            bound,
        })
    }

    /// The v2 cgroup PID 1 starts in: the bounds' (a device program is on
    /// their root), else the devices' own; `None`: it stays in the
    /// launcher's.
    /// How many of the machine's processes the kernel's OOM killer killed.
    pub fn oom_kills(&self) -> u64 {
        self.bound.oom_kills()
    }

    pub fn v2_dir(&self) -> Option<BorrowedFd<'_>> {
        self.bound
            .v2_machine()
            .or_else(|| self.devices_v2.as_ref().map(AsFd::as_fd))
    }

    /// Moves PID 1 (host pid `child`) into the cgroups it is not in yet:
    /// the v1 ones, and the v2 one unless the clone put it there; then
    /// attaches the device program, while PID 1 mounts its root.
    pub fn join(&mut self, child: i32, in_v2: bool, fault: &mut Fault) -> Result<(), Error> {
        if self.bound.exists() || self.devices.devices.is_some() {
            step(fault, "put the machine in its cgroups")?;
        }
        self.bound.join(child, in_v2)?;
        if let Some(devices) = &self.devices.devices {
            if !(in_v2 && self.devices_v2.is_some()) {
                devices.join(child).map_err(devices::Error)?;
            }
        }
        self.devices.finish(child)?;
        Ok(())
    }

    /// In PID 1: its copies of the launcher's descriptors closed, the
    /// cgroups left to the launcher (see
    /// [`crate::sys::cgroup::close_inherited`]).
    pub fn close_in_child(self) {
        let mut fds: Vec<RawFd> = self.bound.raw_fds();
        let devices = [&self.devices.devices, &self.devices.fallback];
        fds.extend(devices.into_iter().flatten().map(Devices::raw_fd));
        fds.extend(self.devices_v2.iter().map(AsRawFd::as_raw_fd));
        crate::sys::cgroup::close_inherited(self, &fds);
    }
}
