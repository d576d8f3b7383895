//! What PID 1 gives up before it starts any service, so that every service
//! and every `ctl exec` command inherits it: the capabilities outside the
//! container's set ([`super::caps`]).

use super::caps;
use super::options::BootOptions;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reduce the capabilities to {wanted}")]
    Caps {
        wanted: String,
        #[source]
        source: std::io::Error,
    },
}

/// Called by PID 1 after its mounts and before its loop.
pub fn confine(o: &BootOptions) -> Result<(), Error> {
    drop_caps(o.caps)
}

fn drop_caps(wanted: caps::Set) -> Result<(), Error> {
    let error = |source| Error::Caps {
        wanted: caps::names(wanted),
        source,
    };
    let permitted = crate::sys::caps::permitted().map_err(error)?;
    let plan = caps::plan(wanted, permitted, crate::sys::caps::last_cap());
    crate::sys::caps::apply(&plan).map_err(error)
}
