//! Process control: signals, reaping, the subreaper and parent-death flags,
//! and finding one's descendants in `/proc`.

use std::io;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// The kernel's OOM killer killed it (or a process of its cgroup, and
    /// it then failed): `code` as [`ExitStatus::code`] gave, and the
    /// service's `memory-max`, if it has one.
    OomKilled { code: i32, memory_max: Option<u64> },
}

impl ExitStatus {
    /// The shell's convention: the exit code, or 128+N when killed by signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
            ExitStatus::OomKilled { code, .. } => code,
        }
    }

    /// Exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by {}", crate::signal::name(*s)),
            ExitStatus::OomKilled { memory_max: None, .. } => write!(f, "killed by the OOM killer"),
            ExitStatus::OomKilled {
                memory_max: Some(max), ..
            } => {
                let max = crate::resources::show_size(*max);
                write!(f, "killed by the OOM killer (memory-max {max})")
            }
        }
    }
}

/// What Rust's runtime does before `main` and tend needs, for tend starts
/// at a C `main` of its own (see main.rs: the runtime's start-up would link
/// glibc's scanf and float parsing into the static binary only to find the
/// main thread's stack): fds 0-2 open, on /dev/null where they were closed
/// (so that no socket or file of tend's takes their numbers), and SIGPIPE
/// ignored (a reader gone is an EPIPE error, not death). Children get
/// SIGPIPE back at its default (sys::spawn).
pub fn startup() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the flags of a number, open or not.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        // Opened in turn from 0, /dev/null takes the lowest closed number:
        // `fd`. Kept open for good, and inherited by children as a stdio is.
        // SAFETY: a NUL-terminated path; the fd returned is left open.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } == -1 {
            break;
        }
    }
    // SAFETY: SIG_IGN installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Closes every descriptor above stderr that this process was started
/// with: `tend boot`'s PID 1 is a clone of the launcher, and whatever the
/// caller left open (a pipe, a socket, a directory of the host) would be
/// open in the container, as systemd-nspawn also refuses. Call it first,
/// before tend opens anything of its own.
pub fn close_inherited() {
    // SAFETY: close_range takes integers and only closes descriptors;
    // nothing of ours is open yet above stderr.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
}

/// glibc's own `assert` failed (the static binary's `__assert_fail`, see
/// main.rs): the line glibc prints, `PROG: FILE:LINE: FUNCTION: Assertion
/// `EXPR' failed.`, written in one `write(2)` from the stack (the heap may
/// be what failed), then abort as glibc does. glibc's own version formats
/// through wide-character `printf` and gettext: 30 KiB of the static
/// binary for a line tend, which never sets a locale, prints untranslated
/// anyway.
///
/// # Safety
/// Each pointer is null or a NUL-terminated string (glibc's `assert`
/// passes string literals and `__func__`).
pub unsafe fn assertion_failed(
    assertion: *const libc::c_char,
    file: *const libc::c_char,
    line: libc::c_uint,
    function: *const libc::c_char,
) -> ! {
    extern "C" {
        static __progname: *const libc::c_char;
    }
    let text = |p: *const libc::c_char| -> &[u8] {
        match p.is_null() {
            true => b"",
            // SAFETY: non-null and NUL-terminated, as the caller promises.
            false => unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes(),
        }
    };
    // SAFETY: glibc sets `__progname` before main and never frees it.
    let program = text(unsafe { __progname });
    let mut line_text = [0u8; 10];
    let mut at = line_text.len();
    let mut n = line;
    loop {
        at -= 1;
        line_text[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let function = text(function);
    let parts: [&[u8]; 11] = [
        program,
        if program.is_empty() { b"" } else { b": " },
        text(file),
        b":",
        &line_text[at..],
        b": ",
        function,
        if function.is_empty() { b"" } else { b": " },
        b"Assertion `",
        text(assertion),
        b"' failed.\n",
    ];
    let mut buf = [0u8; 1024];
    let mut len = 0;
    for part in parts {
        let n = part.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&part[..n]);
        len += n;
    }
    // SAFETY: writes `len` initialised bytes of a local buffer to fd 2.
    unsafe { libc::write(2, buf.as_ptr().cast(), len) };
    std::process::abort()
}

/// What one drain of `waitpid` found.
#[derive(Debug, Default)]
pub struct Reaped {
    pub exited: Vec<(i32, ExitStatus)>,
    /// `ECHILD`: no child is left at all (so, as a subreaper or PID 1, no
    /// descendant either).
    pub no_children: bool,
}

/// Reaps every child that has ended, until none is left to reap now.
pub fn reap() -> Reaped {
    let mut exited = Vec::new();
    let no_children = reap_each(&mut |pid, status| exited.push((pid, status)));
    Reaped { exited, no_children }
}

/// The same, handing each to `each` (a storm's drain allocates nothing);
/// whether no child is left at all (`ECHILD`).
///
/// No cap on the loop: a zombie storm is drained in one go.
pub fn reap_each(each: &mut dyn FnMut(i32, ExitStatus)) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int through a valid pointer to a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            if let Some(ended) = decode(status) {
                each(pid, ended);
            }
            continue;
        }
        if pid == 0 {
            return false;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return true,
            _ => tracing::warn!("waitpid: {}", io::Error::last_os_error()),
        }
        return false;
    }
}

/// Waits for the child `pid` to end (or, with `nohang`, checks whether it
/// has): `None` while it runs.
pub fn wait_for(pid: i32, nohang: bool) -> io::Result<Option<ExitStatus>> {
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int through a valid pointer to a local.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        if rc == 0 {
            return Ok(None);
        }
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if let Some(ended) = decode(status) {
            return Ok(Some(ended));
        }
    }
}

/// How a waitpid status says the process ended; `None` for stop and
/// continue reports, which are no end.
fn decode(status: i32) -> Option<ExitStatus> {
    if libc::WIFEXITED(status) {
        Some(ExitStatus::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitStatus::Signal(libc::WTERMSIG(status)))
    } else {
        None
    }
}

/// Sends `signal` to `pid` (a negative pid names a process group, -1 every
/// process we may signal). ESRCH, a target already gone, is not an error.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        e => Err(e),
    }
}

/// Makes orphaned descendants be reparented to us instead of to PID 1, so we
/// can reap them when we are not PID 1 ourselves.
pub fn set_child_subreaper() -> io::Result<()> {
    prctl_set(libc::PR_SET_CHILD_SUBREAPER, 1)
}

/// Asks the kernel to send us `signal` when our parent dies (tini's `-p`).
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    prctl_set(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong)
}

/// Makes this process not dumpable: no core file, and only a holder of
/// CAP_SYS_PTRACE where it was made (the host, for a machine's PID 1) may
/// ptrace it or open its `/proc/PID/exe`, `environ`, `mem` and fds. A
/// process it execs is dumpable again (execve resets it).
pub fn set_not_dumpable() -> io::Result<()> {
    prctl_set(libc::PR_SET_DUMPABLE, 0)
}

/// `prctl(option, value)` for an option that takes one integer.
fn prctl_set(option: libc::c_int, value: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the options passed here take an integer, no pointers; the
    // unused arguments are zero.
    let rc = unsafe { libc::prctl(option, value, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The pids of every descendant of `root` (not `root` itself), read from
/// `/proc`. Fails when `/proc` is not the procfs of our own PID namespace,
/// since its pids would then name other processes.
pub fn descendants(root: i32) -> io::Result<Vec<i32>> {
    let own = std::fs::read_link("/proc/self")?;
    if own.to_str().and_then(|s| s.parse::<u32>().ok()) != Some(std::process::id()) {
        return Err(io::Error::other("/proc belongs to another PID namespace"));
    }
    let mut table = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        // A process may end between readdir and read: skip it.
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
            table.extend(parse_stat(&stat));
        }
    }
    Ok(descendants_in(root, &table))
}

/// `(pid, ppid)` from the text of `/proc/PID/stat`. The command name may hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<(i32, i32)> {
    let pid = stat.split_once(' ')?.0.parse().ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((pid, ppid))
}

/// Every pid below `root` in a `(pid, ppid)` table, breadth first.
pub fn descendants_in(root: i32, table: &[(i32, i32)]) -> Vec<i32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in table {
            if ppid == parent && pid != root && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a child writes to stderr before it is killed by SIGABRT.
    fn aborted_with(act: unsafe fn()) -> String {
        let (read, write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child calls only async-signal-safe functions (dup2,
        // write, abort) before it dies.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: fds of this process; `act` aborts.
                unsafe {
                    libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&write), 2);
                    act();
                    libc::_exit(0)
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::fs::File::from(read), &mut text).unwrap();
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert!(
                    matches!(
                        status,
                        nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::SIGABRT, _)
                    ),
                    "{status:?}"
                );
                text
            }
        }
    }

    /// tend's `__assert_fail` (the static binary's) prints the line of
    /// glibc's own (this test binary's), then aborts as it does.
    #[test]
    fn a_failed_glibc_assertion_prints_glibcs_line_and_aborts() {
        extern "C" {
            fn __assert_fail(
                a: *const libc::c_char,
                f: *const libc::c_char,
                l: libc::c_uint,
                func: *const libc::c_char,
            ) -> !;
        }
        unsafe fn glibcs() {
            // SAFETY: NUL-terminated literals.
            unsafe { __assert_fail(c"x > 0".as_ptr(), c"a.c".as_ptr(), 42, c"main".as_ptr()) }
        }
        unsafe fn ours() {
            // SAFETY: NUL-terminated literals.
            unsafe { assertion_failed(c"x > 0".as_ptr(), c"a.c".as_ptr(), 42, c"main".as_ptr()) }
        }
        let program = std::env::current_exe().unwrap();
        let program = program.file_name().unwrap().to_str().unwrap().to_string();
        let expected = format!("{program}: a.c:42: main: Assertion `x > 0' failed.\n");
        assert_eq!(aborted_with(glibcs), expected);
        assert_eq!(aborted_with(ours), expected);
    }

    #[test]
    fn stat_with_odd_command_names() {
        let stat = "42 (a b) c)) S 7 42 42 0 -1 4194560 0 0";
        assert_eq!(parse_stat(stat), Some((42, 7)));
        assert_eq!(parse_stat("1 (init) S 0 1 1"), Some((1, 0)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("5 (x"), None);
    }

    #[test]
    fn descendants_walk_the_whole_tree() {
        let table = [(1, 0), (10, 1), (11, 10), (12, 11), (20, 1), (30, 99)];
        let mut got = descendants_in(10, &table);
        got.sort();
        assert_eq!(got, vec![11, 12]);
        let mut all = descendants_in(1, &table);
        all.sort();
        assert_eq!(all, vec![10, 11, 12, 20]);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by `wait_for`, the subject here
    fn one_child_is_reaped_alone_and_only_once_it_has_exited() {
        let reap = |pid| wait_for(pid, true).ok().flatten().map(|ended| (pid, ended));
        let child = std::process::Command::new("sh")
            .args(["-c", "read x; exit 3"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert_eq!(reap(pid), None, "still running");
        drop(child.stdin);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let reaped = loop {
            if let Some(reaped) = reap(pid) {
                break reaped;
            }
            assert!(std::time::Instant::now() < deadline, "not reaped");
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert_eq!(reaped, (pid, ExitStatus::Code(3)));
        assert_eq!(reap(pid), None, "gone");
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(ExitStatus::Code(3).code(), 3);
        assert_eq!(ExitStatus::Signal(15).code(), 143);
        assert_eq!(ExitStatus::Signal(9).to_string(), "killed by SIGKILL");
        let oom = ExitStatus::OomKilled {
            code: 137,
            memory_max: Some(64 << 20),
        };
        assert_eq!(oom.to_string(), "killed by the OOM killer (memory-max 64M)");
        assert_eq!(oom.code(), 137);
        assert!(!oom.success());
    }
}
