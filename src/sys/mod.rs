//! The syscall layer: the few, small places where tend calls the kernel
//! through raw `libc` or `unsafe`. Everything else goes through these.
//!
//! nix is used where its types fit; raw calls are used where they do not:
//! nix's `Signal` has no realtime signals, so `kill` and `waitpid` take and
//! return plain signal numbers here.

pub mod caps;
pub mod cgroup;
pub mod chown;
pub mod cmdline;
pub mod devcgroup;
pub mod devprog;
pub mod dispositions;
pub mod fault;
pub mod fdpass;
pub mod idmap;
pub mod memory;
pub mod mount;
pub mod netlink;
pub mod nftables;
pub mod ns;
pub mod process;
pub mod pty;
pub mod record;
pub mod seccomp;
pub mod sigmask;
pub mod spawn;

pub use process::ExitStatus;

/// The OS's text for an error, without std's "(os error N)" suffix: what
/// users read in tend's one-line messages.
pub fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// An error and its causes, joined by `: `; OS errors without std's
/// "(os error N)".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        match cause.downcast_ref::<std::io::Error>() {
            Some(io) => text.push_str(&crate::sys::describe(io)),
            None => text.push_str(&cause.to_string()),
        }
        source = cause.source();
    }
    text
}
