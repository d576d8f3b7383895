//! Idmapped mounts (Linux ≥ 5.12): a detached copy of a tree
//! (open_tree(2) with `OPEN_TREE_CLONE`), its ids shifted through a user
//! namespace (mount_setattr(2) with `MOUNT_ATTR_IDMAP`), attached
//! elsewhere (move_mount(2)), possibly in another mount namespace.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPEN_TREE_CLONE: libc::c_uint = 1;
pub(super) const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `struct mount_attr` of <linux/mount.h>.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn fd_or_error(rc: libc::c_long) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this new descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

/// A detached, recursive copy of the mounts at `path` (close-on-exec).
pub fn clone_tree(path: &Path) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    fd_or_error(rc)
}

/// Shifts the ids of every mount of the detached tree `tree` through the
/// maps of the user namespace `userns` (an fd of /proc/PID/ns/user).
pub fn set_idmap(tree: &OwnedFd, userns: &OwnedFd) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE;
    mount_setattr(
        tree.as_raw_fd(),
        c"",
        flags,
        MOUNT_ATTR_IDMAP,
        userns.as_raw_fd() as u64,
    )
}

/// mount_setattr(2): sets `attr_set` on the mount at `path` relative to
/// `dirfd` (with `AT_RECURSIVE` in `flags`, on every mount below it too);
/// `userns_fd` for `MOUNT_ATTR_IDMAP`, else 0.
pub(super) fn mount_setattr(
    dirfd: i32,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
    attr_set: u64,
    userns_fd: u64,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    // SAFETY: `path` is NUL-terminated and `attr` a valid mount_attr whose
    // size is passed; both outlive the call, which only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches the detached tree `tree` at `target` (in our mount namespace).
pub fn attach(tree: i32, target: &Path) -> io::Result<()> {
    let target = c_path(target)?;
    let empty = c"";
    // SAFETY: both paths are NUL-terminated and outlive the call; `tree`
    // is an fd number the kernel checks.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
