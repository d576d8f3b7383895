//! The calls that build a container's file system view, behind one trait so
//! that the order of the mount steps can be tested without root: [`Real`]
//! makes the calls, [`super::record::Recorder`] writes them down.
//!
//! Every method returns the bare [`Errno`]; the caller names the step and
//! the path (see `container::apply`).

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

/// What a path is, when it exists (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Anything that is not a directory: a file, a device, a socket.
    File,
}

/// The system calls of the mount setup, with the caller passing the
/// implementation explicitly (`&mut dyn Sys`).
pub trait Sys {
    /// mount(2).
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    /// move_mount(2) of the detached tree `fd` onto `target`.
    fn attach_tree(&mut self, fd: i32, target: &Path) -> Result<(), Errno>;
    /// umount2(2) with `MNT_DETACH`: gone from the tree now, freed when unused.
    fn umount_detach(&mut self, target: &Path) -> Result<(), Errno>;
    /// Makes the mount at `target` read-only, and every mount below it when
    /// `recursive` (mount_setattr(2) with `AT_RECURSIVE`).
    fn set_read_only(&mut self, target: &Path, recursive: bool) -> Result<(), Errno>;
    /// stat(2): `None` when the path does not exist.
    fn kind(&mut self, path: &Path) -> Option<Kind>;
    /// mkdir -p.
    fn mkdir_all(&mut self, path: &Path) -> Result<(), Errno>;
    /// An empty file to bind a file onto (kept if it exists).
    fn create_file(&mut self, path: &Path) -> Result<(), Errno>;
    /// mknod(2) of a character device.
    fn mknod(&mut self, path: &Path, major: u64, minor: u64, mode: u32) -> Result<(), Errno>;
    /// symlink(2): `link` pointing at `target`.
    fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), Errno>;
    fn chdir(&mut self, path: &Path) -> Result<(), Errno>;
    /// pivot_root(2).
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> Result<(), Errno>;
    /// sethostname(2).
    fn sethostname(&mut self, name: &str) -> Result<(), Errno>;
    /// chown(2).
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<(), Errno>;
    /// setfsgid(2), setfsuid(2): the ids files are created with, and
    /// checked against, from now on.
    fn set_fs_ids(&mut self, uid: u32, gid: u32) -> Result<(), Errno>;
}

/// The kernel.
#[derive(Debug, Default)]
pub struct Real;

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Sys for Real {
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount_detach(&mut self, target: &Path) -> Result<(), Errno> {
        nix::mount::umount2(target, MntFlags::MNT_DETACH)
    }

    fn attach_tree(&mut self, fd: i32, target: &Path) -> Result<(), Errno> {
        super::idmap::attach(fd, target).map_err(errno)
    }

    fn set_read_only(&mut self, target: &Path, recursive: bool) -> Result<(), Errno> {
        match mount_setattr_rdonly(target, recursive) {
            // Before Linux 5.12: remount the top mount only, keeping the
            // flags a user namespace may not drop (nosuid, nodev, noexec).
            Err(Errno::ENOSYS) => {
                let locked = locked_flags(target)?;
                let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked;
                nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
            }
            other => other,
        }
    }

    fn kind(&mut self, path: &Path) -> Option<Kind> {
        let meta = fs::metadata(path).ok()?;
        Some(if meta.is_dir() { Kind::Dir } else { Kind::File })
    }

    fn mkdir_all(&mut self, path: &Path) -> Result<(), Errno> {
        fs::create_dir_all(path).map_err(errno)
    }

    fn create_file(&mut self, path: &Path) -> Result<(), Errno> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(errno)?;
        }
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map(drop)
            .map_err(errno)
    }

    fn mknod(&mut self, path: &Path, major: u64, minor: u64, mode: u32) -> Result<(), Errno> {
        let dev = nix::sys::stat::makedev(major, minor);
        nix::sys::stat::mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(mode), dev)?;
        // mknod honours the umask; the nodes must be usable by everyone.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), Errno> {
        std::os::unix::fs::symlink(target, link).map_err(errno)
    }

    fn chdir(&mut self, path: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(path)
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn sethostname(&mut self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<(), Errno> {
        nix::unistd::chown(path, Some(uid.into()), Some(gid.into()))
    }

    fn set_fs_ids(&mut self, uid: u32, gid: u32) -> Result<(), Errno> {
        // setfsuid reports no error: it returns the previous id whatever
        // happens, so the new one is read back (a second call) and checked.
        nix::unistd::setfsgid(gid.into());
        nix::unistd::setfsuid(uid.into());
        let now = nix::unistd::setfsuid(uid.into());
        if now.as_raw() != uid {
            return Err(Errno::EPERM);
        }
        // Still host root for access: paths above the rootfs may be 0700.
        super::caps::raise_effective().map_err(errno)
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

fn mount_setattr_rdonly(target: &Path, recursive: bool) -> Result<(), Errno> {
    let path = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()))
        .map_err(|_| Errno::EINVAL)?;
    let flags = if recursive { super::idmap::AT_RECURSIVE } else { 0 };
    super::idmap::mount_setattr(libc::AT_FDCWD, &path, flags, MOUNT_ATTR_RDONLY, 0).map_err(errno)
}

/// The per-mount flags of `target` that a remount must repeat.
fn locked_flags(target: &Path) -> Result<MsFlags, Errno> {
    use nix::sys::statvfs::FsFlags;
    let flags = nix::sys::statvfs::statvfs(target)?.flags();
    let mut locked = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if flags.contains(fs) {
            locked |= ms;
        }
    }
    Ok(locked)
}
