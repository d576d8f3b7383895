//! The user namespace of a default rootful boot: its id range (picked from
//! the pool, claimed in the registry, shown by `tend list`, released at
//! the end), the idmapped rootfs and binds (ownership on the host), and
//! the bad inputs around it.

mod common;
mod machine;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use machine::*;
use tend::container::userns;

const CLAIMS: &str = "/run/tend/machines/userns";

/// The uid_map line of a process inside: (inside, outside, count).
fn uid_map(m: &Machine) -> (u32, u32, u32) {
    let (code, out, err) = m.exec(&["cat", "/proc/self/uid_map"]);
    assert_eq!(code, 0, "{err}");
    let f: Vec<u32> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    (f[0], f[1], f[2])
}

fn claims_of(range_start: u32) -> bool {
    std::fs::read_dir(CLAIMS)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&format!("{range_start}-")))
        })
        .unwrap_or(false)
}

#[test]
fn root_inside_is_a_picked_range_outside_root() {
    let demo = Demo::new("userns");
    let user = demo.dir.path("shared");
    std::fs::create_dir(&user).unwrap();
    std::os::unix::fs::chown(&user, Some(4242), Some(4343)).unwrap();
    let bind = format!("{}:/shared", user.display());
    let m = demo.start("userns", &["--bind", &bind]);
    let (inside, start, count) = uid_map(&m);
    assert_eq!((inside, count), (0, 65536));
    assert!(
        (userns::POOL_START..userns::POOL_END).contains(&start) && start % 65536 == 0,
        "{start}"
    );
    // Recorded, listed, claimed.
    let entry = std::fs::read_to_string("/run/tend/machines/userns.json").unwrap();
    assert!(entry.contains(&format!("\"start\":{start}")), "{entry}");
    let list = output(Command::new(tend()).arg("list"));
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(&format!("{start}:65536")), "{listed}");
    assert!(claims_of(start));
    // The host's processes of the container run as the range, not as root.
    let pid1 = m.pid1();
    let status = std::fs::read_to_string(format!("/proc/{pid1}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid"), start.to_string(), "{status}");
    // The tree keeps its ownership on disk and is root's inside.
    let (code, out, err) = m.sh("stat -c %u:%g /etc/passwd; touch /made-inside /shared/made; stat -c %u /shared");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0:0\n0\n", "root-owned inside; the bind's owner is root inside");
    let made = std::fs::metadata(demo.rootfs().join("made-inside")).unwrap();
    let owner = std::fs::metadata(demo.rootfs()).unwrap();
    assert_eq!(
        (made.uid(), made.gid()),
        (owner.uid(), owner.gid()),
        "the rootfs's owner"
    );
    let shared = std::fs::metadata(user.join("made")).unwrap();
    assert_eq!(
        (shared.uid(), shared.gid()),
        (4242, 4343),
        "the bind's owner, never host root"
    );
    drop(m);
    assert!(!claims_of(start), "released with the machine");
}

#[test]
fn two_machines_never_share_ids_and_a_named_range_is_checked() {
    let demo = Demo::new("userns2");
    let a = demo.start("usa", &["--", "/bin/sleep", "60"]);
    let b = demo.start("usb", &["--", "/bin/sleep", "60"]);
    let (_, start_a, _) = uid_map(&a);
    let (_, start_b, _) = uid_map(&b);
    assert_ne!(start_a, start_b);

    // A range overlapping a's: one line, nothing started.
    let before = mountinfo();
    let range = format!("--userns={}:10", start_a + 100);
    let (code, out, err) = run(&mut demo.boot("usc", &[&range, "--", "/bin/true"]));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("overlaps the ids of machine usa"), "{err}");
    assert_eq!(mountinfo(), before);
    assert!(!Path::new("/run/tend/machines/usc.json").exists());
    assert!(!Path::new("/run/tend/machines/usc.sock").exists());

    // A free one is used as named.
    let free = userns::POOL_END + 65536;
    let range = format!("--userns={free}:65536");
    let (code, out, err) = run(&mut demo.boot("usd", &[&range, "--", "/bin/cat", "/proc/self/uid_map"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", &free.to_string(), "65536"]
    );
    assert!(!claims_of(free));
}

#[test]
fn bad_userns_options_are_one_line_root() {
    let demo = Demo::new("userns-bad");
    let before = mountinfo();
    for (args, text) in [
        (&["--userns=0:65536"][..], "host root is never mapped"),
        (&["--userns=4294967295:2"][..], "beyond the host's ids"),
        (&["--userns=12"][..], "expected START:COUNT"),
        (
            &["--userns", "--privileged"][..],
            "--userns cannot be combined with --privileged",
        ),
        (&["--userns=524288:65536", "--privileged"][..], "cannot be combined"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--", "/bin/true"]);
        let (code, out, err) = run(&mut demo.boot("usbad", &all));
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("tend: ") && err.contains(text), "{args:?}: {err}");
        assert_eq!(mountinfo(), before);
    }
}

#[test]
fn privileged_is_host_root_with_one_warning_root() {
    let demo = Demo::new("userns-priv");
    let (code, out, err) = run(&mut demo.boot("uspriv", &["--privileged", "--", "/bin/cat", "/proc/self/uid_map"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0", "4294967295"]);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("--privileged")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("container root is host root"), "{err}");
}

#[test]
fn a_rootfs_below_a_private_directory_boots_root() {
    // As /var/lib/machines (0700): the child makes its mount points as the
    // container's root, yet must reach the tree as host root.
    let demo = Demo::new("userns-private");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&demo.dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, out, err) = run(&mut demo.boot("usprivate", &["--tmpfs", "/new/cache", "--", "/bin/true"]));
    assert_eq!(code, 0, "{out}{err}");
    let made = std::fs::metadata(demo.rootfs().join("new/cache")).unwrap();
    assert_eq!(made.uid(), 0, "made as the container's root: the tree's owner on disk");
    assert!(!err.contains("reachable"), "{err}");
    // Reachable by every host user: one warning line.
    std::fs::set_permissions(&demo.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, err) = run(&mut demo.boot("usprivate", &["--", "/bin/true"]));
    assert_eq!(code, 0, "{err}");
    let warning = format!("rootfs {} is reachable by other host users", demo.rootfs().display());
    assert_eq!(err.lines().filter(|l| l.contains(&warning)).count(), 1, "{err}");
}

#[test]
fn a_rootfs_that_cannot_be_idmapped_is_one_line_root() {
    // sysfs cannot be idmapped.
    let before = mountinfo();
    let mut cmd = Command::new(tend());
    cmd.args(["boot", "/sys/kernel", "--name", "usnoidmap", "--", "/bin/true"]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 1, "{out}{err}");
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("cannot mount the rootfs /sys/kernel idmapped") && errors[0].contains("--privileged"),
        "{err}"
    );
    assert_eq!(mountinfo(), before);
    assert!(!Path::new("/run/tend/machines/usnoidmap.json").exists());
    assert!(!Path::new("/run/tend/machines/usnoidmap.sock").exists());
    // The last release removes the directory of claims: then none is left.
    let ours = std::fs::read_dir(CLAIMS)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(" usnoidmap")))
        .count();
    assert_eq!(ours, 0, "its id range is released");
}

/// A private mount namespace, held by a sleeping process: what a test
/// mounts there leaves the host's mounts as they are for the tests beside
/// it, and goes with the holder.
struct Private {
    holder: std::process::Child,
}

impl Private {
    fn new() -> Private {
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "600"])
            .spawn()
            .unwrap();
        let private = Private { holder };
        await_true("the holder's mount namespace", LIMIT, || {
            let ns = |pid: String| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
            ns(private.holder.id().to_string()) != ns("self".into())
        });
        private
    }

    /// `PROGRAM` in the holder's mount namespace.
    fn inside(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-m", program]);
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("TEND_LOG");
        cmd
    }

    /// `tend boot ROOTFS --name NAME ARGS...` in there.
    fn boot(&self, rootfs: &Path, name: &str, args: &[&str]) -> Command {
        let mut cmd = self.inside(tend().to_str().unwrap());
        cmd.arg("boot").arg(rootfs).args(["--name", name]).args(args);
        cmd
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A demo rootfs on a ramfs, which cannot be idmapped, at `dir` in a
/// private mount namespace.
struct Ramfs {
    private: Private,
    dir: std::path::PathBuf,
}

impl Ramfs {
    fn new(dir: &Path) -> Ramfs {
        std::fs::create_dir_all(dir).unwrap();
        let private = Private::new();
        let (code, _, err) = run(private
            .inside("mount")
            .args(["-t", "ramfs", "-o", "mode=700", "none"])
            .arg(dir));
        assert_eq!(code, 0, "{err}");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
        let (code, _, err) = run(private.inside(script.to_str().unwrap()).arg(dir.join("rootfs")));
        assert_eq!(code, 0, "{err}");
        Ramfs {
            private,
            dir: dir.to_path_buf(),
        }
    }

    /// A path of the rootfs as the host sees it.
    fn host(&self, path: &str) -> std::path::PathBuf {
        let inner = self.dir.join("rootfs").join(path.trim_start_matches('/'));
        Path::new(&format!("/proc/{}/root", self.private.holder.id())).join(inner.strip_prefix("/").unwrap())
    }

    fn boot(&self, name: &str, args: &[&str]) -> Command {
        self.private.boot(&self.dir.join("rootfs"), name, args)
    }
}

fn owner(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[test]
fn userns_chown_shifts_a_tree_that_cannot_be_idmapped_once_root() {
    let scratch = TempDir::new("userns-chown");
    let fs = Ramfs::new(&scratch.path("ramfs"));
    // A setuid file and one of an ordinary user, as a rootfs has them.
    std::fs::write(fs.host("/usr/bin/suid"), "").unwrap();
    std::os::unix::fs::chown(fs.host("/usr/bin/suid"), Some(0), Some(0)).unwrap();
    std::fs::set_permissions(
        fs.host("/usr/bin/suid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    std::fs::create_dir(fs.host("/home")).unwrap();
    std::fs::write(fs.host("/home/user"), "").unwrap();
    std::os::unix::fs::lchown(fs.host("/home/user"), Some(1000), Some(100)).unwrap();
    // Another file system inside the tree: not walked into.
    std::fs::create_dir_all(fs.host("/mnt/other")).unwrap();
    let other = fs.dir.join("rootfs/mnt/other");
    let (code, _, err) = run(fs.private.inside("mount").args(["-t", "tmpfs", "none"]).arg(&other));
    assert_eq!(code, 0, "{err}");
    std::fs::write(fs.host("/mnt/other/file"), "").unwrap();

    // Without the option: one line naming both ways out.
    let (code, out, err) = run(&mut fs.boot("uschown", &["--", "/bin/true"]));
    assert_eq!(code, 1, "{out}{err}");
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("idmapped") && errors[0].contains("--userns-chown") && errors[0].contains("--privileged"),
        "{err}"
    );
    assert_eq!(owner(&fs.host("/etc/passwd")).0, 0, "nothing chowned");

    // Chowned into the range: root's inside as before, START+X on the host.
    let script = "head -n 1 /proc/self/uid_map; stat -c '%u:%g:%a' /etc/passwd /home/user /usr/bin/suid /";
    let (code, out, err) = run(&mut fs.boot("uschown", &["--userns-chown", "--", "/bin/sh", "-c", script]));
    assert_eq!(code, 0, "{out}{err}");
    let mut lines = out.lines();
    let start: u32 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["0:0:644", "1000:100:644", "0:0:4755", "0:0:755"],
        "owners as before inside, setuid kept"
    );
    assert_eq!(owner(&fs.host("/etc/passwd")), (start, start, 0o644));
    assert_eq!(owner(&fs.host("/home/user")), (start + 1000, start + 100, 0o644));
    assert_eq!(owner(&fs.host("/usr/bin/suid")), (start, start, 0o4755), "setuid kept");
    assert_eq!(owner(&fs.host("/bin/sh")).0, start, "the symlink itself");
    assert_eq!(owner(&fs.host("/")).0, start, "the record: the top directory");
    assert_eq!(owner(&fs.host("/mnt/other/file")).0, 0, "another file system");

    // Recorded: the next boot with the range walks nothing (an owner
    // changed since stays as it is).
    std::os::unix::fs::chown(fs.host("/etc/passwd"), Some(77), Some(77)).unwrap();
    let range = format!("--userns={start}:65536");
    let mut again = fs.boot("uschown", &[&range, "--userns-chown", "--", "/bin/true"]);
    let (code, out, err) = run(again.env("TEND_LOG", "info"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("not chowned"), "{err}");
    assert_eq!(owner(&fs.host("/etc/passwd")).0, 77, "not walked again");

    // Bad combinations: one line, nothing changed.
    for (args, text) in [
        (
            &["--userns-chown", "--privileged"][..],
            "--userns-chown cannot be combined with --privileged",
        ),
        (&["--userns-chown", "--userns=524289:65536"][..], "a multiple of 65536"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--", "/bin/true"]);
        let (code, out, err) = run(&mut fs.boot("uschown", &all));
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("tend: ") && err.contains(text), "{args:?}: {err}");
    }
    assert_eq!(owner(&fs.host("/etc/passwd")).0, 77);
}

#[test]
fn the_hosts_own_ids_are_never_a_machines_root() {
    let demo = Demo::new("userns-host");
    // A host user: one line naming it.
    let (code, out, err) = run(&mut demo.boot("ushost", &["--userns=1:65536", "--", "/bin/true"]));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--userns=1:65536 overlaps host user"), "{err}");

    // A range /etc/subuid delegates (seen through a private mount
    // namespace, the host's file untouched): named, one line; never picked.
    let slot = userns::pick(&[], userns::seed("ushost")).unwrap();
    let private = Private::new();
    let subuid = demo.dir.path("subuid");
    std::fs::write(&subuid, format!("someone:{}:65536\n", slot.start)).unwrap();
    let (code, _, err) = run(private.inside("mount").arg("--bind").arg(&subuid).arg("/etc/subuid"));
    assert_eq!(code, 0, "{err}");
    let range = format!("--userns={}:65536", slot.start);
    let (code, out, err) = run(&mut private.boot(&demo.rootfs(), "ushost", &[&range, "--", "/bin/true"]));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the subordinate ids of someone in /etc/subuid"), "{err}");
    let mut picked = private.boot(&demo.rootfs(), "ushost", &["--", "/bin/cat", "/proc/self/uid_map"]);
    let (code, out, err) = run(&mut picked);
    assert_eq!(code, 0, "{err}");
    let start: u32 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        !userns::overlaps(slot, userns::Range { start, count: 65536 }),
        "{start}"
    );
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// A POSIX ACL xattr of (tag, permissions, id) entries.
fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut out = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        out.extend(tag.to_le_bytes());
        out.extend(perm.to_le_bytes());
        out.extend(id.to_le_bytes());
    }
    out
}

#[test]
fn userns_chown_keeps_acls_and_file_capabilities_root() {
    // Asked for on a file system that could be idmapped (ext4): chowned all the same.
    let demo = Demo::new("userns-chown-xattr");
    let file = demo.rootfs().join("usr/bin/capable");
    std::fs::write(&file, "").unwrap();
    let (code, _, err) = run(Command::new("setcap").arg("cap_net_raw+ep").arg(&file));
    assert_eq!(code, 0, "{err}");
    let caps_before = xattr(&file, "security.capability").unwrap();
    let any = u32::MAX;
    set_xattr(
        &file,
        "system.posix_acl_access",
        &acl(&[(1, 6, any), (2, 4, 1000), (4, 4, any), (0x10, 4, any), (0x20, 4, any)]),
    );
    // A file that cannot be chowned: one line naming it; the walk is
    // redone by the next boot.
    let stuck = demo.rootfs().join("etc/stuck");
    std::fs::write(&stuck, "").unwrap();
    let (code, _, err) = run(Command::new("chattr").arg("+i").arg(&stuck));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&mut demo.boot("uschownx", &["--userns-chown", "--", "/bin/true"]));
    let _ = run(Command::new("chattr").arg("-i").arg(&stuck));
    assert_eq!(code, 1, "{out}{err}");
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(errors.len(), 1, "{err}");
    let named = format!(
        "cannot chown {} into the id range: Operation not permitted",
        stuck.display()
    );
    assert!(errors[0].contains(&named), "{err}");
    assert_eq!(owner(&demo.rootfs()).0, 0, "not recorded as shifted");
    let (code, out, err) = run(&mut demo.boot(
        "uschownx",
        &[
            "--userns-chown",
            "--",
            "/bin/sh",
            "-c",
            "head -n 1 /proc/self/uid_map; stat -c %u /usr/bin/capable",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    let start: u32 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(out.lines().nth(1), Some("0"), "{out}");
    assert_eq!(owner(&demo.rootfs()).0, start);
    assert_eq!(owner(&stuck).0, start, "walked again");
    // The capability set as before, now rooted at the range (version 3).
    let caps = xattr(&file, "security.capability").expect("chown dropped the file capabilities");
    assert_eq!(caps.len(), 24, "{caps:?}");
    assert_eq!(caps[0..3], caps_before[0..3]);
    assert_eq!(caps[3], 3, "version 3");
    assert_eq!(caps[4..20], caps_before[4..20]);
    assert_eq!(caps[20..], start.to_le_bytes());
    // The named user of the ACL is shifted with the owners.
    assert_eq!(
        xattr(&file, "system.posix_acl_access").unwrap(),
        acl(&[
            (1, 6, any),
            (2, 4, start + 1000),
            (4, 4, any),
            (0x10, 4, any),
            (0x20, 4, any)
        ])
    );
}
