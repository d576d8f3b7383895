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

/// `struct clone_args` of clone3(2) up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// clone3's flag: start the child in the cgroup `CloneArgs::cgroup` names.
pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// [`clone_into`], the child starting in the v2 cgroup whose directory
/// is open as `cgroup` (`clone3` with `CLONE_INTO_CGROUP`): no move after
/// the fact, which would wait for an RCU grace period. Whether it went in:
/// false where the kernel cannot (before 5.7, or clone3 filtered out), and
/// the caller moves the child itself.
pub fn clone_into_cgroup(flags: libc::c_int, cgroup: std::os::fd::BorrowedFd<'_>) -> io::Result<(Forked, bool)> {
    use std::os::fd::AsRawFd;
    let args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 with no stack (and no CLONE_VM) behaves as fork, as
    // in `clone_into`: the child continues on a copy of this address space.
    // The kernel reads `args` (valid, of the size passed) and writes
    // nothing of ours: no tid or pidfd pointers are set.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        0 => Ok((Forked::Child, true)),
        -1 => match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS | libc::E2BIG | libc::EPERM) => Ok((clone_into(flags)?, false)),
            _ => Err(io::Error::last_os_error()),
        },
        pid => Ok((Forked::Parent { child: pid as i32 }, true)),
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

/// [`loopback_up`] in the network namespace `ns` (a machine's, by its
/// launcher): this process steps in and back out.
pub fn loopback_up_in(ns: &std::os::fd::OwnedFd) -> io::Result<()> {
    let home = open_ns_file(std::path::Path::new("/proc/thread-self/ns/net"))?;
    enter_netns(ns)?;
    let up = loopback_up();
    // Back home, whatever happened: root may always re-enter the namespace
    // it came from.
    enter_netns(&home)?;
    up
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

/// The inode of this process's network namespace: which host it is.
pub fn netns_id() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net").map(|m| m.ino())
}

/// Whether this network namespace has an interface `name`: SIOCGIFINDEX
/// (netdevice(7)) knows it, as glibc's if_nametoindex asks (which would
/// link glibc's netlink code and every CPU variant of strncpy, 19 KiB).
pub fn link_exists(name: &str) -> bool {
    let bytes = name.as_bytes();
    // The name and its NUL must fit ifr_name (glibc: ENODEV).
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return false;
    }
    // Any socket takes the ioctl; glibc tries these families in turn.
    let Some(socket) = [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6]
        .into_iter()
        .find_map(|family| {
            // SAFETY: socket takes integers and returns a new descriptor or -1.
            let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            // SAFETY: `fd` is a descriptor we just opened and own from here on.
            (fd >= 0).then(|| unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        })
    else {
        return false;
    };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let raw = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: SIOCGIFINDEX reads the NUL-terminated name and writes the
    // index of `req`, a valid ifreq that outlives the call.
    if unsafe { libc::ioctl(raw, libc::SIOCGIFINDEX, &mut req) } < 0 {
        return false;
    }
    // SAFETY: after SIOCGIFINDEX the index member of the union is the one set.
    unsafe { req.ifr_ifru.ifru_ifindex != 0 }
}

/// A user namespace with these maps (`/proc/PID/uid_map` lines), and the
/// namespaces of `more` (`("net", CLONE_NEWNET)`...) owned by it, held by
/// nothing but the returned fds (the user namespace's first). Needs root.
/// A child enters them and waits while we write its maps and open them,
/// then exits: the caller reaps it (its pid, returned), when it suits.
pub fn hold_namespaces(
    uid_map: &str,
    gid_map: &str,
    more: &[(&str, libc::c_int)],
) -> io::Result<(Vec<std::os::fd::OwnedFd>, i32)> {
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let flags = more.iter().fold(libc::CLONE_NEWUSER, |f, (_, flag)| f | flag);
    let child = match clone_into(flags)? {
        Forked::Child => {
            // Our copy of the write end would keep the pipe open forever.
            drop(hold_w);
            let mut byte = [0u8; 1];
            // Only async-signal-safe calls here: wait for the pipe's end, exit.
            let _ = nix::unistd::read(&hold_r, &mut byte);
            // SAFETY: _exit takes an integer and never returns.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent { child } => child,
    };
    drop(hold_r);
    let proc = format!("/proc/{child}");
    let open = |name: &str| std::fs::File::open(format!("{proc}/ns/{name}")).map(std::os::fd::OwnedFd::from);
    let result = std::fs::write(format!("{proc}/uid_map"), uid_map)
        .and_then(|()| std::fs::write(format!("{proc}/gid_map"), gid_map))
        .and_then(|()| {
            std::iter::once("user")
                .chain(more.iter().map(|(n, _)| *n))
                .map(open)
                .collect()
        });
    drop(hold_w);
    match result {
        Ok(fds) => Ok((fds, child)),
        Err(e) => {
            let _ = super::process::wait_for(child, false);
            Err(e)
        }
    }
}

/// A user namespace with these maps, for idmapped mounts.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> io::Result<std::os::fd::OwnedFd> {
    let (mut fds, child) = hold_namespaces(uid_map, gid_map, &[])?;
    let _ = super::process::wait_for(child, false);
    fds.pop().ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// setns(2) into the namespace of `fd` (any type).
pub fn setns(fd: i32) -> io::Result<()> {
    // SAFETY: setns takes an fd number (checked by the kernel) and a flag.
    if unsafe { libc::setns(fd, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// As glibc's if_nametoindex answered: loopback is there in any
    /// network namespace; other names, too long ones and ones with a NUL are not.
    #[test]
    fn link_exists_as_if_nametoindex_says() {
        let glibc = |name: &str| {
            let name = std::ffi::CString::new(name).unwrap();
            // SAFETY: a NUL-terminated name valid for the call.
            unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
        };
        for name in ["lo", "no-such-link0", "", "a-name-longer-than-15", "lo\0x"] {
            let want = !name.contains('\0') && glibc(name);
            assert_eq!(super::link_exists(name), want, "{name:?}");
        }
        assert!(super::link_exists("lo"));
    }
}
