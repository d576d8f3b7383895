//! The spawner: the one place where tend forks and execs.
//!
//! A child is started the way `posix_spawn` starts one, for what a PID 1
//! with thousands of services would otherwise pay at every spawn: a
//! `clone` with `CLONE_VM | CLONE_VFORK` (no copy of PID 1's page tables,
//! no copy-on-write faults after it; PID 1 waits until the child execs)
//! and, where the child gets fresh descriptors, `CLONE_FILES` with the
//! table unshared in the child below a few low "slots" only (no copy, and
//! no close at exec, of every service's pipes). The child then does what a
//! PID 1 owes its children, explicitly: its cgroups before anything else
//! (so it never runs outside them, not even to fork), default signal
//! dispositions (ignored signals would otherwise stay ignored across
//! exec), an empty signal mask (a blocked signal stays blocked across
//! exec), no inherited descriptor beyond 0, 1 and 2 unless asked, the
//! `RLIMIT_NOFILE` soft limit tend was started with, a process group of
//! its own, and the terminal's foreground. An exec error comes back
//! through the memory the child shares until it execs.

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::ExitStatus;

/// How to start one command.
#[derive(Debug, Default)]
pub struct Spawn<'a> {
    /// The program and its arguments; the program is looked up in `PATH`
    /// (as `execvp` does) unless `program` names it.
    pub argv: &'a [OsString],
    /// The file to exec, found already in `PATH` (a unit's, when it was
    /// loaded): no walk of `PATH` at each start, where each directory
    /// before the program's is a failed `execve`. `argv[0]` stays as
    /// given; one with a `/` is exec'd as written, as `execvp` would.
    pub program: Option<&'a Path>,
    pub cwd: Option<&'a Path>,
    /// Make the child the leader of a new process group, so signals can
    /// reach everything it starts in that group.
    pub new_group: bool,
    /// If our group owns the terminal on stdin, hand the foreground to the
    /// child's group (so Ctrl-C and job control reach it, as under tini).
    pub take_terminal: bool,
    /// Make the child the leader of a new session (services: no terminal).
    pub new_session: bool,
    /// With `new_session`: make its stdin (a terminal) the session's
    /// controlling terminal (`tend ctl exec -t`).
    pub controlling_tty: bool,
    /// Variables set on top of tend's own environment.
    pub env: Vec<(OsString, OsString)>,
    /// A variable set to the child's own pid (`WATCHDOG_PID`): known only
    /// after the fork, so the hook then execs by itself (see `PidExec`).
    pub pid_variable: Option<&'a str>,
    /// Run as this user and group, with these supplementary groups.
    pub credentials: Option<Credentials>,
    /// Resource limits to set: (resource, soft, hard).
    pub limits: Vec<(i32, u64, u64)>,
    /// Where the standard streams go; `None` inherits tend's.
    pub stdin: Option<Stream<'a>>,
    pub stdout: Option<Stream<'a>>,
    pub stderr: Option<Stream<'a>>,
    /// The v2 cgroup's directory, open: the child starts in it (`clone3`
    /// with `CLONE_INTO_CGROUP`: no move, which waits for an RCU grace
    /// period when no other move came just before), or, where the kernel
    /// or a seccomp filter refuses that, writes itself into it first.
    pub cgroup_dir: Option<RawFd>,
    /// Start the child in `cgroup_dir` by the clone; else it writes itself
    /// in (a cgroup once killed through `cgroup.kill`: the kernel, up to at
    /// least 6.18, kills at once what is cloned into it).
    pub clone_into_cgroup: bool,
    /// Open `tasks` files (v1 hierarchies) the child writes itself into
    /// (`0`: its only thread) before exec, so it never runs outside its
    /// cgroups (not even to fork).
    pub cgroup_procs: Vec<RawFd>,
    /// Pass on the descriptors beyond 0, 1 and 2 that tend inherited (the
    /// child of `tend -- CMD`, as tini does); otherwise the child gets
    /// exactly 0, 1 and 2.
    pub keep_inherited_fds: bool,
    /// Descriptors the child gets at given numbers, open across exec:
    /// `(fd, number)`, both from 3 up (a namespace that a helper opens as
    /// /proc/self/fd/N). Such a child gets a copy of tend's table: the
    /// slots would keep none of these.
    pub pass: Vec<(RawFd, i32)>,
}

/// Who a child runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The command could not be started.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct SpawnError {
    pub program: String,
    pub source: io::Error,
    /// The step before the exec that failed, as the message names it
    /// ("cannot change to the working directory /srv"); `None`: the exec.
    pub step: Option<String>,
}

/// The steps of a child before its exec, for the message of the one that
/// failed (a missing working directory is not a missing program).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Cgroup,
    Streams,
    Session,
    Limits,
    Groups,
    GroupId,
    UserId,
    WorkingDir,
    Descriptors,
    Mask,
}

impl Step {
    fn describe(self, cwd: Option<&Path>) -> String {
        let text = match self {
            Step::Cgroup => "cannot join its cgroup",
            Step::Streams => "cannot set up its standard streams",
            Step::Session => "cannot start its session",
            Step::Limits => "cannot set its limits",
            Step::Groups => "cannot set its supplementary groups",
            Step::GroupId => "cannot set its group id",
            Step::UserId => "cannot set its user id",
            Step::WorkingDir => {
                let dir = cwd.map_or_else(String::new, |d| format!(" {}", d.display()));
                return format!("cannot change to the working directory{dir}");
            }
            Step::Descriptors => "cannot pass its descriptors",
            Step::Mask => "cannot clear its signal mask",
        };
        text.to_string()
    }
}

/// The cause, with what EAGAIN means here: fork(2), or execve(2) after
/// setuid, over a process limit.
fn why(e: &io::Error) -> String {
    let text = super::describe(e);
    match e.raw_os_error() {
        Some(libc::EAGAIN) => format!("{text} (a process limit is reached: a pids cgroup or RLIMIT_NPROC)"),
        _ => text,
    }
}

impl SpawnError {
    /// A shell's exit code for this failure: 127 when there is no such
    /// program, 126 when it exists but cannot be executed (or a step
    /// before its exec failed).
    pub fn exit_code(&self) -> i32 {
        match (&self.step, self.source.raw_os_error()) {
            (None, Some(libc::ENOENT) | Some(libc::ENOTDIR)) => 127,
            _ => 126,
        }
    }

    fn describe(&self) -> String {
        let why = why(&self.source);
        match &self.step {
            None => format!("cannot execute {}: {why}", self.program),
            Some(step) => format!("cannot start {}: {step}: {why}", self.program),
        }
    }
}

/// One standard stream of the child: a descriptor the spawn takes (closed
/// once the child has its copy), or one the caller keeps (a service's log
/// pipe, which outlives its runs).
#[derive(Debug)]
pub enum Stream<'a> {
    Owned(OwnedFd),
    Kept(BorrowedFd<'a>),
}

impl From<OwnedFd> for Stream<'_> {
    fn from(fd: OwnedFd) -> Self {
        Stream::Owned(fd)
    }
}

impl AsRawFd for Stream<'_> {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Owned(fd) => fd.as_raw_fd(),
            Stream::Kept(fd) => fd.as_raw_fd(),
        }
    }
}

/// Starts the command and returns its pid. The caller reaps it.
pub fn spawn(spec: Spawn) -> Result<i32, SpawnError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    let error = |source| failed(&program, source);
    if program.is_empty() {
        return Err(error(io::Error::from_raw_os_error(libc::ENOENT)));
    }
    let exec = Exec::new(spec.argv, spec.program, &spec.env, spec.pid_variable).map_err(error)?;
    let cwd = match spec.cwd {
        Some(dir) => Some(c_string(dir.as_os_str().as_bytes()).map_err(error)?),
        None => None,
    };
    let streams = [&spec.stdin, &spec.stdout, &spec.stderr].map(|s| s.as_ref().map_or(-1, AsRawFd::as_raw_fd));
    let mut child = Child {
        exec,
        cwd,
        streams,
        unshare_below: None,
        setup: ChildSetup {
            new_group: spec.new_group,
            take_terminal: spec.take_terminal,
            new_session: spec.new_session,
            controlling_tty: spec.controlling_tty,
            credentials: spec.credentials.clone(),
            limits: child_limits(&spec.limits),
            cgroup_dir: spec.cgroup_dir,
            clone_into: spec.clone_into_cgroup,
            join_v2: false,
            cgroup_procs: spec.cgroup_procs,
            close_fds: !spec.keep_inherited_fds,
            pass: spec.pass,
        },
        error: 0,
        step: None,
    };
    let pid = if spec.keep_inherited_fds || !child.setup.pass.is_empty() {
        clone_vfork(&mut child, false)
    } else {
        with_slots(&mut child)
    };
    let pid = pid.map_err(error)?;
    if child.error != 0 {
        // It has exited already: collect it here, as no one else knows it.
        let _ = super::process::wait_for(pid, false);
        let mut failure = error(io::Error::from_raw_os_error(child.error));
        failure.step = child.step.map(|step| step.describe(spec.cwd));
        return Err(failure);
    }
    Ok(pid)
}

/// Runs the command to its end (this thread waits): how it ended.
pub fn run(spec: Spawn) -> Result<ExitStatus, SpawnError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    let pid = spawn(spec)?;
    wait(pid, &program)
}

/// Runs the command to its end with its stderr read through a pipe (in
/// place of `spec.stderr`): how it ended, and what it wrote there.
pub fn run_capturing_stderr(mut spec: Spawn) -> Result<(ExitStatus, Vec<u8>), SpawnError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    let error = |source| failed(&program, source);
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| error(e.into()))?;
    spec.stderr = Some(write.into());
    // `spec`, with our write end, is gone once spawned: the read below
    // ends when the command and what it left running close theirs.
    let pid = spawn(spec)?;
    let mut text = Vec::new();
    let read = io::Read::read_to_end(&mut std::fs::File::from(read), &mut text);
    let status = wait(pid, &program)?;
    read.map_err(error)?;
    Ok((status, text))
}

/// Waits for the child `pid` that runs `program` to end.
fn wait(pid: i32, program: &std::ffi::OsStr) -> Result<ExitStatus, SpawnError> {
    let ended = super::process::wait_for(pid, false)
        .and_then(|status| status.ok_or_else(|| io::Error::from_raw_os_error(libc::ECHILD)));
    ended.map_err(|source| failed(program, source))
}

/// `program` failed to run, or to be waited for.
fn failed(program: &std::ffi::OsStr, source: io::Error) -> SpawnError {
    SpawnError {
        program: program.to_string_lossy().into_owned(),
        source,
        step: None,
    }
}

/// Everything the child needs, prepared before the clone so that it
/// allocates nothing; it lives in the parent's frame, which the child
/// shares until it execs.
struct Child {
    exec: Exec,
    cwd: Option<CString>,
    /// What becomes the child's 0, 1 and 2 (-1: tend's own).
    streams: [RawFd; 3],
    /// With a shared descriptor table: the child unshares it keeping only
    /// the descriptors below this (where `streams` then are).
    unshare_below: Option<RawFd>,
    setup: ChildSetup,
    /// The child's errno when it could not exec.
    error: i32,
    /// The step before the exec that failed, if one did.
    step: Option<Step>,
}

/// Three descriptors held at low numbers, onto which a spawn puts the
/// child's standard streams: with a shared table, the child then copies
/// only what lies below them (tend's first few) instead of every pipe of
/// every service, and has nothing to close at exec. Behind a lock: the
/// slots hold one spawn's streams at a time.
struct Slots {
    /// What the slots hold between spawns.
    filler: OwnedFd,
    fds: [RawFd; 3],
}

static SLOTS: Mutex<Option<Slots>> = Mutex::new(None);

impl Slots {
    /// The lowest free descriptors from 3 up; `None` when tend has none
    /// to spare (the child then gets a copy of the whole table).
    fn reserve() -> Option<Slots> {
        let filler = dev_null().or_else(|| {
            // SAFETY: epoll_create1 takes flags only; a new fd is returned.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            (fd >= 0).then(|| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        })?;
        let mut fds = [-1; 3];
        for slot in &mut fds {
            // SAFETY: fcntl on a descriptor we own; the new one is ours.
            *slot = unsafe { libc::fcntl(filler.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        }
        if fds.iter().any(|&fd| fd < 0) {
            for fd in fds.into_iter().filter(|&fd| fd >= 0) {
                // SAFETY: closes only the duplicates made just above.
                unsafe { libc::close(fd) };
            }
            return None;
        }
        Some(Slots { filler, fds })
    }

    /// Puts `streams` into the slots; what the child reads instead.
    fn fill(&self, streams: [RawFd; 3]) -> io::Result<[RawFd; 3]> {
        let mut moved = [-1; 3];
        for ((&from, &slot), to) in streams.iter().zip(&self.fds).zip(&mut moved) {
            if from >= 0 {
                // SAFETY: dup3 onto a slot we own, from a descriptor the
                // caller owns; the slot's filler is closed by it.
                check(unsafe { libc::dup3(from, slot, libc::O_CLOEXEC) })?;
                *to = slot;
            }
        }
        Ok(moved)
    }

    /// Gives the slots their filler back (closing the streams' copies).
    fn empty(&self) {
        for &slot in &self.fds {
            // SAFETY: as in `fill`; on failure the slot keeps a stream's
            // copy, closed at the next spawn's fill.
            unsafe { libc::dup3(self.filler.as_raw_fd(), slot, libc::O_CLOEXEC) };
        }
    }
}

/// Spawns with the descriptor table shared and the streams in the slots;
/// without slots, with a copy of the table.
fn with_slots(child: &mut Child) -> io::Result<i32> {
    let mut guard = SLOTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if guard.is_none() {
        *guard = Slots::reserve();
    }
    let Some(slots) = guard.as_ref() else {
        return clone_vfork(child, false);
    };
    let streams = child.streams;
    let result = slots.fill(streams).and_then(|moved| {
        child.streams = moved;
        child.unshare_below = slots.fds.iter().max().map(|top| top.saturating_add(1));
        clone_vfork(child, true)
    });
    slots.empty();
    child.streams = streams;
    result
}

/// Size of the child's stack: it runs only `Child::run`, without
/// recursion or buffers of its own.
const STACK: usize = 64 * 1024;

/// The child's stack: a mapping of its own (not from the heap), with a
/// guard page below it. One is kept for the next spawn: unmapping it made
/// the kernel flush the TLB of every CPU the child ran on, some 30 µs of
/// each restart; the few pages the child touches stay in PID 1's memory.
struct Stack {
    base: *mut libc::c_void,
}

impl Stack {
    const GUARD: usize = 4096;

    fn map() -> io::Result<Stack> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new anonymous mapping, ours until `drop` unmaps it.
        let base = unsafe { libc::mmap(std::ptr::null_mut(), STACK + Self::GUARD, prot, flags, -1, 0) };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base };
        // SAFETY: the lowest page of the mapping made just above.
        check(unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) })?;
        Ok(stack)
    }

    /// Where the stack starts (it grows down): the end of the mapping,
    /// page aligned.
    fn top(&self) -> *mut libc::c_void {
        self.base.cast::<u8>().wrapping_add(STACK + Self::GUARD).cast()
    }

    /// The lowest usable address (above the guard page).
    fn bottom(&self) -> *mut libc::c_void {
        self.base.cast::<u8>().wrapping_add(Self::GUARD).cast()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` made.
        unsafe { libc::munmap(self.base, STACK + Self::GUARD) };
    }
}

/// Clones the child, which runs `child_main` on its own stack in our
/// memory; returns once it has exec'd or exited (`child.error` then set).
fn clone_vfork(child: &mut Child, share_files: bool) -> io::Result<i32> {
    thread_local! {
        static SPARE: std::cell::Cell<Option<Stack>> = const { std::cell::Cell::new(None) };
    }
    // Free again once we are back: CLONE_VFORK holds us until the child
    // has exec'd (it then runs in memory of its own) or exited.
    let stack = match SPARE.with(std::cell::Cell::take) {
        Some(stack) => stack,
        None => Stack::map()?,
    };
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    if share_files {
        flags |= libc::CLONE_FILES;
    }
    // SAFETY: zeroed sigsets are valid; sigfillset and pthread_sigmask
    // write only into them.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: as above.
    unsafe {
        libc::sigfillset(&mut all);
        // No handler of ours may run in the child, on memory it shares
        // with us, before it resets them all: block every signal across
        // the clone (the child empties its mask once they are reset).
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let into = child.setup.cgroup_dir;
    let clone_into = into.filter(|_| child.setup.clone_into);
    let mut cloned = match clone_into {
        Some(dir) => clone3::into_cgroup(child, &stack, flags, dir),
        None => Err(io::Error::from_raw_os_error(libc::ENOSYS)),
    };
    if cloned
        .as_ref()
        .is_err_and(|e| !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM)))
    {
        child.setup.join_v2 = into.is_some();
        let arg: *mut Child = child;
        // SAFETY: `child_main` runs on `stack` (mapped until the child
        // execs or exits, as CLONE_VFORK holds us here until then), reads
        // and writes only `*arg`, which outlives it likewise, and never
        // returns into our frames: it execs or calls _exit.
        let pid = unsafe { libc::clone(child_main, stack.top(), flags, arg.cast()) };
        cloned = if pid < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(pid)
        };
    }
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    SPARE.with(|spare| spare.set(Some(stack)));
    cloned
}

/// `clone3` with `CLONE_INTO_CGROUP`: glibc has no wrapper that runs a
/// function on a new stack, so the few instructions are here.
mod clone3 {
    use std::io;
    use std::os::fd::RawFd;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{child_main, Child, Stack};

    use super::super::ns::{CloneArgs as Args, CLONE_INTO_CGROUP};

    /// Set once the kernel (before 5.7) or a filter said it has no clone3.
    static MISSING: AtomicBool = AtomicBool::new(false);

    /// Clones `child` straight into the cgroup whose directory is `dir`;
    /// ENOSYS where this cannot be done (the caller then clones without).
    pub(super) fn into_cgroup(child: &mut Child, stack: &Stack, flags: i32, dir: RawFd) -> io::Result<i32> {
        if MISSING.load(Ordering::Relaxed) || !cfg!(target_arch = "x86_64") {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        let signal = flags & 0xff;
        let args = Args {
            flags: (flags & !0xff) as u32 as u64 | CLONE_INTO_CGROUP,
            exit_signal: signal as u64,
            stack: stack.bottom() as u64,
            stack_size: super::STACK as u64,
            cgroup: dir as u64,
            ..Args::default()
        };
        let pid = raw(&args, child);
        if pid >= 0 {
            return Ok(pid as i32);
        }
        let errno = pid.unsigned_abs() as i32;
        if matches!(errno, libc::ENOSYS | libc::E2BIG) {
            MISSING.store(true, Ordering::Relaxed);
        }
        Err(io::Error::from_raw_os_error(errno))
    }

    /// The syscall; in the child, on the new stack, a call of
    /// `child_main(child)`, which execs or exits and never returns.
    #[cfg(target_arch = "x86_64")]
    fn raw(args: &Args, child: *mut Child) -> i64 {
        let entry: extern "C" fn(*mut libc::c_void) -> libc::c_int = child_main;
        let ret: i64;
        // SAFETY: clone3 with CLONE_VM | CLONE_VFORK: we wait until the
        // child execs or exits. The child starts with the stack pointer at
        // the top of `args.stack` (16-byte aligned: `call` leaves it as a
        // function expects) and touches nothing of ours but `*child`
        // (alive until then); r12 and r13 survive the syscall in both.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "mov rdi, r12",
                "call r13",
                "ud2",
                "2:",
                inlateout("rax") libc::SYS_clone3 => ret,
                in("rdi") args as *const Args,
                in("rsi") std::mem::size_of::<Args>(),
                in("r12") child,
                in("r13") entry,
                lateout("rcx") _,
                lateout("r11") _,
            );
        }
        ret
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn raw(_: &Args, _: *mut Child) -> i64 {
        -i64::from(libc::ENOSYS)
    }
}

/// The child's entry: everything it does before exec, and the exec.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    let child: *mut Child = arg.cast();
    // SAFETY: `arg` is the `Child` that `clone_vfork` passed, alive and
    // not touched by the parent until we exec or exit.
    let (step, errno) = unsafe { (*child).run() };
    // SAFETY: as above; the parent reads them once we are gone.
    unsafe {
        std::ptr::write_volatile(std::ptr::addr_of_mut!((*child).step), step);
        std::ptr::write_volatile(std::ptr::addr_of_mut!((*child).error), errno);
        libc::_exit(127)
    }
}

impl Child {
    /// In the child: set up and exec; returns only the errno of a failure
    /// and the step before the exec that failed, if one did.
    /// Async-signal-safe, no allocation, no glibc call that would act on
    /// the parent's threads (ids are set through raw syscalls).
    fn run(&mut self) -> (Option<Step>, i32) {
        match self.prepare() {
            Ok(()) => (None, self.exec.exec()),
            Err((step, e)) => (Some(step), e.raw_os_error().unwrap_or(libc::EINVAL)),
        }
    }

    fn prepare(&mut self) -> Result<(), (Step, io::Error)> {
        // Its cgroups first, while the table is still shared: the
        // `tasks` descriptors are not kept below the slots.
        self.setup.join_cgroups().map_err(at(Step::Cgroup))?;
        self.streams().map_err(at(Step::Streams))?;
        self.setup.apply(self.cwd.as_deref())
    }

    fn streams(&mut self) -> io::Result<()> {
        // SAFETY: (for the block) plain syscalls on integers.
        unsafe {
            if let Some(below) = self.unshare_below {
                unshare_files_below(below)?;
            }
            for (target, from) in (0..3).zip(self.streams) {
                if from < 0 {
                    continue;
                }
                // A stream given at 0, 1 or 2 may be overwritten by an
                // earlier dup2: copy it above them first.
                let from = if from < 3 {
                    let above = libc::fcntl(from, libc::F_DUPFD_CLOEXEC, 3);
                    check(above)?;
                    above
                } else {
                    from
                };
                check(libc::dup2(from, target))?;
            }
        }
        Ok(())
    }
}

/// Tags a failure of the child with its step.
fn at(step: Step) -> impl Fn(io::Error) -> (Step, io::Error) {
    move |e| (step, e)
}

/// Gives the child a descriptor table of its own holding only tend's
/// descriptors below `below` (`close_range` with `CLOSE_RANGE_UNSHARE`
/// copies no more than those), or a whole copy on kernels before 5.9.
///
/// # Safety
/// Plain syscalls on integers.
unsafe fn unshare_files_below(below: RawFd) -> io::Result<()> {
    let rc = libc::syscall(libc::SYS_close_range, below as u32, u32::MAX, libc::CLOSE_RANGE_UNSHARE);
    if rc == 0 {
        return Ok(());
    }
    check(libc::unshare(libc::CLONE_FILES))
}

/// The child's setup between clone and exec, prepared before the clone.
struct ChildSetup {
    new_group: bool,
    take_terminal: bool,
    new_session: bool,
    controlling_tty: bool,
    credentials: Option<Credentials>,
    limits: Vec<(i32, u64, u64)>,
    cgroup_dir: Option<RawFd>,
    clone_into: bool,
    /// The child writes itself into `cgroup_dir` (it was not cloned into it).
    join_v2: bool,
    cgroup_procs: Vec<RawFd>,
    close_fds: bool,
    /// As `Spawn::pass`; the child overwrites the descriptors with its
    /// copies of them (the parent only frees the vector).
    pass: Vec<(RawFd, i32)>,
}

/// The `RLIMIT_NOFILE` tend was started with, where `raise_nofile_limit`
/// raised it.
static ORIGINAL_NOFILE: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises tend's own `RLIMIT_NOFILE` soft limit to the hard one, so a busy
/// PID 1 does not run out of descriptors; children get the original soft
/// limit back (many programs break with a huge one: `select()` stops at
/// 1024), as systemd does. Call once at start, before spawning anything.
pub fn raise_nofile_limit() -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    if limit.rlim_cur == limit.rlim_max {
        // Nothing raised: a child inherits the limit as it is, with no
        // `setrlimit` of its own before exec.
        return Ok(());
    }
    let original = (limit.rlim_cur, limit.rlim_max);
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct we own.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
    let _ = ORIGINAL_NOFILE.set(original);
    Ok(())
}

/// The limits a child gets: the original `RLIMIT_NOFILE` soft limit first
/// (its hard limit is unchanged), then the unit's own, which win.
fn child_limits(unit: &[(i32, u64, u64)]) -> Vec<(i32, u64, u64)> {
    let nofile = libc::RLIMIT_NOFILE as i32;
    let mut limits = Vec::new();
    if let Some(&(soft, hard)) = ORIGINAL_NOFILE.get() {
        if !unit.iter().any(|&(r, _, _)| r == nofile) {
            limits.push((nofile, soft, hard));
        }
    }
    limits.extend_from_slice(unit);
    limits
}

impl ChildSetup {
    /// In the child: writes it into each of its cgroups.
    fn join_cgroups(&self) -> io::Result<()> {
        if let (true, Some(dir)) = (self.join_v2, self.cgroup_dir) {
            // SAFETY: openat, write and close on descriptors we hold and a
            // static path.
            unsafe {
                let procs = libc::openat(dir, c"cgroup.procs".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                check(procs)?;
                let written = libc::write(procs, b"0".as_ptr().cast(), 1) as i32;
                libc::close(procs);
                check(written)?;
            }
        }
        for &fd in &self.cgroup_procs {
            // SAFETY: a write from a static buffer to a descriptor we hold.
            check(unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } as i32)?;
        }
        Ok(())
    }

    /// Runs in the child between clone and exec. Async-signal-safe only.
    /// The working directory is entered as the user the child becomes, as
    /// systemd's `WorkingDirectory=` is.
    fn apply(&mut self, cwd: Option<&std::ffi::CStr>) -> Result<(), (Step, io::Error)> {
        // SAFETY: (for the block) plain syscalls on integers, on memory
        // owned by `self` (alive until exec), and on stack data.
        unsafe {
            if self.new_session {
                check(libc::setsid()).map_err(at(Step::Session))?;
                if self.controlling_tty {
                    // A session leader without a terminal takes its stdin's
                    // (0: never steal it from another session).
                    check(libc::ioctl(0, libc::TIOCSCTTY, 0)).map_err(at(Step::Session))?;
                }
            }
            // Asked before the group changes, and only where it matters
            // (two system calls of every service's spawn otherwise).
            let had_terminal = self.new_group && self.take_terminal && {
                let foreground = libc::tcgetpgrp(0);
                foreground >= 0 && foreground == libc::getpgrp()
            };
            if self.new_group && !self.new_session {
                libc::setpgid(0, 0);
            }
            if had_terminal {
                // A background group may not change the foreground without
                // ignoring SIGTTOU first; dispositions are reset just below.
                set_disposition(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
            }
            for &(resource, soft, hard) in &self.limits {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                check(libc::setrlimit(resource as _, &limit)).map_err(at(Step::Limits))?;
            }
            if let Some(c) = &self.credentials {
                // Raw syscalls: glibc's wrappers would signal the threads
                // of tend, whose memory the child shares. Groups first:
                // once the uid changes, they can't be set.
                let groups = c.groups.as_ptr();
                check(libc::syscall(libc::SYS_setgroups, c.groups.len(), groups) as i32).map_err(at(Step::Groups))?;
                check(libc::syscall(libc::SYS_setgid, c.gid) as i32).map_err(at(Step::GroupId))?;
                check(libc::syscall(libc::SYS_setuid, c.uid) as i32).map_err(at(Step::UserId))?;
            }
            if let Some(dir) = cwd {
                check(libc::chdir(dir.as_ptr())).map_err(at(Step::WorkingDir))?;
            }
            if self.close_fds {
                close_inherited_fds();
            }
            place(&mut self.pass).map_err(at(Step::Descriptors))?;
            // Dispositions before the mask: a signal unblocked while tend's
            // handler is still installed would run it here, in the child.
            let ignored_here: &[i32] = if had_terminal { &[libc::SIGTTOU] } else { &[] };
            super::dispositions::reset_in_child(ignored_here);
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check(libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut())).map_err(at(Step::Mask))?;
        }
        Ok(())
    }
}

/// Marks every descriptor from 3 up close-on-exec, so the program starts
/// with 0, 1 and 2 only. Async-signal-safe.
///
/// # Safety
/// Plain syscalls on integers.
unsafe fn close_inherited_fds() {
    let all = libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    if all == 0 {
        return;
    }
    // Before Linux 5.11: one fcntl per possible descriptor below the limit.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    let top = limit.rlim_cur.min(1 << 20) as i32;
    for fd in 3..top {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// Puts each passed descriptor at its number, open across exec. Copies go
/// above every number first, so that placing one never overwrites a
/// source not yet placed; the copies close at exec. Async-signal-safe.
///
/// # Safety
/// Plain syscalls on integers.
unsafe fn place(pass: &mut [(RawFd, i32)]) -> io::Result<()> {
    let above = pass
        .iter()
        .map(|&(_, number)| number)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    for (fd, _) in pass.iter_mut() {
        *fd = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, above);
        check(*fd)?;
    }
    for &(copy, number) in pass.iter() {
        check(libc::dup2(copy, number))?;
    }
    Ok(())
}

/// What `execvp` with the command's whole environment does, prepared
/// before the clone: the program's candidate paths (from the `PATH` the
/// command gets), its arguments, its environment, with room for one more
/// variable that the child may set to its own pid.
struct Exec {
    /// Where to look for the program, in order, each NUL-terminated.
    candidates: Vec<u8>,
    /// Owns what `argv_ptrs` and `env_ptrs` point into.
    _strings: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// `/bin/sh`, a candidate, then the arguments: for a file without a
    /// `#!` line (ENOEXEC), which execvp gives to the shell.
    sh_ptrs: Vec<*const libc::c_char>,
    /// The environment's entries, NULL-terminated; empty when the command
    /// changes none of tend's own, which the exec then gets as it is.
    env_ptrs: Vec<*const libc::c_char>,
    /// `NAME=` then room for the digits and the NUL, when asked.
    pid_entry: Option<(Vec<u8>, usize)>,
}

const SH: &std::ffi::CStr = c"/bin/sh";

impl Exec {
    fn new(
        argv: &[OsString],
        program: Option<&Path>,
        env: &[(OsString, OsString)],
        pid_name: Option<&str>,
    ) -> io::Result<Exec> {
        // tend's own environment, then the command's variables over it (the
        // last of a name wins), as std would; the pid variable last, over
        // both. tend's own entries are not copied: the exec gets pointers
        // to the C library's.
        let set: Vec<&(OsString, OsString)> = env
            .iter()
            .enumerate()
            .filter(|(i, (key, _))| !env.iter().skip(i.saturating_add(1)).any(|(k, _)| k == key))
            .map(|(_, var)| var)
            .collect();
        let argv: Vec<CString> = argv.iter().map(|a| c_string(a.as_bytes())).collect::<Result<_, _>>()?;
        let argv0 = argv.first().map(|p| p.as_bytes()).unwrap_or_default();
        let candidates = match program.filter(|_| !argv0.contains(&b'/')) {
            // A path with a `/` is the one candidate.
            Some(found) => candidates(found.as_os_str().as_bytes(), None)?,
            None => {
                let path = match set.iter().find(|(k, _)| k == "PATH") {
                    Some((_, value)) => Some(value.as_bytes()),
                    None => inherited_environment().find_map(|entry| entry.to_bytes().strip_prefix(b"PATH=")),
                };
                candidates(argv0, path)?
            }
        };
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut sh_ptrs = vec![SH.as_ptr(), std::ptr::null()];
        sh_ptrs.extend(argv_ptrs.iter().skip(1));
        if set.is_empty() && pid_name.is_none() {
            // tend's own environment, unchanged: nothing to copy or point at.
            return Ok(Exec {
                candidates,
                _strings: argv,
                argv_ptrs,
                sh_ptrs,
                env_ptrs: Vec::new(),
                pid_entry: None,
            });
        }
        let replaced =
            |key: &[u8]| set.iter().any(|(k, _)| k.as_bytes() == key) || pid_name.is_some_and(|n| n.as_bytes() == key);
        let inherited = inherited_environment().filter(|entry| !replaced(name_of(entry.to_bytes())));
        let mut env: Vec<CString> = Vec::with_capacity(set.len());
        for (key, value) in &set {
            if pid_name.is_some_and(|n| n.as_bytes() == key.as_bytes()) {
                continue;
            }
            env.push(c_string(&[key.as_bytes(), b"=", value.as_bytes()].concat())?);
        }
        let pid_entry = pid_name.map(|name| {
            let mut entry = format!("{name}=").into_bytes();
            let name_len = entry.len();
            entry.resize(name_len.saturating_add(24), 0);
            (entry, name_len)
        });
        let every = inherited.chain(env.iter().map(CString::as_c_str));
        let mut env_ptrs: Vec<_> = every.map(CStr::as_ptr).collect();
        if let Some((entry, _)) = &pid_entry {
            env_ptrs.push(entry.as_ptr().cast());
        }
        env_ptrs.push(std::ptr::null());
        let mut strings = argv;
        strings.extend(env);
        Ok(Exec {
            candidates,
            _strings: strings,
            argv_ptrs,
            sh_ptrs,
            env_ptrs,
            pid_entry,
        })
    }

    /// In the child: writes its pid into the entry if asked and execs;
    /// returns only the errno of a failed exec, as execvp would set it.
    /// Async-signal-safe, no allocation.
    fn exec(&mut self) -> i32 {
        if let Some((entry, name_len)) = &mut self.pid_entry {
            // SAFETY: getpid has no preconditions.
            write_pid(entry, *name_len, unsafe { libc::getpid() }.unsigned_abs());
        }
        let env = match self.env_ptrs.is_empty() {
            // SAFETY: reading the C library's `environ` pointer (see
            // `inherited_environment`).
            true => unsafe { libc::environ }.cast_const().cast(),
            false => self.env_ptrs.as_ptr(),
        };
        let mut denied = false;
        let mut last = libc::ENOENT;
        for path in self.candidates.split_inclusive(|b| *b == 0) {
            // SAFETY: NUL-terminated strings and pointer arrays in live
            // buffers (`environ` included).
            unsafe { libc::execve(path.as_ptr().cast(), self.argv_ptrs.as_ptr(), env) };
            last = errno();
            match last {
                libc::EACCES => denied = true,
                libc::ENOEXEC => {
                    if let Some(slot) = self.sh_ptrs.get_mut(1) {
                        *slot = path.as_ptr().cast();
                    }
                    // SAFETY: as above.
                    unsafe { libc::execve(SH.as_ptr(), self.sh_ptrs.as_ptr(), env) };
                    return errno();
                }
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return last,
            }
        }
        if denied {
            libc::EACCES
        } else {
            last
        }
    }
}

/// The paths execvp would try for `program`: itself when it holds a `/`,
/// else each directory of `path` (the default search path when unset; an
/// empty entry is the working directory).
/// One buffer, each path NUL-terminated: the child walks it without
/// allocating.
fn candidates(program: &[u8], path: Option<&[u8]>) -> io::Result<Vec<u8>> {
    // A program with a `/` is tried as it is, as an empty directory is.
    let dirs: &[u8] = match program.contains(&b'/') {
        true => b"",
        false => path.unwrap_or(b"/bin:/usr/bin"),
    };
    if program.contains(&0) || dirs.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut paths = Vec::new();
    for dir in dirs.split(|&b| b == b':') {
        if !dir.is_empty() {
            paths.extend_from_slice(dir);
            paths.push(b'/');
        }
        paths.extend_from_slice(program);
        paths.push(0);
    }
    Ok(paths)
}

/// The name of an environment entry: what comes before its first `=`.
fn name_of(entry: &[u8]) -> &[u8] {
    entry.split(|b| *b == b'=').next().unwrap_or_default()
}

/// tend's own environment, as the C library keeps it (`NAME=value`).
/// Valid until the environment is changed: PID 1 has one thread, and does
/// not change it between this call and the exec that uses the entries.
fn inherited_environment<'a>() -> impl Iterator<Item = &'a CStr> {
    // SAFETY: reading the C library's `environ` pointer.
    let mut next = unsafe { libc::environ }.cast_const();
    std::iter::from_fn(move || {
        // SAFETY: `environ` is the C library's NULL-terminated array of
        // NUL-terminated strings; nothing changes it while we read (see
        // above).
        unsafe {
            if next.is_null() || (*next).is_null() {
                return None;
            }
            let entry = CStr::from_ptr(*next);
            next = next.add(1);
            Some(entry)
        }
    })
}

/// Writes `pid` in decimal after `NAME=` in `entry`, NUL-terminated.
/// Async-signal-safe.
fn write_pid(entry: &mut [u8], name_len: usize, mut pid: u32) {
    let mut digits = [0u8; 10];
    let mut n = 0;
    while n == 0 || pid > 0 {
        if let Some(d) = digits.get_mut(n) {
            *d = b'0'.saturating_add((pid % 10) as u8);
        }
        pid /= 10;
        n = n.saturating_add(1);
    }
    let tail = entry.get_mut(name_len..).unwrap_or_default();
    for (slot, digit) in tail.iter_mut().zip(digits.iter().take(n).rev()) {
        *slot = *digit;
    }
    if let Some(end) = tail.get_mut(n) {
        *end = 0;
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: i32) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// # Safety
/// Async-signal-safe; `handler` must be `SIG_DFL` or `SIG_IGN`.
unsafe fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    let mut action: libc::sigaction = std::mem::zeroed();
    action.sa_sigaction = handler;
    libc::sigaction(sig, &action, std::ptr::null_mut());
}

/// `/dev/null` opened for a child's standard stream; `None` where the
/// environment has no /dev/null yet (the stream is then inherited).
pub fn dev_null() -> Option<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok()
        .map(OwnedFd::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries the exec would get, as text, without the final NULL.
    fn environment(exec: &Exec) -> Vec<String> {
        let entries = exec.env_ptrs.iter().take_while(|p| !p.is_null());
        // SAFETY: each pointer is a NUL-terminated entry `exec` keeps alive.
        let text = entries.map(|p| unsafe { CStr::from_ptr(*p) }.to_string_lossy().into_owned());
        text.collect()
    }

    #[test]
    fn the_candidates_are_one_buffer_in_path_order() {
        let paths = candidates(b"sleep", Some(b"/a::/b")).unwrap();
        assert_eq!(paths, b"/a/sleep\0sleep\0/b/sleep\0");
        assert_eq!(candidates(b"./x", Some(b"/a")).unwrap(), b"./x\0");
        assert_eq!(candidates(b"x", None).unwrap(), b"/bin/x\0/usr/bin/x\0");
        let bad = candidates(b"x", Some(b"/a\0b")).unwrap_err();
        assert_eq!(bad.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn a_program_found_already_is_the_one_candidate_and_argv0_stays() {
        let set = [(OsString::from("PATH"), OsString::from("/a:/b"))];
        let found = Path::new("/b/sleep");
        let exec = Exec::new(&["sleep".into(), "1".into()], Some(found), &set, None).unwrap();
        assert_eq!(exec.candidates, b"/b/sleep\0");
        // SAFETY: argv_ptrs points into `_strings`, alive with `exec`.
        let argv0 = unsafe { CStr::from_ptr(exec.argv_ptrs[0]) };
        assert_eq!(argv0.to_bytes(), b"sleep");
        let looked_up = Exec::new(&["sleep".into()], None, &set, None).unwrap();
        assert_eq!(looked_up.candidates, b"/a/sleep\0/b/sleep\0");
        // A command naming a path is exec'd as written.
        let as_written = Exec::new(&["./sleep".into()], Some(found), &set, None).unwrap();
        assert_eq!(as_written.candidates, b"./sleep\0");
    }

    #[test]
    fn a_command_that_changes_no_variable_gets_tends_own_environment_as_it_is() {
        let exec = Exec::new(&["true".into()], None, &[], None).unwrap();
        assert!(exec.env_ptrs.is_empty());
        assert!(exec.pid_entry.is_none());
        let path = std::env::var_os("PATH").unwrap_or_default();
        let first = path.as_bytes().split(|b| *b == b':').next().unwrap_or_default();
        assert!(
            exec.candidates.starts_with(first),
            "{:?}",
            String::from_utf8_lossy(&exec.candidates)
        );
    }

    #[test]
    fn the_commands_variables_over_tends_own_the_last_of_a_name_winning() {
        let inherited: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        let home = std::env::var("HOME").unwrap_or_default();
        let set: Vec<(OsString, OsString)> = [("HOME", "/first"), ("TEND_SPAWN_TEST", "1"), ("HOME", "/last")]
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let exec = Exec::new(&["true".into()], None, &set, Some("HOME")).unwrap();
        let env = environment(&exec);
        // The pid variable goes last, over both (filled in by the child).
        assert_eq!(env.last().map(String::as_str), Some("HOME="));
        assert!(!env.iter().any(|e| e.starts_with("HOME=/")), "{home}: {env:?}");
        let exec = Exec::new(&["true".into()], None, &set, None).unwrap();
        let env = environment(&exec);
        let homes: Vec<&String> = env.iter().filter(|e| e.starts_with("HOME=")).collect();
        assert_eq!(homes, ["HOME=/last"]);
        assert!(env.contains(&"TEND_SPAWN_TEST=1".to_string()));
        for entry in inherited.iter().filter(|e| !e.starts_with("HOME=")) {
            assert!(env.contains(entry), "{entry} inherited: {env:?}");
        }
        assert_eq!(env.len(), inherited.len() - usize::from(!home.is_empty()) + 2);
    }

    #[test]
    fn a_run_gives_the_status_and_what_the_command_wrote_to_stderr() {
        let argv: Vec<OsString> = ["sh", "-c", "echo out; echo oops >&2; exit 3"].map(Into::into).to_vec();
        let spec = Spawn {
            argv: &argv,
            stdout: dev_null().map(Into::into),
            ..Default::default()
        };
        let (status, err) = run_capturing_stderr(spec).unwrap();
        assert_eq!((status, err.as_slice()), (ExitStatus::Code(3), &b"oops\n"[..]));
        let argv: Vec<OsString> = vec!["/nonexistent/tool".into()];
        let e = run(Spawn {
            argv: &argv,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!((e.program.as_str(), e.exit_code()), ("/nonexistent/tool", 127));
    }

    #[test]
    fn passed_descriptors_are_at_their_numbers_and_nothing_else_is_open() {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let null = dev_null().unwrap();
        // Each goes to the other's number: placed one by one, the first
        // would overwrite the second's source.
        let (pipe_at, null_at) = (null.as_raw_fd(), write.as_raw_fd());
        // bash: dash takes single-digit descriptors only. `; true`: ls runs
        // in a child of the shell, and lists the shell's descriptors.
        let script = format!("readlink /proc/$$/fd/{null_at} >&{pipe_at}; ls /proc/$$/fd >&{pipe_at}; true");
        let argv: Vec<OsString> = ["bash", "-c", &script].map(Into::into).to_vec();
        let spec = Spawn {
            argv: &argv,
            stdin: dev_null().map(Into::into),
            stdout: dev_null().map(Into::into),
            pass: vec![(write.as_raw_fd(), pipe_at), (null.as_raw_fd(), null_at)],
            ..Default::default()
        };
        assert_eq!(run(spec).unwrap(), ExitStatus::Code(0));
        drop(write);
        let mut text = String::new();
        io::Read::read_to_string(&mut std::fs::File::from(read), &mut text).unwrap();
        let mut want: Vec<String> = [0, 1, 2, pipe_at, null_at].iter().map(i32::to_string).collect();
        want.sort();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("/dev/null"));
        assert_eq!(lines.collect::<Vec<_>>(), want);
    }
}
