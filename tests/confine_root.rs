//! What a default `tend boot` of the demo gives up, seen from inside with
//! `tend ctl -M NAME exec`: the capabilities (a bounding set from nspawn's
//! default), and that a bad option is refused before anything starts.

mod common;
mod machine;

use std::path::Path;

use machine::*;
use tend::container::caps;

/// The host's bounding set: what a --privileged container keeps.
fn host_bounding() -> u64 {
    status_hex(&std::fs::read_to_string("/proc/self/status").unwrap(), "CapBnd")
}

/// Every capability of this kernel: what PID 1 has in its own user
/// namespace (and so may keep), whatever the host lacks.
fn known() -> u64 {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (1u64 << (last + 1)) - 1
}

#[test]
fn default_capabilities_are_nspawns_root() {
    let demo = Demo::new("caps");
    let m = demo.start("caps", &[]);
    let (code, status, err) = m.exec(&["grep", "Cap", "/proc/self/status"]);
    assert_eq!(code, 0, "{err}");
    let expected = caps::base(false, true) & known();
    let bnd = status_hex(&status, "CapBnd");
    assert_eq!(bnd, expected, "{status}: got {}", caps::names(bnd));
    for set in ["CapEff", "CapPrm", "CapInh"] {
        assert_eq!(
            status_hex(&status, set),
            expected,
            "{set} of root follows the bounding set\n{status}"
        );
    }
    assert_eq!(status_hex(&status, "CapAmb"), 0);
    for name in caps::NEVER_BY_DEFAULT {
        let n = caps::number(name).unwrap();
        assert_eq!(bnd & 1 << n, 0, "{name} kept:\n{status}");
    }
    // PID 1 itself holds the same set.
    let (_, pid1, _) = m.exec(&["grep", "CapBnd", "/proc/1/status"]);
    assert_eq!(status_hex(&pid1, "CapBnd"), expected);
    // The demo's services, confined, still serve.
    let (code, out, err) = m.sh("wget -qO- http://127.0.0.1/");
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn capability_options_add_and_drop_root() {
    let demo = Demo::new("capopts");
    let script = "grep CapBnd /proc/self/status; mknod /tmp/sda b 8 0 && echo MKNOD-OK";
    let mut cmd = demo.boot(
        "capopts",
        &[
            "--capability",
            "CAP_SYS_TIME,cap_kill",
            "--drop-capability",
            "mknod,CAP_KILL",
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
    );
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 1, "mknod fails: {out}{err}");
    let sys_time = 1 << caps::number("sys_time").unwrap();
    let expected = (caps::base(false, true) | sys_time) & !(1 << 27 | 1 << 5) & known();
    assert_eq!(status_hex(&out, "CapBnd"), expected, "{out}");
    assert!(!out.contains("MKNOD-OK"), "{out}");

    // `all` keeps every capability (of the container's user namespace);
    // --privileged, every one the host has.
    for (args, expected) in [
        (&["--capability", "all"][..], known()),
        (&["--privileged"][..], host_bounding()),
    ] {
        let mut all = args.to_vec();
        all.extend(["--", "/bin/grep", "CapBnd", "/proc/self/status"]);
        let (code, out, err) = run(&mut demo.boot("capall", &all));
        assert_eq!(code, 0, "{err}");
        assert_eq!(status_hex(&out, "CapBnd"), expected, "{args:?}: {out}");
    }
}

#[test]
fn an_unknown_capability_is_one_line_and_nothing_started_root() {
    let demo = Demo::new("capbad");
    let before = mountinfo();
    for option in ["--capability", "--drop-capability"] {
        let (code, out, err) = run(&mut demo.boot("capbad", &[option, "CAP_CHOWN,cap_bogus", "--", "/bin/true"]));
        assert_eq!(code, 1, "{out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("tend: unknown capability \"cap_bogus\" in ") && err.contains(option),
            "{err}"
        );
        assert_eq!(mountinfo(), before);
        assert!(!Path::new("/run/tend/machines/capbad.json").exists());
        assert!(!Path::new("/run/tend/machines/capbad.sock").exists());
    }
}

#[test]
fn default_seccomp_filter_root() {
    let demo = Demo::new("seccomp");
    install_probe(&demo.rootfs());
    let m = demo.start("seccomp", &[]);
    let (code, status, err) = m.exec(&["grep", "Seccomp", "/proc/self/status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_field(&status, "Seccomp"), "2", "{status}");
    let (_, pid1, _) = m.exec(&["grep", "Seccomp", "/proc/1/status"]);
    assert_eq!(status_field(&pid1, "Seccomp"), "2", "PID 1 too: {pid1}");
    let (_, nnp, _) = m.exec(&["grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(status_field(&nnp, "NoNewPrivs"), "0", "setuid programs keep working");
    let probes = [
        "keyctl",
        "swapon",
        "bpf",
        "clock-settime",
        "kexec-load",
        "x32-syscall",
        "i386-syscall",
    ];
    let mut args = vec!["probe"];
    args.extend(probes);
    let (code, out, err) = m.exec(&args);
    assert_eq!(code, 0, "{err}");
    let results = probe_results(&out);
    for p in probes {
        assert_eq!(results.get(p), Some(&(false, "EPERM".to_string())), "{p}:\n{out}");
    }
    // What the demo needs still works: httpd, su, ping, a setuid program.
    let (code, out, err) = m.sh("wget -qO- http://127.0.0.1/ | grep -q 'hello from demo' && \
         test \"$(su -s /bin/sh nobody -c 'id -u')\" = 65534 && \
         ping -c 1 -W 2 127.0.0.1 >/dev/null && \
         cp /usr/bin/probe /usr/bin/probe-suid && chmod 4755 /usr/bin/probe-suid && \
         su -s /bin/sh nobody -c 'probe-suid euid' | grep -qx 'euid allowed 0' && echo fine");
    assert_eq!((code, out.trim()), (0, "fine"), "{err}");
}

#[test]
fn seccomp_off_root() {
    let demo = Demo::new("seccompoff");
    install_probe(&demo.rootfs());
    let script = "grep Seccomp: /proc/self/status; probe keyctl";
    let (code, out, err) = run(&mut demo.boot("seccompoff", &["--seccomp=off", "--", "/bin/sh", "-c", script]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert!(probe_results(&out)["keyctl"].0, "keyctl reaches the kernel: {out}");
}
