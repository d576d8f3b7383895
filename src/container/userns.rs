//! The user namespace of a container booted as root: its 65536 ids map to
//! a range of host ids no other machine uses, picked from a pool (as
//! systemd-nspawn's `--private-users=pick`) or named with
//! `--userns=START:COUNT`; claimed under a lock in the registry directory
//! (`userns/START-COUNT`, holding the launcher's pid), released when the
//! machine ends, and reclaimed from a launcher that died. The rootfs is
//! attached through an idmapped mount ([`crate::sys::idmap`]), so the tree
//! keeps its ownership on disk and container root sees it root-owned; with
//! `--userns-chown` it is chowned into the range instead, once
//! ([`crate::sys::chown`]). Picks step over the host's own ids (users,
//! groups, /etc/subuid and /etc/subgid ranges).
//!
//! The order follows systemd-nspawn's: before the clone, the launcher
//! makes the user namespace with its maps and the network, UTS and IPC
//! namespaces it owns (held by fds), and the idmapped trees. The child is
//! cloned into new PID, mount and cgroup namespaces only, still host root:
//! it enters the held namespaces, makes every mount, pivots, then enters
//! the user namespace and copies its mount namespace. That copy, into a
//! less privileged user namespace, locks every mount (mount_namespaces(7)):
//! root inside cannot unmount the masks over /proc, remount /sys or
//! /proc/sys read-write, or mount a fresh proc or sysfs to see past them.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::Flock;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub use super::namespaces::Range;
use super::options::{Bind, BootOptions, IdMap};
use std::os::unix::fs::MetadataExt;

/// nspawn's pool: 0x00080000–0x6FFEFFFF, in steps of 65536.
pub const POOL_START: u32 = 0x0008_0000;
pub const POOL_END: u32 = 0x6FFF_0000;
/// The ids of a container: 0–65535.
pub const SIZE: u32 = 0x1_0000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--userns={range} overlaps the ids of machine {name} ({other})")]
    Overlap { range: Range, name: String, other: Range },
    #[error(
        "--userns={range} overlaps {what}: name a range no host user, group or /etc/subuid or /etc/subgid entry uses"
    )]
    Host { range: Range, what: String },
    #[error("no free id range of 65536 left in the pool {POOL_START}–{POOL_END}")]
    PoolFull,
    #[error("cannot claim an id range in {}", .path.display())]
    Claim {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot mount the rootfs {} idmapped (its file system, or one mounted inside it, may not support it): boot with --userns-chown (chown the tree once into the id range) or --privileged",
        .path.display()
    )]
    Idmap {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Chown(#[from] crate::sys::chown::Error),
    #[error("cannot idmap the bind {} (:noidmap binds it as it is)", .path.display())]
    BindIdmap {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the container's user namespace")]
    Namespace(#[source] std::io::Error),
    #[error("cannot enter the container's {0} namespace")]
    Enter(&'static str, #[source] std::io::Error),
    #[error("cannot take root's ids in the container")]
    BecomeRoot(#[source] std::io::Error),
    #[error("cannot lock the container's mounts")]
    Lock(#[source] std::io::Error),
    #[error("cannot start the container")]
    Go(#[source] std::io::Error),
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.start, self.count)
    }
}

/// `START:COUNT`, a range of host ids that maps no host root and fits in
/// the 32-bit id space (4294967295 is not an id).
pub fn parse(text: &str) -> Result<Range, String> {
    let bad = || format!("bad --userns={text}: expected START:COUNT, e.g. 524288:65536");
    let (start, count) = text.split_once(':').ok_or_else(bad)?;
    let start: u32 = start.trim().parse().map_err(|_| bad())?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    if start == 0 || count == 0 {
        return Err(format!(
            "bad --userns={text}: START and COUNT must be above 0 (host root is never mapped)"
        ));
    }
    // The last id, start + count - 1, must be at most 4294967294.
    if start.checked_add(count).is_none() {
        return Err(format!(
            "bad --userns={text}: the range ends beyond the host's ids (4294967294)"
        ));
    }
    Ok(Range { start, count })
}

pub fn overlaps(a: Range, b: Range) -> bool {
    let end = |r: Range| u64::from(r.start) + u64::from(r.count);
    u64::from(a.start) < end(b) && u64::from(b.start) < end(a)
}

/// A free slot of the pool, starting from one chosen by `seed` (the
/// machine's name, so a machine tends to get the same range each boot).
pub fn pick(taken: &[Range], seed: u64) -> Option<Range> {
    let slots = (POOL_END - POOL_START) / SIZE;
    let first = (seed % u64::from(slots)) as u32;
    (0..slots)
        .map(|i| Range {
            start: POOL_START + ((first + i) % slots) * SIZE,
            count: SIZE,
        })
        .find(|r| !taken.iter().any(|t| overlaps(*r, *t)))
}

/// FNV-1a of the name: stable across boots and builds.
pub fn seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The claim of a range by a running launcher; released on drop. Holds
/// the idmapped copies of the binds until then (close-on-exec; PID 1's
/// copies go with it).
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    owner: u32,
    trees: Vec<OwnedFd>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // A cloned child holds a copy: only the launcher releases.
        if std::process::id() != self.owner {
            return;
        }
        let _ = std::fs::remove_file(&self.path);
        // The last claim takes the directory with it, under its lock (see
        // `lock_dir`): nothing of tend's stays on the host.
        if let Some(dir) = self.path.parent() {
            if let Ok(_lock) = lock_existing(dir) {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// `dir`, made if missing, locked exclusively: the directory itself is the
/// lock. The last release removes it under that lock, so a lock taken on a
/// directory removed meanwhile is let go and taken on the one there now.
fn lock_dir(dir: &Path) -> std::io::Result<Flock<std::fs::File>> {
    let mut last = std::io::Error::from(std::io::ErrorKind::NotFound);
    // Each round lost means another launcher's release came in between.
    for _ in 0..16 {
        std::fs::create_dir_all(dir)?;
        match lock_existing(dir) {
            Ok(lock) => return Ok(lock),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// `dir` locked exclusively, if it is still the directory at that path
/// once locked (`NotFound` otherwise).
fn lock_existing(dir: &Path) -> std::io::Result<Flock<std::fs::File>> {
    let file = std::fs::File::open(dir)?;
    let lock = Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))?;
    match is_at(&lock, dir) {
        true => Ok(lock),
        false => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    }
}

/// Whether `file` is the directory at `dir` now (not one removed since).
fn is_at(file: &std::fs::File, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(dir)) {
        (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
        _ => false,
    }
}

/// A claim file's range and owner: `START-COUNT` holding `PID NAME`.
fn read_claim(path: &Path) -> Option<(Range, u32, String)> {
    let file = path.file_name()?.to_str()?;
    let (start, count) = file.split_once('-')?;
    let range = Range {
        start: start.parse().ok()?,
        count: count.parse().ok()?,
    };
    let text = std::fs::read_to_string(path).ok()?;
    let (pid, name) = text.trim().split_once(' ')?;
    Some((range, pid.parse().ok()?, name.to_string()))
}

/// Takes `wanted` (or a free range of the pool) for machine `name` in
/// `dir`, under an exclusive lock of the directory.
pub fn claim(dir: &Path, name: &str, wanted: Option<Range>) -> Result<(Range, Claim), Error> {
    let error = |source| Error::Claim {
        path: dir.to_path_buf(),
        source,
    };
    let _lock = lock_dir(dir).map_err(error)?;
    let mut taken = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)?.flatten() {
        let Some((range, pid, owner)) = read_claim(&entry.path()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Its launcher died without releasing it.
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        if let Some(w) = wanted.filter(|w| overlaps(*w, range)) {
            return Err(Error::Overlap {
                range: w,
                name: owner,
                other: range,
            });
        }
        taken.push(range);
    }
    // The host's own ids: its users and groups, and the ranges it
    // delegates to them (rootless containers use those).
    let host = host_ids();
    if let Some(w) = wanted {
        if let Some((_, what)) = host.iter().find(|(r, _)| overlaps(w, *r)) {
            return Err(Error::Host {
                range: w,
                what: what.clone(),
            });
        }
    }
    taken.extend(host.iter().map(|(r, _)| *r));
    let range = match wanted {
        Some(w) => w,
        None => pick(&taken, seed(name)).ok_or(Error::PoolFull)?,
    };
    let path = dir.join(format!("{}-{}", range.start, range.count));
    let owner = std::process::id();
    std::fs::write(&path, format!("{owner} {name}\n")).map_err(error)?;
    Ok((
        range,
        Claim {
            path,
            owner,
            trees: Vec::new(),
        },
    ))
}

/// The ids the host uses itself, each with what uses it: the users of
/// /etc/passwd, the groups of /etc/group and the subordinate ranges of
/// /etc/subuid and /etc/subgid (a missing file has none).
fn host_ids() -> Vec<(Range, String)> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let mut ids = account_ids(&read("/etc/passwd"), "host user", "uid");
    ids.extend(account_ids(&read("/etc/group"), "host group", "gid"));
    ids.extend(subordinate_ids(&read("/etc/subuid"), "/etc/subuid"));
    ids.extend(subordinate_ids(&read("/etc/subgid"), "/etc/subgid"));
    ids
}

/// The id (third field) of each line of /etc/passwd or /etc/group.
pub fn account_ids(text: &str, what: &str, kind: &str) -> Vec<(Range, String)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id: u32 = fields.nth(1)?.trim().parse().ok()?;
            Some((Range { start: id, count: 1 }, format!("{what} {name} ({kind} {id})")))
        })
        .collect()
}

/// The ranges (`NAME:START:COUNT`) of /etc/subuid or /etc/subgid.
pub fn subordinate_ids(text: &str, file: &str) -> Vec<(Range, String)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let start: u32 = fields.next()?.trim().parse().ok()?;
            let count: u32 = fields.next()?.trim().parse().ok().filter(|&c| c > 0)?;
            let range = Range { start, count };
            Some((range, format!("the subordinate ids of {name} in {file} ({range})")))
        })
        .collect()
}

/// The launcher's step before it clones: with a range to map, claim it
/// and record it in the options.
pub fn claim_for(o: &BootOptions, registry: &Path) -> Result<(BootOptions, Option<Claim>), Error> {
    let mut o = o.clone();
    if !o.id_range_wanted {
        return Ok((o, None));
    }
    let (range, mut claim) = claim(&registry.join("userns"), &o.name, o.id_range)?;
    o.id_range = Some(range);
    let (held, holder) = hold(&o, range)?;
    o.holder = holder;
    o.held = held.iter().map(|(name, fd)| (*name, fd.as_raw_fd())).collect();
    if o.userns_chown {
        chown_rootfs(&o.rootfs, range)?;
    } else {
        let rootfs = idmapped_rootfs(&o, &held[0].1)?;
        o.idmapped_root = Some(rootfs.as_raw_fd());
        claim.trees.push(rootfs);
    }
    claim.trees.extend(held.into_iter().map(|(_, fd)| fd));
    for bind in &mut o.binds {
        if let Some(tree) = bind_tree(bind, range)? {
            bind.tree = Some(tree.as_raw_fd());
            claim.trees.push(tree);
        }
    }
    Ok((o, Some(claim)))
}

/// What an operator should know about this boot, one line each: said
/// once every option has been checked (a boot refused for a bad option
/// says only why).
pub fn warnings(o: &BootOptions) -> Vec<String> {
    let mut lines = Vec::new();
    if o.privileged {
        lines.push(
            "--privileged: no user namespace, every capability, no seccomp filter: container root is host root".into(),
        );
    }
    if !o.id_range_wanted {
        return lines;
    }
    if reachable_by_others(&o.rootfs) {
        lines.push(format!(
            "rootfs {} is reachable by other host users: a setuid-root file made inside would be theirs to run (make a directory above it 0700)",
            o.rootfs.display()
        ));
    }
    let root_owned = |b: &Bind| std::fs::metadata(&b.src).is_ok_and(|m| m.uid() == 0);
    for bind in o
        .binds
        .iter()
        .filter(|b| b.idmap != IdMap::None && !b.ro && root_owned(b))
    {
        lines.push(format!(
            "--bind {}: owned by host root, and writable: the container's root acts as host root in that tree (share a directory owned by an unprivileged user instead)",
            bind.src.display()
        ));
    }
    lines
}

/// `--userns-chown`: the rootfs's ownership shifted into `range`, unless
/// an earlier boot did (its top directory says so).
fn chown_rootfs(rootfs: &Path, range: Range) -> Result<(), Error> {
    match crate::sys::chown::shift_tree(rootfs, range.start)? {
        crate::sys::chown::Outcome::Already => {
            tracing::info!(
                "rootfs {} is in the id range {range} already: not chowned",
                rootfs.display()
            )
        }
        crate::sys::chown::Outcome::Shifted(n) => {
            tracing::info!(
                "rootfs {}: {n} files chowned into the id range {range}",
                rootfs.display()
            )
        }
    }
    Ok(())
}

/// Whether others (not owner, not group) may search every directory from
/// `/` down to `path`: then they reach what the container makes in it.
pub fn reachable_by_others(path: &Path) -> bool {
    path.ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o001 != 0))
}

/// Namespaces by name (`user` first), held by their fds.
type Held = Vec<(&'static str, OwnedFd)>;

/// The container's user namespace (its ids 0.. on `range`) and the
/// network, UTS and IPC namespaces it owns: the user namespace first.
/// Also the pid of the process that made them, exiting: reaped by
/// [`let_go`], while the child works, rather than waited for here.
fn hold(o: &BootOptions, range: Range) -> Result<(Held, i32), Error> {
    let mut more = vec![("uts", libc::CLONE_NEWUTS), ("ipc", libc::CLONE_NEWIPC)];
    if o.net.is_new() {
        more.push(("net", libc::CLONE_NEWNET));
    }
    let map = format!("0 {} {}\n", range.start, range.count);
    let (fds, holder) = crate::sys::ns::hold_namespaces(&map, &map, &more).map_err(Error::Namespace)?;
    let names = std::iter::once("user").chain(more.iter().map(|(n, _)| *n));
    Ok((names.zip(fds).collect(), holder))
}

/// The idmapped copy of a bind's source, made before the clone so the
/// child inherits it: through a user namespace where SRC's owner is the
/// container's root (`rootidmap`), or the container's own maps (`idmap`).
fn bind_tree(bind: &Bind, range: Range) -> Result<Option<OwnedFd>, Error> {
    let error = |source| Error::BindIdmap {
        path: bind.src.clone(),
        source,
    };
    let meta = std::fs::metadata(&bind.src).map_err(error)?;
    let (uid_map, gid_map) = match bind.idmap {
        IdMap::None => return Ok(None),
        IdMap::Root => (
            format!("{} {} 1\n", meta.uid(), range.start),
            format!("{} {} 1\n", meta.gid(), range.start),
        ),
        IdMap::Whole => {
            let line = format!("0 {} {}\n", range.start, range.count);
            (line.clone(), line)
        }
    };
    let userns = crate::sys::ns::userns_with_maps(&uid_map, &gid_map).map_err(error)?;
    let tree = crate::sys::idmap::clone_tree(&bind.src).map_err(error)?;
    crate::sys::idmap::set_idmap(&tree, &userns).map_err(error)?;
    Ok(Some(tree))
}

/// The channel on which the launcher lets the child go (and hands it the
/// idmapped rootfs).
pub fn channel() -> Result<(OwnedFd, OwnedFd), Error> {
    let (a, b) = UnixStream::pair().map_err(Error::Go)?;
    Ok((a.into(), b.into()))
}

/// Whether the launcher writes the child's id maps after the clone (its
/// own user namespace): only then must the first "go" wait for the clone.
pub fn maps_after_clone(o: &BootOptions) -> bool {
    o.userns && o.id_range.is_none()
}

/// The launcher's half, once the child exists and its id maps are in
/// place: "go" (unless sent before the clone, see [`maps_after_clone`]),
/// then the holder of the namespaces reaped. A second "go" ([`go_on`])
/// tells it that its network is made.
pub fn let_go(o: &BootOptions, go: &OwnedFd) -> Result<(), super::launch::Error> {
    if maps_after_clone(o) {
        go_on(go)?;
    }
    if o.holder > 0 {
        let _ = crate::sys::process::wait_for(o.holder, false);
    }
    Ok(())
}

fn idmapped_rootfs(o: &BootOptions, userns: &OwnedFd) -> Result<OwnedFd, Error> {
    let error = |source| Error::Idmap {
        path: o.rootfs.clone(),
        source,
    };
    let tree = crate::sys::idmap::clone_tree(&o.rootfs).map_err(error)?;
    crate::sys::idmap::set_idmap(&tree, userns).map_err(error)?;
    Ok(tree)
}

/// "go" to the child (again).
pub fn go_on(go: &OwnedFd) -> Result<(), super::launch::Error> {
    crate::sys::fdpass::send(go, b"go", &[]).map_err(Error::Go)?;
    Ok(())
}

/// The child's half: waits for "go"; false when the launcher gave up.
pub fn await_go(go: &OwnedFd) -> bool {
    let mut buf = [0u8; 2];
    let mut fds = Vec::new();
    let n = crate::sys::fdpass::recv(go, &mut buf, &mut fds, false).unwrap_or(0);
    &buf[..n] == b"go"
}

/// The child, first: into the held network, UTS and IPC namespaces, so
/// its mounts (sysfs) and hostname are theirs.
pub fn enter(o: &BootOptions) -> Result<(), Error> {
    for &(name, fd) in o.held.iter().filter(|(name, _)| *name != "user") {
        crate::sys::ns::setns(fd).map_err(|e| Error::Enter(name, e))?;
    }
    Ok(())
}

/// The child, after its mounts: into the user namespace as its root, then
/// a copy of the mount namespace, which locks every mount made so far.
pub fn lock_in(o: &BootOptions) -> Result<(), Error> {
    let Some(&(_, userns)) = o.held.iter().find(|(name, _)| *name == "user") else {
        return Ok(());
    };
    crate::sys::ns::setns(userns).map_err(|e| Error::Enter("user", e))?;
    become_root().map_err(|e| Error::BecomeRoot(e.into()))?;
    // A change of ids clears the parent-death signal: set it again.
    crate::sys::process::set_parent_death_signal(libc::SIGKILL).map_err(Error::BecomeRoot)?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| Error::Lock(e.into()))
}

/// Host root is unmapped in our range: until we take the ids 0 of the
/// namespace, we are its overflow user.
fn become_root() -> nix::Result<()> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    setgroups(&[])?;
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u32, count: u32) -> Range {
        Range { start, count }
    }

    #[test]
    fn ranges_parse_and_stay_in_the_id_space() {
        assert_eq!(parse("524288:65536"), Ok(r(524288, 65536)));
        assert!(parse("0:65536").unwrap_err().contains("host root"));
        assert!(parse("5:0").is_err());
        assert!(parse("4294901760:65536").unwrap_err().contains("beyond"));
        assert!(parse("4294901759:65536").is_ok());
        assert!(parse("x:1").is_err() && parse("12").is_err());
    }

    #[test]
    fn overlapping() {
        assert!(overlaps(r(10, 10), r(19, 5)));
        assert!(!overlaps(r(10, 10), r(20, 5)));
        assert!(overlaps(r(10, 100), r(20, 5)));
    }

    #[test]
    fn picks_skip_taken_slots_and_stay_in_the_pool() {
        let first = pick(&[], 0).unwrap();
        assert_eq!(first, r(POOL_START, SIZE));
        let second = pick(&[first], 0).unwrap();
        assert_eq!(second, r(POOL_START + SIZE, SIZE));
        let any = pick(&[], seed("demo")).unwrap();
        assert!(any.start >= POOL_START && any.start + SIZE <= POOL_END && any.start % SIZE == 0);
        assert_eq!(pick(&[], seed("demo")), Some(any), "the same name, the same range");
        assert_eq!(pick(&[r(POOL_START, POOL_END - POOL_START)], 7), None);
    }

    #[test]
    fn host_users_groups_and_subordinate_ranges() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbig:x:600000:600000::/:/bin/sh\n# comment\nbad:x:y:1\n";
        let users = account_ids(passwd, "host user", "uid");
        assert_eq!(users.len(), 2);
        assert_eq!(users[1], (r(600000, 1), "host user big (uid 600000)".into()));
        let group = account_ids("wheel:x:10:alice\n", "host group", "gid");
        assert_eq!(group, [(r(10, 1), "host group wheel (gid 10)".into())]);
        let sub = subordinate_ids("alice:524288:65536\nbob:100000:0\n\nx\n", "/etc/subuid");
        assert_eq!(
            sub,
            [(
                r(524288, 65536),
                "the subordinate ids of alice in /etc/subuid (524288:65536)".into()
            )]
        );
        // A pick steps over them.
        let taken: Vec<Range> = sub.iter().chain(&users).map(|(r, _)| *r).collect();
        assert_eq!(
            pick(&taken, 0),
            Some(r(POOL_START + 2 * SIZE, SIZE)),
            "alice's, then big's"
        );
    }

    #[test]
    fn claims_exclude_each_other_and_dead_ones_are_reclaimed() {
        let dir = std::env::temp_dir().join(format!("tend-userns-{}", std::process::id()));
        let (a, claim_a) = claim(&dir, "a", None).unwrap();
        let (b, _claim_b) = claim(&dir, "b", None).unwrap();
        assert!(!overlaps(a, b));
        let err = claim(&dir, "c", Some(r(a.start + 5, 10))).unwrap_err();
        assert!(err.to_string().contains("machine a"), "{err}");
        drop(claim_a);
        assert!(claim(&dir, "c", Some(r(a.start + 5, 10))).is_ok(), "released on drop");
        // A claim of a dead launcher is taken back.
        std::fs::write(
            dir.join(format!("{}-10", b.start + 100)),
            format!("{} dead\n", i32::MAX),
        )
        .unwrap();
        assert!(claim(&dir, "d", Some(r(b.start + 100, 10))).is_err(), "b's range");
        let free = r(POOL_END + SIZE, 10);
        std::fs::write(dir.join(format!("{}-10", free.start)), format!("{} dead\n", i32::MAX)).unwrap();
        assert!(claim(&dir, "e", Some(free)).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_last_released_claim_takes_the_directory_with_it() {
        let dir = std::env::temp_dir().join(format!("tend-userns-empty-{}", std::process::id()));
        let mut claims: Vec<_> = ["a", "b"].iter().map(|n| claim(&dir, n, None).unwrap()).collect();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        drop(claims.pop());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "one claim left: the directory stays"
        );
        drop(claims);
        assert!(!dir.exists(), "the last release removes the directory");
        // A claim after that makes it again.
        let again = claim(&dir, "c", None).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        drop(again);
        assert!(!dir.exists());
    }

    /// A lock taken on a directory that the last release removed meanwhile
    /// is not the directory at the path: it is let go and taken again.
    #[test]
    fn a_directory_removed_since_it_was_opened_is_not_the_one_there() {
        let dir = std::env::temp_dir().join(format!("tend-userns-gone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let opened = std::fs::File::open(&dir).unwrap();
        assert!(is_at(&opened, &dir));
        std::fs::remove_dir(&dir).unwrap();
        assert!(!is_at(&opened, &dir), "removed");
        std::fs::create_dir(&dir).unwrap();
        assert!(!is_at(&opened, &dir), "another directory there now");
        let lock = lock_dir(&dir).unwrap();
        assert!(is_at(&lock, &dir));
        drop(lock);
        std::fs::remove_dir(&dir).unwrap();
        let err = lock_existing(&dir).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
