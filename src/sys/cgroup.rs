//! One cgroup per service, so that stopping a service reaches every
//! process it started (even a daemon that double-forked into a new
//! session), and so that its limits (`memory-max`, `cpus`...) bound it and
//! its usage can be read. tend makes `tend-TOKEN` under its own cgroup in
//! the v2 hierarchy and, on v1 or hybrid hosts, in each v1 hierarchy of the
//! `memory`, `cpu`, `pids` and `blkio` controllers that v2 does not offer
//! (and `cpuacct` where there is no v2 to count CPU time; a service joins
//! `blkio` only for `io-weight`); each is locked while tend runs, removed when it exits, and
//! swept at start when an earlier tend (killed) left it behind.

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write as _};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::resources::{self, Controller, Layout, Resources, Support, Write};

/// tend's directories are `tend-TOKEN`, beside those of other tends sharing
/// the hierarchy; each tend holds a `flock` on its own for as long as it
/// runs, which is how a later tend tells a leftover from a live one.
pub(super) const PREFIX: &str = "tend-";

/// How long tend waits at exit for its services' cgroups to empty after
/// `cgroup.kill`, so it can remove them.
const EMPTY_WITHIN: Duration = Duration::from_secs(2);

/// The v1 hierarchies tend uses, by the controller each mount carries:
/// those of the limits, and `cpuacct` for CPU time.
const V1: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "blkio"];

/// A hierarchy tend makes cgroups in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    V2,
    /// A v1 hierarchy, by its controller's name (`memory`, `blkio`...).
    V1(&'static str),
}

/// Where tend's own cgroups are: its cgroup in the v2 hierarchy and in each
/// v1 hierarchy it uses, and the controllers v2 offers there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub v2: Option<PathBuf>,
    pub v1: Vec<(&'static str, PathBuf)>,
}

/// `tend-TOKEN` in one hierarchy, open and locked: the lock is released by
/// the kernel however tend ends.
struct Root {
    kind: Kind,
    dir: PathBuf,
    /// `None` for a second controller of one v1 mount (`cpu,cpuacct`):
    /// the first holds the lock.
    _lock: Option<Flock<File>>,
}

/// The directories under which tend makes its services' cgroups; removed
/// (with them) when dropped.
pub struct Cgroups {
    roots: Vec<Root>,
    /// The roots' hierarchies and directories, shared with every
    /// service's cgroup (an `Arc` of a `Vec`, not of a slice: a thin
    /// pointer keeps a service's `Cgroup` at 64 bytes).
    dirs: Arc<Vec<(Kind, PathBuf)>>,
    /// Controllers whose files are in the v2 cgroup (else in v1's).
    v2_controllers: Arc<BTreeSet<Controller>>,
}

/// A service's cgroups: one per hierarchy, each named for the service
/// under tend's directory there. Only the name and which hierarchies it
/// joined are its own (with thousands of services, a path per hierarchy
/// each is most of what PID 1 keeps for them); paths are made on use.
#[derive(Debug)]
pub struct Cgroup {
    /// tend's directory in each hierarchy (shared).
    roots: Arc<Vec<(Kind, PathBuf)>>,
    /// The roots under which the service has a cgroup.
    joined: Joined,
    /// The service's name (shared with the loop's other records of it).
    name: Arc<str>,
    /// Its v2 directory, open while it is in use: the clone starts the
    /// process in it, and `status` and each exit read its files beneath
    /// it (one name to look up, not two: 6% of a `status` of thousands).
    v2_dir: Option<OwnedFd>,
    /// Until the process is in: the `tasks` files of its v1 cgroups.
    /// (Boxed: gone once the process is in.)
    joining: Option<Box<Joining>>,
    v2_controllers: Arc<BTreeSet<Controller>>,
    /// Its v2 cgroup was killed through `cgroup.kill`.
    killed: AtomicBool,
    /// Its v2 `cgroup.events`, kept open for a cgroup kept across runs
    /// (see [`Cgroups::keep_events`]): each exit reads it with one
    /// `pread`, no open.
    events: Option<OwnedFd>,
    /// Its v2 `cpu.stat`, kept open by the first `status` that reads it
    /// where `events` is kept, for the first [`KEPT_CPU_STATS`] services:
    /// later ones `pread` it (1 µs against 5 to 7 for an open, a read and
    /// a close here; a `status` of ten services is ten of them). Not
    /// opened at the start: a start of thousands need not pay for a file
    /// no one may read.
    cpu_stat: OnceCell<OwnedFd>,
    /// The CPU time and task count the last usage read found (see
    /// [`Seen`]).
    seen: AtomicU64,
}

/// Which of tend's roots a service has a cgroup under: bit `i` for
/// `roots[i]`. Sixteen are room for v2 and every v1 controller there is.
#[derive(Debug, Default, Clone, Copy)]
struct Joined(u16);

impl Joined {
    /// Roots past this many are not joined.
    const MAX: usize = 16;

    fn has(self, i: usize) -> bool {
        i < Joined::MAX && self.0 & (1 << i) != 0
    }

    fn add(&mut self, i: usize) {
        if i < Joined::MAX {
            self.0 |= 1 << i;
        }
    }

    fn count(self) -> u32 {
        self.0.count_ones()
    }
}

/// Whether a service joins the hierarchy of `kind`. With v2 (which tracks
/// every service), a v1 hierarchy only for a limit of its controller: each
/// is a `mkdir`, a file to open and a move, where the v2 cgroup is joined
/// at the clone. Without v2, every v1 one (`blkio` only
/// for its limit), to track the service and read its usage.
fn joins(kind: &Kind, has_v2: bool, needs: &BTreeSet<Controller>) -> bool {
    match kind {
        Kind::V2 => true,
        Kind::V1(name) => {
            let limited = needs.iter().any(|c| c.v1_name() == *name);
            limited || (!has_v2 && *name != "blkio")
        }
    }
}

/// A new cgroup's v1 descriptors, until its process is in.
#[derive(Debug, Default)]
struct Joining {
    procs: Vec<OwnedFd>,
    /// Every directory of it was made just now: nothing has run in it.
    made: bool,
}

/// The last usage read of a cgroup, packed in a `u64` (PID 1 keeps one a
/// service): the low 32 bits of its CPU time in µs and its task count. A
/// task starts (fork, clone) or ends only by running, which the CPU time
/// counts, µs by µs: while that stays the same, the count does too, and
/// `status` need not read a second file (`cgroup.threads` iterates every
/// task; at 5000 services each file read is about 7 µs of PID 1's time).
/// Only a process moved in or out by one outside the cgroup escapes this:
/// its count shows once the service runs again.
struct Seen;

impl Seen {
    /// Nothing seen yet: no CPU time matches it.
    const NONE: u64 = u64::MAX;

    fn pack(cpu_usec: u64, tasks: u64) -> u64 {
        // A count of 2^32 - 1 tasks or more is not kept (none can be).
        match u32::try_from(tasks) {
            Ok(tasks) if tasks != u32::MAX => (cpu_usec & 0xffff_ffff) << 32 | u64::from(tasks),
            _ => Seen::NONE,
        }
    }

    /// The task count seen with this CPU time, if it was.
    fn tasks_at(seen: u64, cpu_usec: u64) -> Option<u64> {
        let tasks = seen & 0xffff_ffff;
        (seen != Seen::NONE && tasks != 0xffff_ffff && seen >> 32 == cpu_usec & 0xffff_ffff).then_some(tasks)
    }
}

/// Reads `file` of a cgroup in the hierarchy of `kind`, handing its text
/// to the last argument in one piece or more; `None` where it cannot.
type ReadFile<'a> = dyn FnMut(&Kind, &str, &mut dyn FnMut(&[u8])) -> Option<()> + 'a;

/// What a service's cgroup says it uses; `None` where no file tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory: Option<u64>,
    pub cpu_usec: Option<u64>,
    pub tasks: Option<u64>,
}

/// In a process forked (not exec'd) from one that holds `value` (cgroups
/// it made): closes `fds` (its copies of their descriptors) and forgets
/// `value`, which is the holder's to remove. A machine's PID 1 must not
/// keep a descriptor of a host cgroup directory: from it, `openat(fd,
/// "..")` reaches the cgroups above its own.
pub fn close_inherited<T>(value: T, fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: `fd` is one of `value`'s descriptors, which is forgotten
        // below: nothing uses or closes it again.
        unsafe { libc::close(fd) };
    }
    std::mem::forget(value);
}

/// A cgroup file's text, in as few calls as the kernel allows: `status`
/// reads two for each of thousands of services. No `statx` for a size
/// hint (cgroup files say 0), and a short read is the end: a kernfs file
/// fills the buffer while it has more to give.
fn read_small(path: &Path) -> Option<String> {
    let mut text = Vec::new();
    read_chunks(File::open(path).ok()?, &mut |piece| text.extend_from_slice(piece))?;
    String::from_utf8(text).ok()
}

/// `cgroup.events` says no process is in the cgroup (or below it).
fn unpopulated(events: &[u8]) -> bool {
    events.split(|b| *b == b'\n').any(|line| line == b"populated 0")
}

/// An open cgroup file read through a stack buffer, each piece handed to
/// `each`; a short read is the end.
fn read_chunks(mut file: File, each: &mut dyn FnMut(&[u8])) -> Option<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = file.read(&mut buf).ok()?;
        each(buf.get(..n)?);
        if n < buf.len() {
            return Some(());
        }
    }
}

/// A kept cgroup file's text from its start, in one call: the numbers
/// `cgroup.events` and `cpu.stat` give fit in 512 bytes.
fn pread_small(file: &OwnedFd, each: &mut dyn FnMut(&[u8])) -> Option<()> {
    let mut buf = [0u8; 512];
    let n = nix::sys::uio::pread(file, &mut buf, 0).ok()?;
    each(buf.get(..n)?);
    Some(())
}

/// `name/file` beneath the open directory `dir`, read by [`read_chunks`];
/// nothing allocated: `status` reads a file or two for each of thousands
/// of services.
fn read_beneath(dir: std::os::fd::BorrowedFd<'_>, name: &str, file: &str, each: &mut dyn FnMut(&[u8])) -> Option<()> {
    let mut path = [0u8; 256];
    let len = name.len() + 1 + file.len();
    let joined = path.get_mut(..len)?;
    let (head, tail) = joined.split_at_mut(name.len());
    head.copy_from_slice(name.as_bytes());
    let (slash, rest) = tail.split_first_mut()?;
    *slash = b'/';
    rest.copy_from_slice(file.as_bytes());
    read_in(dir, &*joined, each)
}

/// `file` beneath the open directory `dir`, read by [`read_chunks`].
fn read_in<P: ?Sized + nix::NixPath>(
    dir: std::os::fd::BorrowedFd<'_>,
    file: &P,
    each: &mut dyn FnMut(&[u8]),
) -> Option<()> {
    let fd = nix::fcntl::openat(dir, file, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    read_chunks(File::from(fd), each)
}

/// A cgroup's directory, open for `clone3`'s `CLONE_INTO_CGROUP` (which
/// takes no `O_PATH` descriptor).
pub fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let flags = libc::O_DIRECTORY | libc::O_CLOEXEC;
    let open = fs::OpenOptions::new().read(true).custom_flags(flags).open(dir)?;
    Ok(open.into())
}

/// Where tend's cgroups would go on this host, read now.
pub fn find() -> Found {
    let usual = [
        "/sys/fs/cgroup/cgroup.controllers",
        "/sys/fs/cgroup/unified/cgroup.controllers",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
    ];
    // Where no cgroup sits at the usual places (a booted container has
    // none mounted), skip reading mountinfo.
    if !usual.iter().any(|p| Path::new(p).exists()) {
        return Found::default();
    }
    let mountinfo = read_small(Path::new("/proc/self/mountinfo")).unwrap_or_default();
    let own = read_small(Path::new("/proc/self/cgroup")).unwrap_or_default();
    locate(&mountinfo, &own)
}

/// [`find`]'s v2 cgroup only: the launcher of a `--privileged` machine,
/// placing its device program, reads no v1 hierarchy.
pub fn find_v2() -> Option<PathBuf> {
    let mountinfo = read_small(Path::new("/proc/self/mountinfo"))?;
    let own = read_small(Path::new("/proc/self/cgroup"))?;
    locate_v2(&mountinfo, &own)
}

/// [`find`] on the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
pub fn locate(mountinfo: &str, own: &str) -> Found {
    let v2 = locate_v2(mountinfo, own);
    let v1 = V1
        .iter()
        .filter_map(|&name| {
            let mount = v1_mount(mountinfo, name)?;
            let path = own_v1_path(own, name)?;
            Some((name, mount.join(path.trim_start_matches('/'))))
        })
        .collect();
    Found { v2, v1 }
}

/// [`find_v2`] on the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
fn locate_v2(mountinfo: &str, own: &str) -> Option<PathBuf> {
    cgroup2_mount(mountinfo)
        .zip(own_v2_path(own))
        .map(|(mount, path)| mount.join(path.trim_start_matches('/')))
}

/// The controllers units may bound here: those v2 offers in tend's cgroup,
/// and those of writable v1 hierarchies. `ReadOnly` when tend can write
/// none (a container's read-only `/sys/fs/cgroup`).
pub fn support() -> Support {
    let found = find();
    let mut offered = BTreeSet::new();
    let mut writable = false;
    if let Some(dir) = found.v2.as_deref().filter(|d| is_writable(d)) {
        writable = true;
        offered.extend(v2_offered(dir));
    }
    for (name, dir) in &found.v1 {
        if is_writable(dir) {
            writable = true;
            let controllers = Controller::ALL.into_iter().filter(|c| c.v1_name() == *name);
            offered.extend(controllers.filter(|c| v1_has_files(*c, dir)));
        }
    }
    if writable {
        Support::Only(offered)
    } else {
        Support::ReadOnly
    }
}

/// Whether a v1 hierarchy can take `controller`'s keys: `blkio` has a
/// weight file only with the CFQ or BFQ scheduler. (The root cgroup lacks
/// some files, `pids.max`, that its children have; a file missing for one
/// key, `memory.memsw.*` without swap accounting, is said at start.)
fn v1_has_files(controller: Controller, dir: &Path) -> bool {
    let weights = ["blkio.weight", "blkio.bfq.weight"];
    controller != Controller::Io || weights.iter().any(|f| dir.join(f).exists())
}

fn is_writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The controllers in a v2 cgroup's `cgroup.controllers`.
fn v2_offered(dir: &Path) -> BTreeSet<Controller> {
    let text = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    parse_controllers(&text)
}

/// The controllers of ours in a `cgroup.controllers` text.
pub fn parse_controllers(text: &str) -> BTreeSet<Controller> {
    let names: BTreeSet<&str> = crate::sorted::set(text.split_whitespace());
    crate::sorted::set(Controller::ALL.into_iter().filter(|c| names.contains(c.v2_name())))
}

impl Cgroups {
    /// Makes `tend-TOKEN` under tend's own cgroup in each hierarchy it can
    /// write, after removing the ones earlier tends (no longer running)
    /// left beside it; on v2, hands its controllers down to it. `None`
    /// where it can write none: tend then falls back to process groups.
    pub fn detect(token: &str) -> Option<Cgroups> {
        Cgroups::detect_in(&find(), token)
    }

    pub fn detect_in(found: &Found, token: &str) -> Option<Cgroups> {
        let name = format!("{PREFIX}{token}");
        let mut roots = Vec::new();
        let mut v2_controllers = BTreeSet::new();
        if let Some(parent) = &found.v2 {
            if let Some(lock) = claim(&parent.join(&name)) {
                sweep(parent, &parent.join(&name));
                let dir = parent.join(&name);
                v2_controllers = delegate(parent, &dir, &parent.join(format!("{name}.init")));
                roots.push(Root {
                    kind: Kind::V2,
                    dir,
                    _lock: Some(lock),
                });
            }
        }
        for (controller, parent) in &found.v1 {
            // A controller v2 hands down is used there, not in v1; v2's
            // `cpu.stat` counts CPU time in every cgroup, so `cpuacct` is
            // only for hosts without v2.
            let on_v2 = v2_controllers.iter().any(|c| c.v1_name() == *controller);
            if on_v2 || (*controller == "cpuacct" && found.v2.is_some()) {
                continue;
            }
            let dir = parent.join(&name);
            if roots.iter().any(|r| r.dir == dir) {
                let kind = Kind::V1(controller);
                roots.push(Root { kind, dir, _lock: None });
            } else if let Some(lock) = claim(&dir) {
                sweep(parent, &dir);
                roots.push(Root {
                    kind: Kind::V1(controller),
                    dir,
                    _lock: Some(lock),
                });
            }
        }
        let dirs = Arc::new(roots.iter().map(|r| (r.kind.clone(), r.dir.clone())).collect());
        let v2_controllers = Arc::new(v2_controllers);
        (!roots.is_empty()).then_some(Cgroups {
            roots,
            dirs,
            v2_controllers,
        })
    }

    /// The descriptors these hold (their locks): what a process forked
    /// from the holder closes, as it must not keep them (see
    /// [`close_inherited`]).
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.roots
            .iter()
            .filter_map(|r| r._lock.as_ref())
            .map(|l| l.as_raw_fd())
            .collect()
    }

    /// What `cgroup` (one of these) uses, read through the roots' open
    /// directories: `status` reads a file or two for each of thousands of
    /// services, and a walk of the whole path is most of each read.
    pub fn usage_of(&self, cgroup: &Cgroup) -> Usage {
        cgroup.usage_with(&mut |kind, file, each| {
            if let (Kind::V2, "cpu.stat", Some(_)) = (kind, file, &cgroup.events) {
                return cgroup.read_kept_cpu_stat(each);
            }
            if let (Kind::V2, Some(dir)) = (kind, cgroup.v2_dir()) {
                return read_in(dir, file, each);
            }
            // Only the hierarchies the service joined (its roots are ours,
            // in our order).
            let i = self.roots.iter().position(|r| r.kind == *kind)?;
            if !cgroup.joined.has(i) {
                return None;
            }
            read_beneath(self.root_fd(i)?, &cgroup.name, file, each)
        })
    }

    /// Whether `cgroup` (one of these) holds no process now, as its v2
    /// `cgroup.events` says, read beneath tend's open root (at every exit
    /// of a service: a walk of the whole path was most of the read);
    /// `None` where it cannot tell. With `keep` (a cgroup kept across
    /// runs) the file stays open, and later exits read it with one call.
    pub fn is_empty(&self, cgroup: &mut Cgroup, keep: bool) -> Option<bool> {
        let i = self.roots.iter().position(|r| r.kind == Kind::V2)?;
        if !cgroup.joined.has(i) {
            return None;
        }
        if keep {
            Cgroups::keep_events(cgroup);
        }
        let mut empty = false;
        let mut read = |text: &[u8]| empty |= unpopulated(text);
        if let Some(events) = &cgroup.events {
            pread_small(events, &mut read)?;
            return Some(empty);
        }
        match cgroup.v2_dir() {
            Some(dir) => read_in(dir, "cgroup.events", &mut read)?,
            None => read_beneath(self.root_fd(i)?, &cgroup.name, "cgroup.events", &mut read)?,
        }
        Some(empty)
    }

    /// Opens `cgroup`'s v2 `cgroup.events` to keep, if not yet open (a
    /// kernfs open is 15 µs here: a kept cgroup's first exit need not
    /// pay it, as the open is made once its first run is out). A kept
    /// file costs a descriptor and, once read, the kernel's page of its
    /// text: only where the descriptors allow (`tend init`'s budget,
    /// which counts `cpu.stat` too).
    pub fn keep_events(cgroup: &mut Cgroup) {
        if let (None, Some(dir)) = (&cgroup.events, cgroup.v2_dir()) {
            let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
            cgroup.events = nix::fcntl::openat(dir, "cgroup.events", flags, Mode::empty()).ok();
        }
    }

    /// Root `i`'s directory, open: its lock (the first root of a mount,
    /// `cpu,cpuacct`, holds it). Services' cgroups are made and opened
    /// beneath it, not by a walk of the whole path each time.
    fn root_fd(&self, i: usize) -> Option<std::os::fd::BorrowedFd<'_>> {
        let root = self.roots.get(i)?;
        let lock = match &root._lock {
            Some(lock) => lock,
            None => self.roots.iter().find(|r| r.dir == root.dir)?._lock.as_ref()?,
        };
        Some(lock.as_fd())
    }

    /// tend's directory in the v2 hierarchy, when it has one.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.roots.iter().find(|r| r.kind == Kind::V2).map(|r| r.dir.as_path())
    }

    /// Makes the service's cgroup in every hierarchy and opens each v1
    /// `tasks` file for its process to join (see [`Cgroup::procs_fds`]). v1's `blkio` only when
    /// `needs` it: nothing else reads it (an `io-weight` a reload adds
    /// applies from the next start).
    pub fn create(&self, service: impl Into<Arc<str>>, needs: &BTreeSet<Controller>) -> io::Result<Cgroup> {
        let service: Arc<str> = service.into();
        let mut cgroup = Cgroup {
            roots: self.dirs.clone(),
            joined: Joined::default(),
            name: service.clone(),
            v2_dir: None,
            joining: None,
            v2_controllers: self.v2_controllers.clone(),
            killed: AtomicBool::new(false),
            events: None,
            cpu_stat: OnceCell::new(),
            seen: AtomicU64::new(Seen::NONE),
        };
        let has_v2 = self.roots.iter().any(|r| r.kind == Kind::V2);
        for (i, root) in self.roots.iter().enumerate().take(Joined::MAX) {
            if !joins(&root.kind, has_v2, needs) {
                continue;
            }
            let joined = cgroup.joined;
            let shared = (0..i).any(|j| joined.has(j) && self.roots.get(j).is_some_and(|r| r.dir == root.dir));
            cgroup.joined.add(i);
            if shared {
                // A mount of two controllers (`cpu,cpuacct`): joined once.
                continue;
            }
            let at = self
                .root_fd(i)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
            let made = match nix::sys::stat::mkdirat(at, &*service, nix::sys::stat::Mode::from_bits_truncate(0o777)) {
                Ok(()) => true,
                Err(nix::errno::Errno::EEXIST) => false,
                Err(e) => return Err(e.into()),
            };
            let first = cgroup.joining.is_none();
            let joining = cgroup.joining.get_or_insert_with(Box::default);
            joining.made = made && (first || joining.made);
            let cloexec = OFlag::O_CLOEXEC;
            if root.kind == Kind::V2 {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | cloexec;
                cgroup.v2_dir = Some(nix::fcntl::openat(at, &*service, flags, Mode::empty())?);
            } else {
                let procs = format!("{service}/tasks");
                let fd = nix::fcntl::openat(at, procs.as_str(), OFlag::O_WRONLY | cloexec, Mode::empty())?;
                joining.procs.push(fd);
            }
        }
        Ok(cgroup)
    }

    /// `cgroup` again, for the next run of its service, if it is as
    /// [`Cgroups::create`] would make it now (for `needs`: the v2
    /// hierarchy only) and was not killed; else `None` (it is dropped: the
    /// caller creates one).
    pub fn reuse(&self, cgroup: Cgroup, needs: &BTreeSet<Controller>) -> Option<Cgroup> {
        let has_v2 = self.roots.iter().any(|r| r.kind == Kind::V2);
        let v2_only = self
            .roots
            .iter()
            .all(|root| (root.kind == Kind::V2) || !joins(&root.kind, has_v2, needs));
        let whole = cgroup.joining.is_none() && cgroup.v2_dir.is_some();
        if !(v2_only && whole && !cgroup.was_killed() && cgroup.joined.count() == 1) {
            return None;
        }
        cgroup.seen.store(Seen::NONE, Ordering::Relaxed);
        Some(cgroup)
    }

    /// Removes `service`'s v2 cgroup (to be made afresh: see
    /// [`Cgroup::was_killed`]); whether it is gone. Its limits there go
    /// with it.
    pub fn remove_v2(&self, service: &str) -> bool {
        let Some(root) = self.roots.iter().find(|r| r.kind == Kind::V2) else {
            return true;
        };
        match fs::remove_dir(root.dir.join(service)) {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// Kills what is left in the services' cgroups, waits (a bounded time)
    /// for them to empty, and removes them and tend's directories: when
    /// tend exits, whichever way its loop ends.
    fn remove(&self) {
        let deadline = Instant::now() + EMPTY_WITHIN;
        for root in &self.roots {
            for dir in subdirs(&root.dir) {
                kill_all(&dir);
                await_empty(&dir, deadline);
                // Killed tasks leave `cgroup.events` a little before the
                // kernel lets go of the cgroup (rmdir says EBUSY meanwhile;
                // v1 has no events at all): at exit, try again briefly
                // rather than leave it behind.
                while !remove_tree(&dir) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = fs::remove_dir(&root.dir);
        }
    }
}

/// Kept `cpu.stat` files at most (see [`Cgroup::cpu_stat`]). Each holds a
/// page of kernel memory once read: the first services a status reads
/// keep theirs (a status of a few opens no file), the others' are opened,
/// read and closed each time, as every one was before.
pub const KEPT_CPU_STATS: usize = 64;

/// How many are kept now.
static KEPT: AtomicUsize = AtomicUsize::new(0);

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.cpu_stat.get().is_some() {
            KEPT.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

/// On v2, enables in `parent` and in tend's `dir` the controllers `parent`
/// offers, so that each service's cgroup has their files. A cgroup that
/// hands controllers down may hold no process ("no internal processes"):
/// when `parent` holds some (tend itself, in a container), they are first
/// moved into `leaf`, beside `dir` (it stays while they run; the sweep of a
/// later tend removes it once empty). What was enabled; none on hybrid
/// hosts.
fn delegate(parent: &Path, dir: &Path, leaf: &Path) -> BTreeSet<Controller> {
    let offered = v2_offered(parent);
    if offered.is_empty() {
        return offered;
    }
    let line: Vec<String> = offered.iter().map(|c| format!("+{}", c.v2_name())).collect();
    let line = line.join(" ");
    let control = parent.join("cgroup.subtree_control");
    // EBUSY while `parent` holds processes: move them, then try again.
    let enabled = fs::write(&control, &line).is_ok()
        || (move_processes(parent, leaf).is_ok() && fs::write(&control, &line).is_ok());
    if !enabled {
        tracing::warn!(
            "cannot enable cgroup controllers in {}: limits are not applied",
            parent.display()
        );
        return BTreeSet::new();
    }
    if fs::write(dir.join("cgroup.subtree_control"), &line).is_err() {
        return BTreeSet::new();
    }
    offered
}

/// Moves every process of cgroup `from` into the new cgroup `leaf`.
fn move_processes(from: &Path, leaf: &Path) -> io::Result<()> {
    fs::create_dir_all(leaf)?;
    let procs = fs::read_to_string(from.join("cgroup.procs"))?;
    for pid in procs.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // A process may have exited meanwhile.
        match fs::write(leaf.join("cgroup.procs"), pid) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// SIGKILL to every process in the cgroup `dir`: `cgroup.kill`, or one by
/// one on kernels without it (before 5.14).
pub(super) fn kill_all(dir: &Path) {
    if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
        let _ = super::process::kill(pid, libc::SIGKILL);
    }
}

/// Makes `root` and takes its lock, holding its parent's lock shared
/// meanwhile: a sweep holds that one alone, so it never finds a root made
/// and not yet locked (which it would take for a dead tend's).
pub(super) fn claim(root: &Path) -> Option<Flock<File>> {
    let _parent = root.parent().and_then(|p| lock_dir(p, FlockArg::LockShared));
    fs::create_dir_all(root).ok()?;
    lock_dir(root, FlockArg::LockExclusiveNonblock)
}

/// `dir` open and locked (blocking ones wait only for a claim or a sweep:
/// a few system calls).
fn lock_dir(dir: &Path, how: FlockArg) -> Option<Flock<File>> {
    Flock::lock(File::open(dir).ok()?, how).ok()
}

/// Removes, under `parent`, the `tend-*` directories whose lock can be
/// taken (their tend is gone), with their empty cgroups; a live tend's
/// holds its lock, and a cgroup still holding processes stays.
pub(super) fn sweep(parent: &Path, own: &Path) {
    let _parent = lock_dir(parent, FlockArg::LockExclusive);
    for dir in subdirs(parent) {
        let ours = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PREFIX));
        if !ours || dir == own {
            continue;
        }
        if let Some(_lock) = lock_dir(&dir, FlockArg::LockExclusiveNonblock) {
            let _ = remove_tree(&dir);
            tracing::debug!("removed the cgroups an earlier tend left in {}", dir.display());
        }
    }
}

/// The directories in `dir` (a cgroup's children).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes a cgroup and its children, deepest first; those still holding
/// processes stay (rmdir refuses them). Whether it is gone.
pub(super) fn remove_tree(dir: &Path) -> bool {
    // Most have no child left (a machine's or a service's cgroup, its
    // children removed first): one rmdir, without listing its files.
    if remove_dir(dir) {
        return true;
    }
    for child in subdirs(dir) {
        remove_tree(&child);
    }
    remove_dir(dir)
}

/// rmdir; whether `dir` is gone.
fn remove_dir(dir: &Path) -> bool {
    match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Waits until `cgroup.events` says no process is left in `dir`, or the
/// deadline passes. The kernel signals changes of that file to poll(2) as
/// POLLPRI.
fn await_empty(dir: &Path, deadline: Instant) {
    let Ok(mut events) = File::open(dir.join("cgroup.events")) else {
        return;
    };
    loop {
        let mut text = String::new();
        let read = events.rewind().and_then(|()| events.read_to_string(&mut text));
        if read.is_err() || unpopulated(text.as_bytes()) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(timeout) = PollTimeout::try_from(left) else {
            return;
        };
        if left.is_zero() {
            return;
        }
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        if nix::poll::poll(&mut fds, timeout).is_err() {
            return;
        }
    }
}

impl Cgroup {
    /// The open v1 `tasks` files, for a child to write itself into: `0`,
    /// its only thread, so the whole process. A move of one's own thread
    /// skips the lock a move of a process takes, whose first taking after
    /// a quiet moment waits for an RCU grace period (110 to 340 µs a
    /// service here, against 14 µs: the cost of a limit on v1).
    pub fn procs_fds(&self) -> Vec<RawFd> {
        let procs = self.joining.iter().flat_map(|j| &j.procs);
        procs.map(AsRawFd::as_raw_fd).collect()
    }

    /// The process is in: close the v1 `tasks` files (the v2 directory
    /// stays open, for reads).
    pub fn spawned(&mut self) {
        self.joining = None;
    }

    /// Whether its v2 cgroup was killed through `cgroup.kill`: until it is
    /// made again, a process cloned into it is killed at once (a kernel
    /// bug, up to at least 6.18), so the next start joins it by a write.
    pub fn was_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// The descriptors it holds.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        let procs = self.joining.iter().flat_map(|j| &j.procs);
        let dirs = self.v2_dir.iter().chain(&self.events).chain(self.cpu_stat.get());
        dirs.chain(procs).map(AsRawFd::as_raw_fd).collect()
    }

    /// Its v2 directory, open.
    pub fn v2_dir_fd(&self) -> Option<RawFd> {
        self.v2_dir().map(|fd| fd.as_raw_fd())
    }

    /// The same, borrowed.
    pub fn v2_dir(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.v2_dir.as_ref().map(AsFd::as_fd)
    }

    /// Its `cpu.stat`, opened beneath its directory at the first read and
    /// kept (see [`Cgroup::cpu_stat`]) while fewer than [`KEPT_CPU_STATS`]
    /// are; else opened, read and closed.
    fn read_kept_cpu_stat(&self, each: &mut dyn FnMut(&[u8])) -> Option<()> {
        if let Some(kept) = self.cpu_stat.get() {
            return pread_small(kept, each);
        }
        let dir = self.v2_dir()?;
        if KEPT.load(Ordering::Relaxed) >= KEPT_CPU_STATS {
            return read_in(dir, "cpu.stat", each);
        }
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let opened = nix::fcntl::openat(dir, "cpu.stat", flags, Mode::empty()).ok()?;
        if self.cpu_stat.set(opened).is_ok() {
            KEPT.fetch_add(1, Ordering::Relaxed);
        }
        pread_small(self.cpu_stat.get()?, each)
    }

    /// Joins the v1 hierarchies of `needs` it is not in yet (limits a
    /// reload added to a running service), moving its processes there.
    pub fn extend(&mut self, needs: &BTreeSet<Controller>) -> io::Result<()> {
        let has_v2 = self.roots.iter().any(|(k, _)| *k == Kind::V2);
        // Its tasks may be counted elsewhere from now on (`pids.current`).
        self.seen.store(Seen::NONE, Ordering::Relaxed);
        let pids = self.pids();
        for i in 0..self.roots.len().min(Joined::MAX) {
            let Some((kind, root)) = self.roots.get(i) else {
                continue;
            };
            if self.joined.has(i) || !joins(kind, has_v2, needs) {
                continue;
            }
            let dir = root.join(&*self.name);
            match fs::create_dir(&dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            self.joined.add(i);
            for pid in &pids {
                // A process may have exited meanwhile.
                match fs::write(dir.join("cgroup.procs"), pid.to_string()) {
                    Err(e) if e.raw_os_error() != Some(libc::ESRCH) => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The cgroup in `kind`'s hierarchy.
    fn dir(&self, kind: &Kind) -> Option<PathBuf> {
        // The path made for that hierarchy alone: each exit that is not a
        // success asks for the memory one, which most services never join.
        let i = self.joined_index(kind)?;
        Some(self.roots.get(i)?.1.join(&*self.name))
    }

    /// The service's cgroup in each hierarchy it joined.
    fn dirs(&self) -> impl Iterator<Item = (&Kind, PathBuf)> + '_ {
        let joined = self.roots.iter().enumerate().filter(|(i, _)| self.joined.has(*i));
        joined.map(|(_, (kind, root))| (kind, root.join(&*self.name)))
    }

    /// A cgroup of these directories (all named alike), for those that
    /// tend did not make (a machine's, read from the host).
    fn at(dirs: Vec<(Kind, PathBuf)>, v2_controllers: BTreeSet<Controller>) -> Cgroup {
        let name = dirs
            .first()
            .and_then(|(_, d)| d.file_name())
            .map(|n| n.to_string_lossy().into());
        let roots: Vec<(Kind, PathBuf)> = dirs
            .into_iter()
            .map(|(kind, dir)| (kind, dir.parent().map_or(dir.clone(), Path::to_path_buf)))
            .collect();
        Cgroup {
            joined: (0..roots.len()).fold(Joined::default(), |mut j, i| {
                j.add(i);
                j
            }),
            roots: Arc::new(roots),
            name: name.unwrap_or_default(),
            v2_dir: None,
            joining: None,
            v2_controllers: Arc::new(v2_controllers),
            killed: AtomicBool::new(false),
            events: None,
            cpu_stat: OnceCell::new(),
            seen: AtomicU64::new(Seen::NONE),
        }
    }

    /// The cgroup holding `controller`'s files: v2's when v2 offers it.
    fn controller_dir(&self, controller: Controller) -> Option<PathBuf> {
        if self.v2_controllers.contains(&controller) {
            return self.dir(&Kind::V2);
        }
        self.dir(&Kind::V1(controller.v1_name()))
    }

    /// Moves `pid` into the cgroups it is not in yet: every one, or, when
    /// it was cloned into the v2 one ([`Cgroup::v2_dir_fd`]), the v1 ones
    /// (through the `tasks` files [`Cgroups::create`] opened: `pid` is a
    /// just-cloned PID 1, one thread).
    pub fn join_after_clone(&self, pid: i32, in_v2: bool) -> io::Result<()> {
        if !in_v2 {
            return self.join(pid);
        }
        let text = pid.to_string();
        for procs in self.joining.iter().flat_map(|j| &j.procs) {
            nix::unistd::write(procs, text.as_bytes())?;
        }
        Ok(())
    }

    /// Moves the process `pid` (and, later, all it starts) into the cgroup.
    pub fn join(&self, pid: i32) -> io::Result<()> {
        for (_, dir) in self.dirs() {
            fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// Which layout holds `controller`'s files for this service.
    pub fn layout(&self, controller: Controller) -> Option<Layout> {
        if self.v2_controllers.contains(&controller) {
            return Some(Layout::V2);
        }
        self.dir(&Kind::V1(controller.v1_name())).map(|_| Layout::V1)
    }

    /// The cgroup that lists the service's processes: v2's, else a v1 one.
    fn main_dir(&self) -> Option<PathBuf> {
        self.dirs().next().map(|(_, d)| d)
    }

    pub fn pids(&self) -> Vec<i32> {
        let Some(dir) = self.main_dir() else {
            return Vec::new();
        };
        let text = read_small(&dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Sends `signal` to every process in the cgroup. SIGKILL uses v2's
    /// `cgroup.kill`, which also catches processes forking meanwhile.
    /// An empty v2 cgroup is left alone (see [`Cgroup::was_killed`]).
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        if let (libc::SIGKILL, Some(dir)) = (signal, self.dir(&Kind::V2)) {
            let events = read_small(&dir.join("cgroup.events")).unwrap_or_default();
            if unpopulated(events.as_bytes()) {
                return Ok(());
            }
            if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                self.killed.store(true, Ordering::Relaxed);
                return Ok(());
            }
        }
        for pid in self.pids() {
            super::process::kill(pid, signal)?;
        }
        Ok(())
    }

    /// Takes the limits from `old` to `new` (from none at start): the
    /// writes of [`resources::plan`], each in the cgroup of its controller.
    /// A write refused is tried again after the others (v1 refuses a
    /// memory limit above memory+swap until memsw is raised); what still
    /// fails is returned, one readable line each.
    pub fn apply(&self, old: &Resources, new: &Resources) -> Vec<String> {
        let mut writes = Vec::new();
        for layout in [Layout::V2, Layout::V1] {
            let plan = resources::plan(old, new, layout);
            let on_v2 = |w: &Write| self.v2_controllers.contains(&w.controller);
            writes.extend(plan.into_iter().filter(|w| on_v2(w) == (layout == Layout::V2)));
        }
        let failed: Vec<Write> = writes.into_iter().filter(|w| self.write(w).is_err()).collect();
        failed.into_iter().filter_map(|w| self.write(&w).err()).collect()
    }

    fn write(&self, w: &Write) -> Result<(), String> {
        let name = w.controller.v2_name();
        let Some(dir) = self.controller_dir(w.controller) else {
            return Err(format!("no cgroup of the {name} controller"));
        };
        // Written where the file is: the first of the names that exists
        // (no look before the write, which would cost its own lookup).
        for file in w.files.iter().map(|f| dir.join(f)) {
            // No O_CREAT: a missing file must say ENOENT (cgroupfs answers
            // a create with EACCES).
            let written = fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .and_then(|mut f| f.write_all(w.value.as_bytes()));
            match written {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                done => {
                    return done.map_err(|e| {
                        format!(
                            "cannot write {} to {}: {}",
                            w.value,
                            file.display(),
                            super::describe(&e)
                        )
                    })
                }
            }
        }
        Err(format!("no {} in {}", w.files.join(" or "), dir.display()))
    }

    /// [`Cgroup::oom_kills`] before its process starts: none in cgroups
    /// made just now, with no read (a service with limits joins several).
    pub fn oom_kills_before_start(&self) -> u64 {
        match &self.joining {
            Some(joining) if joining.made => 0,
            _ => self.oom_kills(),
        }
    }

    /// How many of its processes the kernel's OOM killer killed, ever:
    /// v2 `memory.events`, v1 `memory.oom_control`.
    pub fn oom_kills(&self) -> u64 {
        let on_v2 = self.v2_controllers.contains(&Controller::Memory);
        if let (true, Some(dir)) = (on_v2, self.v2_dir()) {
            // Beneath its open directory (each start and each failed exit
            // asks): one name to look up, not the whole path.
            let mut text = Vec::new();
            read_in(dir, "memory.events", &mut |piece| text.extend_from_slice(piece));
            return field(&String::from_utf8_lossy(&text), "oom_kill").unwrap_or(0);
        }
        let Some(dir) = self.controller_dir(Controller::Memory) else {
            return 0;
        };
        let file = if on_v2 { "memory.events" } else { "memory.oom_control" };
        let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
        field(&text, "oom_kill").unwrap_or(0)
    }

    /// What the cgroup says it uses, read now by path.
    pub fn usage(&self) -> Usage {
        self.usage_with(&mut |kind, file, each| {
            let text = read_small(&self.dir(kind)?.join(file))?;
            each(text.as_bytes());
            Some(())
        })
    }

    /// What the cgroup says it uses, `read(hierarchy, file, each)` handing
    /// each file's text to `each`, in one piece or more. The task count is
    /// read again only when the CPU time moved (see [`Seen`]).
    fn usage_with(&self, read: &mut ReadFile<'_>) -> Usage {
        // The numbers are at the start of each file: its first piece.
        let mut first = |kind: &Kind, file: &str, parse: &dyn Fn(&str) -> Option<u64>| {
            let (mut value, mut started) = (None, false);
            read(kind, file, &mut |piece| {
                if !started {
                    started = true;
                    value = std::str::from_utf8(piece).ok().and_then(parse);
                }
            })?;
            value
        };
        let number = |text: &str| text.trim().parse::<u64>().ok();
        let on_v2 = |c| self.v2_controllers.contains(&c);
        let holder = |c: Controller| if on_v2(c) { Kind::V2 } else { Kind::V1(c.v1_name()) };
        let memory_file = if on_v2(Controller::Memory) {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        let memory = first(&holder(Controller::Memory), memory_file, &number);
        let cpu_usec = if self.joined_index(&Kind::V1("cpuacct")).is_some() {
            first(&Kind::V1("cpuacct"), "cpuacct.usage", &number).map(|ns| ns / 1000)
        } else {
            // v2 keeps `cpu.stat` even without the cpu controller.
            first(&Kind::V2, "cpu.stat", &|t| field(t, "usage_usec"))
        };
        let seen = self.seen.load(Ordering::Relaxed);
        if let Some(tasks) = cpu_usec.and_then(|cpu| Seen::tasks_at(seen, cpu)) {
            return Usage {
                memory,
                cpu_usec,
                tasks: Some(tasks),
            };
        }
        let tasks = first(&holder(Controller::Pids), "pids.current", &number).or_else(|| {
            // No pids controller: count the threads v2 lists.
            let mut lines = 0u64;
            read(&Kind::V2, "cgroup.threads", &mut |piece| {
                lines += piece.iter().filter(|&&b| b == b'\n').count() as u64
            })?;
            Some(lines)
        });
        let seen = match (cpu_usec, tasks) {
            (Some(cpu), Some(tasks)) => Seen::pack(cpu, tasks),
            _ => Seen::NONE,
        };
        self.seen.store(seen, Ordering::Relaxed);
        Usage {
            memory,
            cpu_usec,
            tasks,
        }
    }

    /// The position of `kind`'s hierarchy among the roots, when the
    /// service joined it.
    fn joined_index(&self, kind: &Kind) -> Option<usize> {
        let i = self.roots.iter().position(|(k, _)| k == kind)?;
        self.joined.has(i).then_some(i)
    }

    /// Removes the cgroups; fails while processes remain.
    pub fn remove(&self) -> io::Result<()> {
        for (_, dir) in self.dirs() {
            match fs::remove_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn path(&self) -> PathBuf {
        self.main_dir().unwrap_or_else(|| PathBuf::from("/"))
    }
}

/// What a machine `tend boot --memory/--cpus/--pids` bounded uses, from
/// its PID 1's host pid; `None` for a machine without its own cgroup.
pub fn machine_usage(pid1: i32) -> Option<Usage> {
    let own = fs::read_to_string(format!("/proc/{pid1}/cgroup")).ok()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let found = locate(&mountinfo, &own);
    let v2_controllers = found.v2.as_deref().map(v2_offered).unwrap_or_default();
    let mut dirs: Vec<(Kind, PathBuf)> = found.v2.into_iter().map(|d| (Kind::V2, d)).collect();
    dirs.extend(found.v1.into_iter().map(|(name, d)| (Kind::V1(name), d)));
    let machine = |d: &Path| {
        let parent = d
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned());
        d.ends_with("machine") && parent.is_some_and(|p| p.starts_with("tend-boot-"))
    };
    dirs.retain(|(_, d)| machine(d));
    if dirs.is_empty() {
        return None;
    }
    Some(Cgroup::at(dirs, v2_controllers).usage())
}

/// The number after `name` in a `KEY VALUE` per line text.
pub fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// The mount point of the v1 hierarchy carrying `controller`.
pub fn v1_mount(mountinfo: &str, controller: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        let (fstype, options) = (right.next()?, right.nth(1)?);
        let mount_point = left.split_whitespace().nth(4)?;
        let has = options.split(',').any(|o| o == controller);
        (fstype == "cgroup" && has).then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// tend's path in the v1 hierarchy of `controller` (`4:memory:/path`; a
/// line may name several: `2:cpu,cpuacct:/path`).
pub fn own_v1_path(cgroup: &str, controller: &str) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        names.split(',').any(|n| n == controller).then(|| path.to_string())
    })
}

/// The mount point of the cgroup2 hierarchy in a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mount_point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// The cgroup2 path (`0::/path`) in a `/proc/self/cgroup` text.
pub fn own_v2_path(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string)
}

/// mountinfo escapes space, tab, newline and backslash as `\\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
";

    #[test]
    fn finds_the_v2_hierarchy_on_hybrid_machines() {
        assert_eq!(cgroup2_mount(HYBRID), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("25 1 0:23 / /sys rw - sysfs sysfs rw\n"), None);
        let escaped = "31 30 0:27 / /a\\040b rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(escaped), Some(PathBuf::from("/a b")));
    }

    #[test]
    fn v1_hierarchies_and_own_paths() {
        let hybrid = format!("{HYBRID}33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
        let own = "4:memory:/x\n2:cpu,cpuacct:/\n0::/\n";
        let found = locate(&hybrid, own);
        assert_eq!(found.v2, Some(PathBuf::from("/sys/fs/cgroup/unified/")));
        let cpu = PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/");
        let expected = vec![
            ("memory", PathBuf::from("/sys/fs/cgroup/memory/x")),
            ("cpu", cpu.clone()),
            ("cpuacct", cpu),
        ];
        assert_eq!(found.v1, expected);
        assert_eq!(
            field("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
        assert_eq!(
            parse_controllers("cpuset cpu io memory hugetlb pids rdma"),
            Controller::ALL.into()
        );
    }

    /// A v2-shaped tree in a temp dir: tend's cgroup offering every
    /// controller, its files as plain files.
    fn v2_tree(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tend-v2-fixture-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        dir
    }

    #[test]
    fn v2_limits_are_written_to_a_v2_tree() {
        let parent = v2_tree("apply");
        let own = parent.join("tend-x");
        fs::create_dir(&own).unwrap();
        fs::write(own.join("cgroup.subtree_control"), "").unwrap();
        assert_eq!(
            delegate(&parent, &own, &parent.join("tend-x.init")),
            Controller::ALL.into()
        );
        let enabled = "+memory +cpu +pids +io";
        assert_eq!(
            fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap(),
            enabled
        );
        assert_eq!(fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(), enabled);
        let service = own.join("web");
        fs::create_dir(&service).unwrap();
        let files = [
            "memory.max",
            "memory.high",
            "memory.swap.max",
            "cpu.max",
            "cpu.weight",
            "pids.max",
            "io.weight",
        ];
        for f in files {
            fs::write(service.join(f), "").unwrap();
        }
        let cgroup = Cgroup::at(vec![(Kind::V2, service.clone())], Controller::ALL.into());
        let new = Resources {
            memory_max: Some(32 << 20),
            memory_high: Some(16 << 20),
            memory_swap_max: Some(1),
            cpu_quota: Some(25_000),
            cpu_weight: Some(300),
            pids_max: Some(50),
            io_weight: Some(20),
        };
        assert_eq!(cgroup.apply(&Resources::default(), &new), Vec::<String>::new());
        let read = |f: &str| fs::read_to_string(service.join(f)).unwrap();
        let values = files.map(read);
        assert_eq!(
            values,
            ["33554432", "16777216", "1", "25000 100000", "300", "50", "default 20"]
        );
        // A change rewrites what changed only, a removed key back to max.
        fs::write(service.join("cpu.weight"), "untouched").unwrap();
        let changed = Resources {
            memory_max: Some(64 << 20),
            pids_max: None,
            ..new
        };
        assert!(cgroup.apply(&new, &changed).is_empty());
        assert_eq!(
            (read("memory.max"), read("pids.max")),
            ("67108864".into(), "max".into())
        );
        assert_eq!(read("cpu.weight"), "untouched");
        // A missing file is reported, not fatal.
        fs::remove_file(service.join("io.weight")).unwrap();
        let problems = cgroup.apply(&changed, &Resources::default());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("no io.weight in "));
        fs::write(
            service.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills(), 1);
        // Beneath its open directory where it has one: its path is not
        // walked (moved away, the path finds nothing).
        let mut opened = Cgroup::at(vec![(Kind::V2, service.clone())], Controller::ALL.into());
        opened.v2_dir = Some(open_dir(&service).unwrap());
        let moved = own.join("web-moved");
        fs::rename(&service, &moved).unwrap();
        assert_eq!((opened.oom_kills(), cgroup.oom_kills()), (1, 0));
        fs::rename(&moved, &service).unwrap();
        fs::write(service.join("memory.current"), "4096\n").unwrap();
        fs::write(service.join("pids.current"), "3\n").unwrap();
        fs::write(service.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        let usage = Usage {
            memory: Some(4096),
            cpu_usec: Some(1500),
            tasks: Some(3),
        };
        assert_eq!(cgroup.usage(), usage);
        fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn tasks_are_counted_again_only_when_the_cpu_time_moved() {
        // A hybrid host's v2 cgroup: no controllers, tasks from
        // `cgroup.threads`.
        let dir = v2_tree("seen").join("web");
        fs::create_dir(&dir).unwrap();
        let cgroup = Cgroup::at(vec![(Kind::V2, dir.clone())], BTreeSet::new());
        let write = |cpu: u64, threads: &str| {
            fs::write(dir.join("cpu.stat"), format!("usage_usec {cpu}\nuser_usec 1\n")).unwrap();
            fs::write(dir.join("cgroup.threads"), threads).unwrap();
        };
        let tasks = || cgroup.usage().tasks;
        write(1500, "7\n8\n");
        assert_eq!(tasks(), Some(2));
        // The same CPU time: nothing in it ran, so nothing forked or ended
        // (only a move from outside changes the list unseen).
        write(1500, "7\n8\n9\n");
        assert_eq!(tasks(), Some(2));
        write(1501, "7\n8\n9\n");
        assert_eq!(tasks(), Some(3));
        // A list longer than one read is handed over in pieces, in full.
        let many: String = (1..=2000).map(|t| format!("{t}\n")).collect();
        write(1600, &many);
        assert_eq!(tasks(), Some(2000));
        let parent = File::open(dir.parent().unwrap()).unwrap();
        let (mut pieces, mut text) = (0, Vec::new());
        let read = read_beneath(parent.as_fd(), "web", "cgroup.threads", &mut |piece| {
            pieces += 1;
            text.extend_from_slice(piece);
        });
        assert_eq!((read, pieces, text), (Some(()), 3, many.into_bytes()));
        assert_eq!(read_beneath(parent.as_fd(), "web", "none", &mut |_| {}), None);
        // Without a CPU time, the list is read every time.
        fs::remove_file(dir.join("cpu.stat")).unwrap();
        fs::write(dir.join("cgroup.threads"), "1\n").unwrap();
        assert_eq!(
            cgroup.usage(),
            Usage {
                memory: None,
                cpu_usec: None,
                tasks: Some(1)
            }
        );
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    /// The first services read keep their `cpu.stat` open, up to the cap;
    /// the others read theirs by path; a kept one is read afresh; and the
    /// count goes back down as they go.
    #[test]
    fn cpu_stat_files_are_kept_up_to_a_cap_and_read_afresh() {
        let tree = v2_tree("kept");
        let n = KEPT_CPU_STATS + 3;
        let before = KEPT.load(Ordering::Relaxed);
        let cgroups: Vec<Cgroup> = (0..n)
            .map(|i| {
                let dir = tree.join(format!("s{i}"));
                fs::create_dir(&dir).unwrap();
                fs::write(dir.join("cpu.stat"), format!("usage_usec {i}\n")).unwrap();
                let mut cgroup = Cgroup::at(vec![(Kind::V2, dir.clone())], BTreeSet::new());
                cgroup.v2_dir = Some(open_dir(&dir).unwrap());
                cgroup
            })
            .collect();
        let read = |cgroup: &Cgroup| {
            let mut text = Vec::new();
            cgroup.read_kept_cpu_stat(&mut |piece| text.extend_from_slice(piece));
            String::from_utf8(text).unwrap()
        };
        for (i, cgroup) in cgroups.iter().enumerate() {
            assert_eq!(read(cgroup), format!("usage_usec {i}\n"));
        }
        let kept = cgroups.iter().filter(|c| c.cpu_stat.get().is_some()).count();
        assert_eq!(kept, KEPT_CPU_STATS - before);
        assert!(cgroups.last().is_some_and(|c| c.cpu_stat.get().is_none()));
        fs::write(tree.join("s0/cpu.stat"), "usage_usec 99\n").unwrap();
        assert_eq!(read(&cgroups[0]), "usage_usec 99\n");
        drop(cgroups);
        assert_eq!(KEPT.load(Ordering::Relaxed), before);
        fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn a_seen_count_belongs_to_its_cpu_time() {
        let seen = Seen::pack(1 << 40 | 77, 3);
        assert_eq!(Seen::tasks_at(seen, 1 << 40 | 77), Some(3));
        assert_eq!(Seen::tasks_at(seen, 78), None);
        assert_eq!(Seen::tasks_at(Seen::NONE, u64::MAX), None);
        assert_eq!(Seen::pack(5, u64::from(u32::MAX)), Seen::NONE);
    }

    #[test]
    fn with_v2_a_service_joins_a_v1_hierarchy_only_for_its_limits() {
        let none = BTreeSet::new();
        let memory = BTreeSet::from([Controller::Memory]);
        assert!(joins(&Kind::V2, true, &none));
        assert!(!joins(&Kind::V1("memory"), true, &none));
        assert!(!joins(&Kind::V1("pids"), true, &memory));
        assert!(joins(&Kind::V1("memory"), true, &memory));
        // Without v2, v1 tracks every service (blkio only for io-weight).
        assert!(joins(&Kind::V1("pids"), false, &none));
        assert!(!joins(&Kind::V1("blkio"), false, &none));
        assert!(joins(&Kind::V1("blkio"), false, &BTreeSet::from([Controller::Io])));
    }

    #[test]
    fn own_path_is_the_v2_line() {
        let text = "12:memory:/x\n0::/user.slice/session-1.scope\n";
        assert_eq!(own_v2_path(text).as_deref(), Some("/user.slice/session-1.scope"));
        assert_eq!(own_v2_path("3:cpu:/\n"), None);
    }
}

#[cfg(test)]
mod size_tests {
    /// PID 1 keeps one a running service, boxed with its log pipes' tokens:
    /// 64 bytes hold it in malloc's 80-byte chunks (72 took 96).
    #[test]
    fn a_service_s_cgroup_takes_64_bytes() {
        assert_eq!(std::mem::size_of::<super::Cgroup>(), 64);
    }
}
