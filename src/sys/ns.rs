//! Namespaces: cloning into new ones, and bringing up the loopback of a new
//! network namespace.

use std::io;
use std::os::unix::fs::OpenOptionsExt;

/// Which side of a clone we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// clone(2) with fork semantics (no new stack: the child gets a copy of
/// this address space) into the namespaces of `flags` (`CLONE_NEW*`). The
/// child's death is reported to us by SIGCHLD.
///
/// Call it single-threaded: like after fork, only the calling thread exists
/// in the child.
pub fn clone_into(flags: libc::c_int) -> io::Result<Forked> {
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack, clone behaves as fork: the child continues
    // on a copy of our stack. The remaining arguments (parent/child tid
    // pointers, TLS) are zero, so the kernel writes nothing of ours; their
    // order differs between architectures but all are zero.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { child: pid as i32 }),
    }
}

/// Sets `IFF_UP` on "lo" (netdevice(7)): a new network namespace starts
/// with its loopback down.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor we just opened and own from here on.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`, a
    // valid ifreq that outlives the call.
    if unsafe { libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the flags member of the union is the one set.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`, valid for the call.
    if unsafe { libc::ioctl(raw, libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The network namespace of process `pid`, opened.
pub fn open_netns(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    open_ns_file(std::path::Path::new(&format!("/proc/{pid}/ns/net")))
}

/// A namespace file (`/proc/PID/ns/net`, or one `ip netns add` mounted).
pub fn open_ns_file(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    Ok(file.into())
}

/// Moves this process into the network namespace `ns` (setns(2)).
pub fn enter_netns(ns: &std::os::fd::OwnedFd) -> io::Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// `cmd` will run in the network namespace `ns`.
pub fn enter_netns_on_exec(cmd: &mut std::process::Command, ns: std::os::fd::OwnedFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only
    // setns(2), a plain syscall (async-signal-safe); `ns` is moved in and
    // stays open until the command is dropped (its copy in the child is
    // closed on exec).
    unsafe {
        cmd.pre_exec(move || enter_netns(&ns));
    }
}

/// The inode of this process's network namespace: which host it is.
pub fn netns_id() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net").map(|m| m.ino())
}

/// `cmd` will get each `(fd, number)` at that descriptor number (inherited
/// across exec), e.g. a namespace for a helper to open as /proc/self/fd/N.
/// At most four; targets below 64. No allocation after the fork.
pub fn pass_fds(cmd: &mut std::process::Command, fds: Vec<(std::os::fd::OwnedFd, i32)>) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only fcntl
    // and dup2, async-signal-safe syscalls, on descriptors it owns (moved
    // in, open until the command is dropped). Copies go above every target
    // first, so that one target never overwrites a source not yet placed.
    unsafe {
        cmd.pre_exec(move || {
            let mut placed = [(-1, -1); 4];
            for (slot, (fd, target)) in placed.iter_mut().zip(&fds) {
                let copy = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 64);
                if copy < 0 {
                    return Err(io::Error::last_os_error());
                }
                *slot = (copy, *target);
            }
            for (copy, target) in placed.iter().filter(|(c, _)| *c >= 0) {
                if libc::dup2(*copy, *target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Whether this network namespace has an interface `name`.
pub fn link_exists(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: if_nametoindex reads the NUL-terminated name, valid for the
    // call, and returns 0 when there is no such interface.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}
