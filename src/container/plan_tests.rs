//! The order of the steps, rootful and rootless, and what applying them
//! calls, through the recording `Sys`.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::*;
use crate::container::apply::apply;
use crate::container::options::{Bind, Net};
use crate::sys::mount::Kind;
use crate::sys::record::Recorder;

fn options() -> BootOptions {
    BootOptions {
        rootfs: "/r".into(),
        name: "demo".into(),
        hostname: "box".into(),
        ..BootOptions::default()
    }
}

/// The position of the first step matching `f`.
fn pos(steps: &[Step], f: impl Fn(&Step) -> bool) -> usize {
    steps.iter().position(f).expect("step missing")
}

#[test]
fn private_first_pivot_last() {
    let steps = plan(&options());
    assert_eq!(steps[0], Step::MakePrivate);
    assert_eq!(steps[1], Step::BindSelf("/r".into()));
    assert_eq!(steps[2], Step::MountProc("/r/proc".into()));
    let n = steps.len();
    assert_eq!(steps[n - 3], Step::PivotRoot("/r".into()));
    assert_eq!(steps[n - 2], Step::DetachOldRoot);
    assert_eq!(steps[n - 1], Step::SetHostname("box".into()));
}

#[test]
fn api_filesystems_then_binds_then_read_only_root() {
    let mut o = options();
    o.binds = vec![Bind {
        src: "/srv/data".into(),
        dst: "/data".into(),
        ro: true,
        ..Bind::default()
    }];
    o.tmpfs = vec!["/var/cache".into()];
    o.read_only = true;
    let steps = plan(&o);
    let proc = pos(&steps, |s| matches!(s, Step::MountProc(_)));
    let sys = pos(&steps, |s| matches!(s, Step::MountSysfs(_)));
    let mask = pos(&steps, |s| matches!(s, Step::MaskPath(_)));
    let ro_sys = pos(&steps, |s| *s == Step::ReadOnly("/r/proc/sys".into()));
    let dev = pos(&steps, |s| matches!(s, Step::MountDevTmpfs(_)));
    let pts = pos(&steps, |s| matches!(s, Step::MountDevpts { .. }));
    let ptmx = pos(
        &steps,
        |s| matches!(s, Step::Symlink { link, .. } if link.ends_with("ptmx")),
    );
    let run = pos(
        &steps,
        |s| matches!(s, Step::MountTmpfs { path, .. } if path == Path::new("/r/run")),
    );
    let bind = pos(
        &steps,
        |s| matches!(s, Step::Bind { dst, .. } if dst == Path::new("/r/data")),
    );
    let tmpfs = pos(
        &steps,
        |s| matches!(s, Step::MountTmpfs { path, .. } if path.ends_with("var/cache")),
    );
    let root_ro = pos(&steps, |s| *s == Step::RemountRo("/r".into()));
    let pivot = pos(&steps, |s| matches!(s, Step::PivotRoot(_)));
    assert!(proc < sys && sys < mask && mask < ro_sys && ro_sys < dev);
    assert!(dev < pts && pts < ptmx && ptmx < run && run < bind && bind < tmpfs);
    assert!(
        tmpfs < root_ro && root_ro < pivot,
        "every mount point exists before the root turns read-only"
    );
}

#[test]
fn rootful_makes_nodes_rootless_binds_them() {
    let steps = plan(&options());
    assert!(steps.contains(&Step::MakeDevNode {
        path: "/r/dev/null".into(),
        major: 1,
        minor: 3
    }));
    assert!(steps.contains(&Step::MountDevpts {
        path: "/r/dev/pts".into(),
        gid5: true
    }));
    let mut o = options();
    o.userns = true;
    let steps = plan(&o);
    assert!(!steps.iter().any(|s| matches!(s, Step::MakeDevNode { .. })));
    assert!(steps.contains(&Step::BindDevNode {
        host: "/dev/urandom".into(),
        path: "/r/dev/urandom".into()
    }));
    assert!(steps.contains(&Step::MountDevpts {
        path: "/r/dev/pts".into(),
        gid5: false
    }));
    // With its own network namespace, a user namespace may mount sysfs.
    assert!(steps.contains(&Step::MountSysfs("/r/sys".into())));
}

#[test]
fn rootless_with_host_network_binds_sys() {
    let mut o = options();
    o.userns = true;
    o.net = Net::Host;
    let steps = plan(&o);
    assert!(steps.contains(&Step::BindSysRo("/r/sys".into())));
    assert!(!steps.iter().any(|s| matches!(s, Step::MountSysfs(_))));
    // As root, the host network changes nothing.
    o.userns = false;
    assert!(plan(&o).contains(&Step::MountSysfs("/r/sys".into())));
}

#[test]
fn console_units_and_notify_socket_are_bound() {
    let mut o = options();
    o.console = Some("/dev/pts/3".into());
    o.units = Some("/host/units".into());
    o.notify = Notify::Path("/run/bench.sock".into());
    let steps = plan(&o);
    let bound: Vec<(PathBuf, PathBuf, bool)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Bind { src, dst, ro } => Some((src.clone(), dst.clone(), *ro)),
            _ => None,
        })
        .collect();
    assert_eq!(
        bound,
        vec![
            ("/dev/pts/3".into(), "/r/dev/console".into(), false),
            ("/run/bench.sock".into(), "/r/run/host/notify".into(), false),
            ("/host/units".into(), "/r/run/tend/units".into(), true),
        ]
    );
}

#[test]
fn applying_records_the_calls_in_order() {
    let mut o = options();
    o.binds = vec![Bind {
        src: "/srv/data".into(),
        dst: "/data".into(),
        ro: true,
        ..Bind::default()
    }];
    let mut sys = Recorder::permissive();
    apply(&mut sys, &plan(&o)).unwrap();
    let calls = sys.calls;
    assert_eq!(calls[0], "mount - / - rec|private");
    assert_eq!(calls[1], "mount /r /r - bind|rec");
    assert_eq!(calls[2], "mount proc /r/proc proc nosuid|nodev|noexec");
    let find = |prefix: &str| calls.iter().position(|c| c.starts_with(prefix)).unwrap();
    assert!(calls.contains(&"read-only /r/proc/sys rec".to_string()));
    assert!(calls.contains(&"mknod /r/dev/null c 1 3 666".to_string()));
    let bind = find("mount /srv/data /r/data - bind|rec");
    assert_eq!(calls[bind - 1], "mkdir /r/data");
    assert_eq!(calls[bind + 1], "read-only /r/data rec");
    let tail: Vec<&str> = calls[calls.len() - 5..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "chdir /r",
            "pivot_root . .",
            "umount-detach .",
            "chdir /",
            "sethostname box"
        ]
    );
}

/// A step masking each of [`MASKED`] inside `root`.
fn mask_steps(root: &str) -> Vec<Step> {
    MASKED
        .iter()
        .map(|p| Step::MaskPath(under(Path::new(root), Path::new(p))))
        .collect()
}

#[test]
fn masks_skip_what_does_not_exist() {
    let mut sys = Recorder::default();
    sys.paths.insert("/r/proc/kcore".into(), Kind::File);
    sys.paths.insert("/r/proc/acpi".into(), Kind::Dir);
    let steps = mask_steps("/r");
    apply(&mut sys, &steps).unwrap();
    assert_eq!(
        sys.calls,
        [
            "mount tmpfs /r/proc/acpi tmpfs rdonly|nosuid|nodev|noexec size=0",
            "mount /dev/null /r/proc/kcore - bind",
        ]
    );
}

#[test]
fn masked_directories_share_one_empty_file_system() {
    let mut sys = Recorder::default();
    sys.paths.insert("/r/proc/acpi".into(), Kind::Dir);
    sys.paths.insert("/r/sys/firmware".into(), Kind::Dir);
    let steps = mask_steps("/r");
    apply(&mut sys, &steps).unwrap();
    assert_eq!(
        sys.calls,
        [
            "mount tmpfs /r/proc/acpi tmpfs rdonly|nosuid|nodev|noexec size=0",
            "mount /r/proc/acpi /r/sys/firmware - bind",
        ]
    );
}

#[test]
fn a_failed_step_names_itself_and_its_paths() {
    let mut o = options();
    o.binds = vec![Bind {
        src: "/x".into(),
        dst: "/y".into(),
        ro: false,
        ..Bind::default()
    }];
    let mut sys = Recorder::permissive();
    sys.fail = Some(("mount /x".into(), Errno::ENOENT));
    let e = apply(&mut sys, &plan(&o)).unwrap_err();
    let text = crate::sys::chain(&e);
    assert_eq!(text, "cannot bind /x onto /r/y: No such file or directory");
    assert!(
        !sys.calls.iter().any(|c| c.starts_with("pivot_root")),
        "nothing after the failure"
    );

    let mut sys = Recorder::permissive();
    sys.fail = Some(("mount proc".into(), Errno::EPERM));
    let e = apply(&mut sys, &plan(&options())).unwrap_err();
    assert_eq!(
        crate::sys::chain(&e),
        "cannot mount proc on /r/proc: Operation not permitted"
    );
}

#[test]
fn own_id_range_attaches_the_idmapped_root_and_creates_as_its_root() {
    let mut o = options();
    o.userns = true;
    o.id_range = Some(crate::container::userns::Range {
        start: 524288,
        count: 65536,
    });
    o.idmapped_root = Some(9);
    let steps = plan(&o);
    assert_eq!(
        steps[1],
        Step::AttachTree {
            fd: 9,
            path: "/r".into()
        }
    );
    assert_eq!(
        steps[2],
        Step::CreateAs {
            uid: 524288,
            gid: 524288
        },
        "before any mount point is made on the idmapped tree"
    );
    for dir in ["/r/run", "/r/tmp", "/r/dev", "/r/dev/shm"] {
        let chown = Step::Chown {
            path: dir.into(),
            uid: 524288,
            gid: 524288,
        };
        assert!(steps.contains(&chown), "{dir} is the container root's");
    }
    o.id_range = None;
    o.idmapped_root = None;
    assert!(!plan(&o)
        .iter()
        .any(|s| matches!(s, Step::CreateAs { .. } | Step::Chown { .. })));
}
