//! The escape suite: tests/escape/probe.c run inside a default rootful
//! `tend boot` of the demo rootfs. Every probe must be refused there, the
//! host must be left as it was, files made inside must belong on the host to
//! the tree's owner, and the demo's services must still work.
//! `benches/escape` runs the same probes under systemd-nspawn and
//! `tend boot --privileged` for the README's table.

mod common;
mod machine;

use std::os::unix::fs::MetadataExt;

use common::{await_true, machine_cgroups};
use machine::*;

/// Every probe of the issue, in the probe program's names.
pub const PROBES: &[&str] = &[
    "mknod-block",
    "mount-proc",
    "mount-sysfs",
    "remount-sys-rw",
    "remount-proc-sys-rw",
    "umount-kcore",
    "umount-sysrq",
    "umount-proc-keys",
    "umount-proc-sys",
    "init-module",
    "finit-module",
    "clock-settime",
    "open-by-handle",
    "keyctl",
    "bpf",
    "kexec-load",
    "swapon",
    "sysrq-trigger",
    "userns-mount",
    "ptrace-outside",
    "write-pid1-exe",
    "x32-syscall",
    "i386-syscall",
];

#[test]
fn every_probe_is_refused_by_default_root() {
    let demo = Demo::new("escape");
    install_probe(&demo.rootfs());
    let user = demo.dir.path("shared");
    std::fs::create_dir(&user).unwrap();
    std::os::unix::fs::chown(&user, Some(4242), Some(4343)).unwrap();
    let bind = format!("{}:/shared", user.display());
    let before = mountinfo();
    let m = demo.start("escape", &["--bind", &bind]);
    let (_, launcher) = await_entry("escape");

    let ptrace = format!("ptrace-outside={launcher}");
    let mut args = vec!["probe"];
    args.extend(
        PROBES
            .iter()
            .map(|p| if *p == "ptrace-outside" { ptrace.as_str() } else { p }),
    );
    let (code, out, err) = m.exec(&args);
    assert_eq!(code, 0, "{err}");
    let results = probe_results(&out);
    for probe in PROBES {
        match results.get(*probe) {
            Some((false, _)) => {}
            other => panic!("{probe}: {other:?}\n{out}"),
        }
    }

    // PID 1 runs the host's binary: root inside can neither read its path
    // nor open it, nor read PID 1's environment or descriptors.
    let (_, out, _) = m.sh(
        "readlink /proc/1/exe || echo no-exe; head -c 1 /proc/1/exe >/dev/null 2>&1 || echo no-open; \
         cat /proc/1/environ >/dev/null 2>&1 || echo no-environ; ls /proc/1/fd >/dev/null 2>&1 || echo no-fds",
    );
    assert_eq!(out, "no-exe\nno-open\nno-environ\nno-fds\n");

    // Made by root inside: the tree's owner's, the bind's owner's on the host.
    let (code, _, err) = m.sh("touch /escape-made /shared/escape-made");
    assert_eq!(code, 0, "{err}");
    let made = std::fs::metadata(demo.rootfs().join("escape-made")).unwrap();
    let tree = std::fs::metadata(demo.rootfs()).unwrap();
    assert_eq!((made.uid(), made.gid()), (tree.uid(), tree.gid()));
    let shared = std::fs::metadata(user.join("escape-made")).unwrap();
    assert_eq!((shared.uid(), shared.gid()), (4242, 4343), "never host root");

    // The demo still works: httpd on port 80, ping, su, a setuid program.
    let (code, out, err) = m.sh(
        "wget -qO- http://127.0.0.1:80/ | grep -q 'hello from demo' && echo httpd; \
         ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping; \
         test \"$(su -s /bin/sh nobody -c 'id -u')\" = 65534 && echo su; \
         cp /usr/bin/probe /usr/bin/probe-suid && chmod 4755 /usr/bin/probe-suid && \
         su -s /bin/sh nobody -c 'probe-suid euid' | grep -qx 'euid allowed 0' && echo setuid",
    );
    assert_eq!(out, "httpd\nping\nsu\nsetuid\n", "{code} {err}");

    drop(m);
    assert_eq!(mountinfo(), before, "the host's mounts are as they were");
    assert!(!std::path::Path::new("/dev/.probe-disk").exists());
}

/// Its device program's cgroup: in v2 (`unified` on this hybrid host),
/// which PID 1 is cloned into.
fn device_cgroups(name: &str) -> Vec<String> {
    machine_cgroups(&["unified"], name)
}

#[test]
fn privileged_reaches_only_the_nodes_of_dev_root() {
    let demo = Demo::new("escape-priv");
    install_probe(&demo.rootfs());
    // A host disk's node already in the tree: opening it is refused too.
    let disk = demo.rootfs().join("host-disk");
    nix::sys::stat::mknod(
        &disk,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(8, 0),
    )
    .unwrap();
    let m = demo.start("escpriv", &["--privileged", "--", "/bin/sleep", "600"]);
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", m.pid1())).unwrap();
    let line = cgroup.lines().find(|l| l.starts_with("0::")).unwrap();
    assert!(
        line.contains("/tend-boot-escpriv-") && line.ends_with("/machine"),
        "a device program's cgroup: {cgroup}"
    );
    assert!(
        machine_cgroups(&["devices"], "escpriv").is_empty(),
        "no v1 devices cgroup"
    );
    // Made before the clone, but PID 1 keeps no descriptor of them: from
    // one, `openat(fd, "..")` would reach the cgroup holding the program.
    let held: Vec<String> = fd_targets(m.pid1())
        .into_iter()
        .filter(|l| l.contains("cgroup"))
        .collect();
    assert_eq!(held, Vec::<String>::new(), "PID 1's descriptors of host cgroups");

    let (code, out, err) = m.exec(&["probe", "mknod-block"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        probe_results(&out).get("mknod-block").map(|r| r.0),
        Some(false),
        "{out}"
    );
    let (_, out, err) = m.sh(
        "head -c 1 /host-disk; echo open=$?; mknod /tmp/sda b 8 0; echo mknod=$?; \
         echo x >/dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && \
         exec 3<>/dev/ptmx && echo nodes-ok",
    );
    assert_eq!(out, "open=1\nmknod=1\n4\n4\nnodes-ok\n", "{err}");
    assert_eq!(err.matches("Operation not permitted").count(), 2, "{err}");
    // Root inside cannot allow itself more: its cgroup's parent says no.
    let (_, out, _) = m.sh("mkdir -p /tmp/cg && mount -t cgroup -o devices none /tmp/cg && echo a > /tmp/cg/devices.allow; head -c 1 /host-disk >/dev/null && echo opened");
    assert!(!out.contains("opened"), "{out}");

    drop(m);
    assert_eq!(
        device_cgroups("escpriv"),
        Vec::<String>::new(),
        "removed with the machine"
    );

    // A killed launcher's is swept by the next --privileged boot (here, in
    // the same test: the others of this file would sweep it too).
    let entry = |ext: &str| format!("/run/tend/machines/escsweep.{ext}");
    let forget = || {
        for ext in ["json", "sock"] {
            let _ = std::fs::remove_file(entry(ext));
        }
    };
    forget();
    let mut m = demo.start("escsweep", &["--privileged", "--", "/bin/sleep", "600"]);
    let pid1 = m.pid1();
    // The other tests' boots would sweep it as soon as it is empty: until
    // it is seen left, hold their sweeps off (a sweep takes the lock of
    // the cgroup the `tend-*` are in alone, a tend's claim shares it).
    let sweeps_held = hold_sweeps("/sys/fs/cgroup/unified");
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    // What the dead launcher could not remove.
    forget();
    await_true("PID 1 gone with its launcher", LIMIT, || {
        !std::path::Path::new(&format!("/proc/{pid1}")).exists()
    });
    let left = device_cgroups("escsweep");
    assert_eq!(left.len(), 1, "{left:?}");
    let procs = format!("{}/machine/cgroup.procs", left[0]);
    await_true("the cgroup empty", LIMIT, || {
        std::fs::read_to_string(&procs).is_ok_and(|p| p.trim().is_empty())
    });
    drop(sweeps_held);
    let (code, out, err) = run(&mut demo.boot("escsweep2", &["--privileged", "--", "/bin/true"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(device_cgroups("escsweep"), Vec::<String>::new());
    assert_eq!(device_cgroups("escsweep2"), Vec::<String>::new());
}

/// `dir`'s lock, shared: no tend sweeps the `tend-*` in it while it is
/// held.
fn hold_sweeps(dir: &str) -> nix::fcntl::Flock<std::fs::File> {
    let file = std::fs::File::open(dir).unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared).unwrap()
}

/// `tend boot ROOTFS --name NAME ARGS...` in a mount namespace of its own
/// where the cgroup hierarchies `hide` are read-only (as for a tend in a
/// container, or, for v1 `devices`, on a pure cgroup v2 host).
fn boot_with_read_only(demo: &Demo, hide: &[&str], name: &str, args: &[&str]) -> (i32, String, String) {
    let remounts: Vec<String> = hide
        .iter()
        .map(|h| format!("mount -o remount,bind,ro /sys/fs/cgroup/{h} && "))
        .collect();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("{}exec \"$@\"", remounts.concat()))
        .arg("sh")
        .arg(common::tend())
        .arg("boot")
        .arg(demo.rootfs())
        .args(["--name", name])
        .args(args)
        .env_remove("TEND_LOG");
    run(&mut cmd)
}

#[test]
fn privileged_without_cgroup_v2_gets_a_devices_cgroup_root() {
    // Where no v2 hierarchy takes a device program (here: read-only), v1's
    // devices controller, which PID 1 joins (with or without the cgroup
    // --memory made).
    let demo = Demo::new("escape-v1");
    let disk = demo.rootfs().join("host-disk");
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
    nix::sys::stat::mknod(
        &disk,
        nix::sys::stat::SFlag::S_IFBLK,
        mode,
        nix::sys::stat::makedev(8, 0),
    )
    .unwrap();
    let script = "head -c 1 /host-disk; echo open=$?; mknod /tmp/sda b 8 0; echo mknod=$?; \
                  echo x >/dev/null && head -c 4 /dev/urandom | wc -c && exec 3<>/dev/ptmx && echo nodes-ok";
    for extra in [&[][..], &["--memory", "256M"][..]] {
        let mut args = vec!["--privileged"];
        args.extend(extra);
        args.extend(["--", "/bin/sh", "-c", script]);
        let (code, out, err) = boot_with_read_only(&demo, &["unified"], "escv1", &args);
        assert_eq!(code, 0, "{extra:?}: {out}{err}");
        assert_eq!(out, "open=1\nmknod=1\n4\nnodes-ok\n", "{extra:?}: {err}");
        assert_eq!(err.matches("Operation not permitted").count(), 2, "{extra:?}: {err}");
        assert!(!err.contains("not restricted"), "{err}");
        assert!(
            machine_cgroups(&["devices"], "escv1").is_empty(),
            "removed with the machine"
        );
        assert!(machine_cgroups(&["unified"], "escv1").is_empty(), "none made in v2");
    }
}

#[test]
fn pid1_dies_with_a_launcher_killed_before_it_asked_root() {
    // PID 1 asks for SIGKILL at its launcher's death first thing, but a new
    // task may first run after its launcher has written the registry entry
    // and been killed: then no signal comes. strace holds that first
    // prctl back 2 s while the launcher is killed; PID 1 must end anyway.
    let demo = Demo::new("escape-orphan");
    let boot = demo.boot("escorphan", &["--privileged", "--", "/bin/sleep", "600"]);
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=prctl"])
        .args(["-e", "inject=prctl:delay_enter=2000000:when=1"])
        .arg(boot.get_program())
        .args(boot.get_args())
        .env_remove("TEND_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut strace = cmd.spawn().unwrap();
    let (pid1, launcher) = await_entry("escorphan");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(launcher as i32), nix::sys::signal::SIGKILL).unwrap();
    await_true("PID 1 gone with its launcher", LIMIT, || {
        !std::path::Path::new(&format!("/proc/{pid1}")).exists()
    });
    strace.wait().unwrap();
    // What the dead launcher could not remove: its entry, and its cgroup,
    // which the next --privileged boot sweeps.
    for ext in ["json", "sock"] {
        let _ = std::fs::remove_file(format!("/run/tend/machines/escorphan.{ext}"));
    }
    let (code, out, err) = run(&mut demo.boot("escorphan2", &["--privileged", "--", "/bin/true"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(device_cgroups("escorphan"), Vec::<String>::new());
}

#[test]
fn privileged_where_bpf_is_refused_joins_v1_devices_root() {
    // The device program is attached after the clone, while PID 1 mounts
    // its root: where bpf(2) is refused then (a seccomp filter here), PID 1
    // is moved into v1's devices controller before it goes on, and the v2
    // cgroup it was cloned into goes with the machine.
    use std::os::unix::process::CommandExt;
    let demo = Demo::new("escape-nobpf");
    let disk = demo.rootfs().join("host-disk");
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
    let blk = nix::sys::stat::SFlag::S_IFBLK;
    nix::sys::stat::mknod(&disk, blk, mode, nix::sys::stat::makedev(8, 0)).unwrap();
    let filter = seccompiler::SeccompFilter::new(
        [(libc::SYS_bpf, vec![])].into_iter().collect(),
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::EPERM as u32),
        std::env::consts::ARCH.try_into().unwrap(),
    )
    .unwrap();
    let program: seccompiler::BpfProgram = filter.try_into().unwrap();
    let script = "head -c 1 /host-disk; echo open=$?; mknod /tmp/sda b 8 0; echo mknod=$?; \
                  echo x >/dev/null && head -c 4 /dev/urandom | wc -c && exec 3<>/dev/ptmx && echo nodes-ok";
    let mut cmd = demo.boot("escnobpf", &["--privileged", "--", "/bin/sh", "-c", script]);
    // SAFETY: prctl and seccomp(2) only, on a program built before the fork.
    unsafe {
        cmd.pre_exec(move || seccompiler::apply_filter(&program).map_err(std::io::Error::other));
    }
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "open=1\nmknod=1\n4\nnodes-ok\n", "{err}");
    assert_eq!(err.matches("Operation not permitted").count(), 2, "{err}");
    assert!(!err.contains("not restricted"), "{err}");
    assert!(
        machine_cgroups(&["devices"], "escnobpf").is_empty(),
        "removed with the machine"
    );
    assert!(device_cgroups("escnobpf").is_empty(), "removed with the machine");
}

#[test]
fn privileged_without_a_writable_devices_cgroup_says_so_root() {
    // As tend in a container whose cgroups are read-only: one warning line.
    let demo = Demo::new("escape-ro");
    let args = ["--privileged", "--", "/bin/true"];
    let (code, out, err) = boot_with_read_only(&demo, &["devices", "unified"], "escro", &args);
    assert_eq!(code, 0, "{out}{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("device access is not restricted"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
}

#[test]
fn pid1_keeps_nothing_its_caller_left_open_root() {
    // A descriptor the caller of `tend boot` left open (here a host file at
    // fd 7) would be PID 1's too: it is a clone of the launcher.
    use std::os::unix::process::CommandExt;
    let demo = Demo::new("escape-fds");
    let host = std::fs::File::open("/etc/hostname").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&host);
    let mut cmd = demo.boot("escfds", &["--", "/bin/sleep", "600"]);
    // SAFETY: dup2 is async-signal-safe; `raw` stays open until the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = Machine {
        name: "escfds".into(),
        child,
    };
    let links = fd_targets(m.pid1());
    assert!(!links.iter().any(|l| l == "/etc/hostname"), "{links:?}");
}

/// What each open descriptor of process `pid` names.
fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect()
}
