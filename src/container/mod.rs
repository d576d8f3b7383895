//! `tend boot ROOTFS`: a system container. The options are validated first
//! ([`options`]), the mount and namespace steps are planned as data
//! ([`plan`], pure), then carried out in a cloned child that becomes PID 1
//! of its namespaces ([`namespaces`], [`apply`]) and runs `tend init`'s loop,
//! while the launcher waits, forwards shutdown signals and keeps the
//! machine's entry in the registry ([`registry`], [`launch`]).

pub mod apply;
pub mod bound;
pub mod caps;
pub mod cgroups;
pub mod confine;
pub mod devices;
pub mod launch;
pub mod namespaces;
pub mod net;
pub mod options;
pub mod plan;
pub mod seccomp;
pub mod userns;
mod watch;

pub use options::{Bind, BootOptions, Net, Request};
