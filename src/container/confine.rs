//! What PID 1 gives up before it starts any service, so that every service
//! and every `ctl exec` command inherits it: the seccomp filter
//! ([`super::seccomp`]), then the capabilities outside the container's set
//! ([`super::caps`]) (the filter first: installing it without
//! no_new_privs takes `CAP_SYS_ADMIN`, which the set may drop).

use super::caps;
use super::options::BootOptions;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Filter(#[from] super::seccomp::Error),
    #[error("cannot install the seccomp filter (--seccomp=off boots without it)")]
    Seccomp(#[source] std::io::Error),
    #[error("cannot reduce the capabilities to {wanted}")]
    Caps {
        wanted: String,
        #[source]
        source: std::io::Error,
    },
}

/// Called by PID 1 after its mounts and before its loop.
pub fn confine(o: &BootOptions) -> Result<(), Error> {
    if o.seccomp {
        let program = super::seccomp::program()?;
        crate::sys::seccomp::install(&program).map_err(Error::Seccomp)?;
    }
    drop_caps(o.caps)
}

fn drop_caps(wanted: caps::Set) -> Result<(), Error> {
    let error = |source| Error::Caps {
        wanted: caps::names(wanted),
        source,
    };
    let permitted = crate::sys::caps::permitted().map_err(error)?;
    let plan = caps::plan(wanted, permitted, crate::sys::caps::last_cap());
    crate::sys::caps::apply(&plan.drop_bounding, plan.keep).map_err(error)
}
