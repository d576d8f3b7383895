//! Carrying out the planned steps, one straight sequence through a
//! [`Sys`]: each step says why it is there, and each failure names the step
//! and its path (`cannot bind /x onto /rootfs/y: no such file or directory`).

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::plan::Step;
use crate::sys::mount::{Kind, Sys};

/// An errno, shown as its description only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.desc())]
pub struct Os(pub Errno);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot make the mount tree private")]
    MakePrivate(#[source] Os),
    #[error("cannot bind the rootfs {} onto itself", .path.display())]
    BindSelf { path: PathBuf, source: Os },
    #[error("cannot attach the idmapped rootfs at {}", .path.display())]
    AttachTree { path: PathBuf, source: Os },
    #[error("cannot mount proc on {}", .path.display())]
    Proc { path: PathBuf, source: Os },
    #[error("cannot mask {}", .path.display())]
    Mask { path: PathBuf, source: Os },
    #[error("cannot make {} read-only", .path.display())]
    ReadOnly { path: PathBuf, source: Os },
    #[error("cannot mount sysfs on {}", .path.display())]
    Sysfs { path: PathBuf, source: Os },
    #[error("cannot mount a tmpfs on {}", .path.display())]
    Tmpfs { path: PathBuf, source: Os },
    #[error("cannot create the device {}", .path.display())]
    Device { path: PathBuf, source: Os },
    #[error("cannot mount devpts on {}", .path.display())]
    Devpts { path: PathBuf, source: Os },
    #[error("cannot mount mqueue on {}", .path.display())]
    Mqueue { path: PathBuf, source: Os },
    #[error("cannot create the link {}", .path.display())]
    Symlink { path: PathBuf, source: Os },
    #[error("cannot create the mount point {}", .path.display())]
    MountPoint { path: PathBuf, source: Os },
    #[error("cannot bind {} onto {}", .src.display(), .dst.display())]
    Bind { src: PathBuf, dst: PathBuf, source: Os },
    #[error("cannot make the root {} read-only", .path.display())]
    RootReadOnly { path: PathBuf, source: Os },
    #[error("cannot pivot_root into {}", .path.display())]
    PivotRoot { path: PathBuf, source: Os },
    #[error("cannot detach the old root")]
    DetachOldRoot(#[source] Os),
    #[error("cannot create files as host id {uid}")]
    CreateAs { uid: u32, source: Os },
    #[error("cannot give {} to the container's root", .path.display())]
    Chown { path: PathBuf, source: Os },
    #[error("cannot set the hostname to {name}")]
    Hostname { name: String, source: Os },
}

pub type Result<T = ()> = std::result::Result<T, Error>;

/// Flags of the API file systems: no setuid, no devices, no programs.
const SAFE: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);
const BIND: MsFlags = MsFlags::MS_BIND.union(MsFlags::MS_REC);

/// Runs every step in order; stops at the first failure.
pub fn apply(sys: &mut dyn Sys, steps: &[Step]) -> Result {
    let mut masks = Masks::default();
    for step in steps {
        match step {
            Step::MaskPath(path) => mask(sys, path, &mut masks)?,
            _ => one(sys, step)?,
        }
    }
    Ok(())
}

/// The masks made so far: the first directory masked, whose empty
/// read-only tmpfs the others share.
#[derive(Default)]
struct Masks {
    dir: Option<PathBuf>,
}

fn one(sys: &mut dyn Sys, step: &Step) -> Result {
    let os = Os;
    match step {
        // Mounts made from here on must not propagate back to the host,
        // nor host mounts into the container (mount_namespaces(7)).
        Step::MakePrivate => sys
            .mount(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
            .map_err(|e| Error::MakePrivate(os(e))),
        // pivot_root(2) needs the new root to be a mount point.
        Step::BindSelf(path) => sys
            .mount(Some(path), path, None, BIND, None)
            .map_err(|e| Error::BindSelf {
                path: path.clone(),
                source: os(e),
            }),
        // The same, through the idmapped copy the launcher made: the tree's
        // ids shown shifted into the container's range.
        Step::AttachTree { fd, path } => sys.attach_tree(*fd, path).map_err(|e| Error::AttachTree {
            path: path.clone(),
            source: os(e),
        }),
        // A procfs of the new PID namespace: only the container's processes.
        Step::MountProc(path) => {
            mount_point(sys, path)?;
            sys.mount(Some(Path::new("proc")), path, Some("proc"), SAFE, None)
                .map_err(|e| Error::Proc {
                    path: path.clone(),
                    source: os(e),
                })
        }
        Step::MaskPath(path) => mask(sys, path, &mut Masks::default()),
        // Visible, but the kernel's knobs under it must not be turned.
        Step::ReadOnly(path) => {
            if sys.kind(path).is_none() {
                return Ok(());
            }
            sys.mount(Some(path), path, None, BIND, None)
                .and_then(|()| sys.set_read_only(path, true))
                .map_err(|e| Error::ReadOnly {
                    path: path.clone(),
                    source: os(e),
                })
        }
        Step::MountSysfs(path) => {
            mount_point(sys, path)?;
            let flags = SAFE | MsFlags::MS_RDONLY;
            sys.mount(Some(Path::new("sysfs")), path, Some("sysfs"), flags, None)
                .map_err(|e| Error::Sysfs {
                    path: path.clone(),
                    source: os(e),
                })
        }
        Step::BindSysRo(path) => {
            mount_point(sys, path)?;
            let host = Path::new("/sys");
            sys.mount(Some(host), path, None, BIND, None)
                .and_then(|()| sys.set_read_only(path, true))
                .map_err(|e| bind_error(host, path, e))
        }
        // A private /dev holding only the nodes below, never the host's disks.
        Step::MountDevTmpfs(path) => {
            mount_point(sys, path)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
            sys.mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                flags,
                Some("mode=755,size=65536k"),
            )
            .map_err(|e| Error::Tmpfs {
                path: path.clone(),
                source: os(e),
            })
        }
        Step::MakeDevNode { path, major, minor } => sys.mknod(path, *major, *minor, 0o666).map_err(|e| Error::Device {
            path: path.clone(),
            source: os(e),
        }),
        // No mknod in a user namespace: borrow the host's node.
        Step::BindDevNode { host, path } => {
            sys.create_file(path).map_err(|e| Error::MountPoint {
                path: path.clone(),
                source: os(e),
            })?;
            sys.mount(Some(host), path, None, MsFlags::MS_BIND, None)
                .map_err(|e| bind_error(host, path, e))
        }
        // A new instance: the container's ptys are its own (devpts(5)).
        Step::MountDevpts { path, gid5 } => {
            mount_point(sys, path)?;
            let mut data = String::from("newinstance,ptmxmode=0666,mode=0620");
            if *gid5 {
                data.push_str(",gid=5");
            }
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
            sys.mount(Some(Path::new("devpts")), path, Some("devpts"), flags, Some(&data))
                .map_err(|e| Error::Devpts {
                    path: path.clone(),
                    source: os(e),
                })
        }
        // POSIX message queues of the new IPC namespace.
        Step::MountMqueue(path) => {
            mount_point(sys, path)?;
            sys.mount(Some(Path::new("mqueue")), path, Some("mqueue"), SAFE, None)
                .map_err(|e| Error::Mqueue {
                    path: path.clone(),
                    source: os(e),
                })
        }
        Step::Symlink { target, link } => sys.symlink(target, link).map_err(|e| Error::Symlink {
            path: link.clone(),
            source: os(e),
        }),
        Step::MountTmpfs { path, mode } => {
            mount_point(sys, path)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            let data = format!("mode={mode:o}");
            sys.mount(Some(Path::new("tmpfs")), path, Some("tmpfs"), flags, Some(&data))
                .map_err(|e| Error::Tmpfs {
                    path: path.clone(),
                    source: os(e),
                })
        }
        Step::Bind { src, dst, ro } => bind(sys, src, dst, None, *ro),
        Step::BindTree { fd, src, dst, ro } => bind(sys, src, dst, Some(*fd), *ro),
        // Only the root mount: /run, /tmp, /dev and the binds stay as they are.
        Step::RemountRo(path) => sys.set_read_only(path, false).map_err(|e| Error::RootReadOnly {
            path: path.clone(),
            source: os(e),
        }),
        // pivot_root(".", "."): the old root ends up stacked on the new one,
        // with no directory to create in the (perhaps read-only) rootfs
        // (pivot_root(2), NOTES).
        Step::PivotRoot(path) => sys
            .chdir(path)
            .and_then(|()| sys.pivot_root(Path::new("."), Path::new(".")))
            .map_err(|e| Error::PivotRoot {
                path: path.clone(),
                source: os(e),
            }),
        // Unmounting "." removes the old root on top; lazily, as our own
        // mounts below keep it busy. Then "/" is the rootfs for sure.
        Step::DetachOldRoot => sys
            .umount_detach(Path::new("."))
            .and_then(|()| sys.chdir(Path::new("/")))
            .map_err(|e| Error::DetachOldRoot(os(e))),
        Step::CreateAs { uid, gid } => sys.set_fs_ids(*uid, *gid).map_err(|e| Error::CreateAs {
            uid: *uid,
            source: os(e),
        }),
        Step::Chown { path, uid, gid } => sys.chown(path, *uid, *gid).map_err(|e| Error::Chown {
            path: path.clone(),
            source: os(e),
        }),
        Step::SetHostname(name) => sys.sethostname(name).map_err(|e| Error::Hostname {
            name: name.clone(),
            source: os(e),
        }),
    }
}

/// Hides a path of /proc or /sys; what does not exist needs no hiding.
fn mask(sys: &mut dyn Sys, path: &Path, masks: &mut Masks) -> Result {
    let result = match (sys.kind(path), &masks.dir) {
        (None, _) => return Ok(()),
        (Some(Kind::File), _) => sys.mount(Some(Path::new("/dev/null")), path, None, MsFlags::MS_BIND, None),
        // A bind of the first: one file system to make, and to take down
        // when the machine ends, rather than one for each (its read-only
        // superblock keeps every bind of it read-only).
        (Some(Kind::Dir), Some(first)) => sys.mount(Some(first), path, None, MsFlags::MS_BIND, None),
        (Some(Kind::Dir), None) => {
            let flags = MsFlags::MS_RDONLY | SAFE;
            let made = sys.mount(Some(Path::new("tmpfs")), path, Some("tmpfs"), flags, Some("size=0"));
            if made.is_ok() {
                masks.dir = Some(path.to_path_buf());
            }
            made
        }
    };
    result.map_err(|e| Error::Mask {
        path: path.to_path_buf(),
        source: Os(e),
    })
}

/// A recursive bind onto a mount point of the source's kind; through the
/// idmapped copy `tree` of the source when there is one.
fn bind(sys: &mut dyn Sys, src: &Path, dst: &Path, tree: Option<i32>, ro: bool) -> Result {
    let made = match sys.kind(src) {
        None => Err(Errno::ENOENT),
        Some(Kind::Dir) => sys.mkdir_all(dst),
        Some(Kind::File) => match sys.kind(dst) {
            Some(_) => Ok(()),
            None => sys.create_file(dst),
        },
    };
    made.and_then(|()| match tree {
        Some(fd) => sys.attach_tree(fd, dst),
        None => sys.mount(Some(src), dst, None, BIND, None),
    })
    .map_err(|e| bind_error(src, dst, e))?;
    if ro {
        // Recursive: a read-only bind of a tree with mounts in it must not
        // leave those writable.
        sys.set_read_only(dst, true).map_err(|e| bind_error(src, dst, e))?;
    }
    Ok(())
}

fn bind_error(src: &Path, dst: &Path, e: Errno) -> Error {
    Error::Bind {
        src: src.to_path_buf(),
        dst: dst.to_path_buf(),
        source: Os(e),
    }
}

/// Creates a directory to mount on when it is missing.
fn mount_point(sys: &mut dyn Sys, path: &Path) -> Result {
    if sys.kind(path) == Some(Kind::Dir) {
        return Ok(());
    }
    sys.mkdir_all(path).map_err(|e| Error::MountPoint {
        path: path.to_path_buf(),
        source: Os(e),
    })
}
