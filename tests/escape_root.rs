//! The escape suite: tests/escape/probe.c run inside a default rootful
//! `tend boot` of the demo rootfs. Every probe must be refused there, the
//! host must be left as it was, files made inside must belong on the host to
//! the tree's owner, and the demo's services must still work.
//! `benches/escape` runs the same probes under systemd-nspawn and
//! `tend boot --privileged` for the README's table.

mod common;
mod machine;

use std::os::unix::fs::MetadataExt;

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
