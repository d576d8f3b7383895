//! The mount and hostname steps of a boot, as data, in the order they must
//! run (pure: no call, no file read). [`super::apply`] carries them out.
//!
//! The order follows runc and systemd-nspawn: make the tree private first so
//! nothing propagates back to the host; bind the rootfs onto itself so it
//! is a mount point pivot_root accepts; mount the API file systems inside
//! it; the user's binds last, so they may cover anything above; the root
//! read-only after every mount point is created; pivot_root and detach the
//! old root so no host path stays reachable.

use std::path::{Path, PathBuf};

use super::options::{BootOptions, Notify, NOTIFY_INSIDE, UNITS_INSIDE};

/// One step. Paths are as seen before pivot_root (inside the rootfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every mount of the tree private, recursively.
    MakePrivate,
    /// The rootfs bound onto itself, recursively.
    BindSelf(PathBuf),
    /// A fresh procfs of the new PID namespace.
    MountProc(PathBuf),
    /// Hidden: /dev/null over a file, an empty read-only tmpfs over a
    /// directory; skipped when the path does not exist.
    MaskPath(PathBuf),
    /// Bound onto itself read-only; skipped when the path does not exist.
    ReadOnly(PathBuf),
    /// A fresh sysfs, read-only (needs a network namespace we own).
    MountSysfs(PathBuf),
    /// The host's /sys bound read-only, recursively (a user namespace
    /// sharing the host's network may not mount sysfs).
    BindSysRo(PathBuf),
    /// A tmpfs for /dev.
    MountDevTmpfs(PathBuf),
    /// mknod of a character device.
    MakeDevNode {
        path: PathBuf,
        major: u64,
        minor: u64,
    },
    /// The host's node bound onto an empty file (no mknod in a user namespace).
    BindDevNode {
        host: PathBuf,
        path: PathBuf,
    },
    /// A new devpts instance; `gid5` sets the tty group.
    MountDevpts {
        path: PathBuf,
        gid5: bool,
    },
    MountMqueue(PathBuf),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    MountTmpfs {
        path: PathBuf,
        mode: u32,
    },
    /// A recursive bind; the mount point (directory or file, as the source)
    /// is created; `ro` makes every mount of it read-only.
    Bind {
        src: PathBuf,
        dst: PathBuf,
        ro: bool,
    },
    /// The root mount (only it) read-only: `--read-only`.
    RemountRo(PathBuf),
    /// pivot_root into the rootfs, the old root stacked on top.
    PivotRoot(PathBuf),
    /// The old root unmounted (lazily) so nothing of the host stays.
    DetachOldRoot,
    SetHostname(String),
}

/// Files of /proc hidden as Docker and runc hide them.
pub const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Parts of /proc left visible but read-only.
pub const READ_ONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The character devices of /dev: name, major, minor (all mode 0666).
pub const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// `/dev` links: name to target.
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// `/x/y` below `root`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The steps, in order, for these options.
pub fn plan(o: &BootOptions) -> Vec<Step> {
    let root = &o.rootfs;
    let at = |p: &str| under(root, Path::new(p));
    let mut steps = vec![Step::MakePrivate, Step::BindSelf(root.clone())];

    steps.push(Step::MountProc(at("/proc")));
    // sysfs before the masks: /sys/firmware is masked on it.
    if o.userns && !o.net.is_new() {
        steps.push(Step::BindSysRo(at("/sys")));
    } else {
        steps.push(Step::MountSysfs(at("/sys")));
    }
    steps.extend(MASKED.iter().map(|p| Step::MaskPath(at(p))));
    steps.extend(READ_ONLY.iter().map(|p| Step::ReadOnly(at(p))));

    dev(o, &mut steps);

    steps.push(Step::MountTmpfs {
        path: at("/run"),
        mode: 0o755,
    });
    steps.push(Step::MountTmpfs {
        path: at("/tmp"),
        mode: 0o1777,
    });
    if let Notify::Path(socket) = &o.notify {
        steps.push(Step::Bind {
            src: socket.clone(),
            dst: at(NOTIFY_INSIDE),
            ro: false,
        });
    }
    if let Some(units) = &o.units {
        steps.push(Step::Bind {
            src: units.clone(),
            dst: at(UNITS_INSIDE),
            ro: true,
        });
    }
    for bind in &o.binds {
        steps.push(Step::Bind {
            src: bind.src.clone(),
            dst: under(root, &bind.dst),
            ro: bind.ro,
        });
    }
    for path in &o.tmpfs {
        steps.push(Step::MountTmpfs {
            path: under(root, path),
            mode: 0o755,
        });
    }
    if o.read_only {
        steps.push(Step::RemountRo(root.clone()));
    }
    steps.push(Step::PivotRoot(root.clone()));
    steps.push(Step::DetachOldRoot);
    steps.push(Step::SetHostname(o.hostname.clone()));
    steps
}

/// /dev: a tmpfs, the nodes, devpts, shm, mqueue, the links, the console.
fn dev(o: &BootOptions, steps: &mut Vec<Step>) {
    let dev = under(&o.rootfs, Path::new("/dev"));
    steps.push(Step::MountDevTmpfs(dev.clone()));
    for &(name, major, minor) in DEVICES {
        let path = dev.join(name);
        steps.push(if o.userns {
            Step::BindDevNode {
                host: Path::new("/dev").join(name),
                path,
            }
        } else {
            Step::MakeDevNode { path, major, minor }
        });
    }
    steps.push(Step::MountDevpts {
        path: dev.join("pts"),
        gid5: !o.userns,
    });
    steps.push(Step::MountTmpfs {
        path: dev.join("shm"),
        mode: 0o1777,
    });
    steps.push(Step::MountMqueue(dev.join("mqueue")));
    for &(name, target) in DEV_LINKS {
        steps.push(Step::Symlink {
            target: target.into(),
            link: dev.join(name),
        });
    }
    if let Some(tty) = &o.console {
        steps.push(Step::Bind {
            src: tty.clone(),
            dst: dev.join("console"),
            ro: false,
        });
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
