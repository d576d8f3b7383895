//! What validation needs to know of the environment the services will run
//! in, through the [`Host`] trait: whether a program exists and is
//! executable, the text of an env file, the user database and the limits
//! that can be set. [`CheckEnv`] asks the real filesystem below a root;
//! [`Fixture`] answers from data, so validation is tested without the
//! host's `/bin`. Finding a command as `execvp` would is pure, on top.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::Problem;
use super::limits::{Ceilings, Resource, INFINITY};
use super::resources::Support;
use super::users::UserDb;

/// `PATH` where neither the unit nor tend's own environment sets one (the
/// one of systemd and Docker).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `PATH` a service inherits where its unit sets none: tend's own,
/// else (unset or empty) [`DEFAULT_PATH`]. Units are checked, and a booted
/// init's arguments told from a command, by this one rule.
pub fn inherited_path() -> String {
    std::env::var("PATH")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.into())
}

/// `CAP_SYS_RESOURCE`: the capability to raise hard limits.
const CAP_SYS_RESOURCE: u32 = 24;

/// A path inside the environment, as [`Host::entry`] sees it (a final
/// symlink not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        executable: bool,
    },
    Link(PathBuf),
    /// A directory, a device, a socket...
    Other,
}

/// The environment units are checked against.
pub trait Host {
    /// The environment's `/` on this host, for messages.
    fn root(&self) -> &Path;
    /// What is at `path` inside the environment; `None` if nothing.
    fn entry(&self, path: &Path) -> Option<Entry>;
    /// The text of the file at `path` on this host (an env file).
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The bytes of the file at `path` on this host (a time zone file).
    fn read_bytes(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.read(path).map(String::into_bytes)
    }
    /// The environment's users and groups.
    fn users(&self) -> &UserDb;
    /// Above these, a unit's hard limits cannot be set.
    fn ceilings(&self) -> &Ceilings;
    /// Which cgroup controllers units may bound.
    fn cgroups(&self) -> &Support;
    /// The `PATH` a service gets when its unit sets none: tend's own, which
    /// its services inherit, as an image's `ENV PATH` reaches them.
    fn path(&self) -> &str {
        DEFAULT_PATH
    }
}

/// The real environment below a root directory: `tend init` and `tend
/// check` use [`CheckEnv::for_root`].
#[derive(Debug, Clone, Default)]
pub struct CheckEnv {
    /// Commands, env files given as absolute paths, and stdio files are
    /// looked up below this directory (`/` when tend runs the units).
    pub root: PathBuf,
    pub users: UserDb,
    pub ceilings: Ceilings,
    pub cgroups: Support,
    /// See [`Host::path`]; empty for [`DEFAULT_PATH`].
    pub path: String,
}

impl CheckEnv {
    /// The environment below `root` as this process sees it: users and
    /// groups from `ROOT/etc/passwd` and `ROOT/etc/group` (none if missing),
    /// the hard limits this process could set, and its `PATH`.
    pub fn for_root(root: &Path) -> CheckEnv {
        CheckEnv {
            root: root.to_path_buf(),
            users: read_users(root),
            ceilings: current_ceilings(),
            cgroups: crate::sys::cgroup::support(),
            path: inherited_path(),
        }
    }
}

impl Host for CheckEnv {
    fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self) -> &str {
        match self.path.is_empty() {
            true => DEFAULT_PATH,
            false => &self.path,
        }
    }

    fn entry(&self, path: &Path) -> Option<Entry> {
        let host = below(&self.root, path);
        let meta = fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            return fs::read_link(&host).ok().map(Entry::Link);
        }
        if !meta.is_file() {
            return Some(Entry::Other);
        }
        let executable = meta.permissions().mode() & 0o111 != 0;
        Some(Entry::File { executable })
    }

    /// Bounded and non-blocking: `/dev/zero` or a FIFO without a writer
    /// must not hold up PID 1's loading.
    fn read(&self, path: &Path) -> io::Result<String> {
        read_bounded(path)
    }

    fn read_bytes(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_limited(path)
    }

    fn users(&self) -> &UserDb {
        &self.users
    }

    fn ceilings(&self) -> &Ceilings {
        &self.ceilings
    }

    fn cgroups(&self) -> &Support {
        &self.cgroups
    }
}

/// The users and groups of the environment below `root`, read now (none if
/// its files are missing): for services, `tend ctl exec` and the socket
/// group alike.
pub fn read_users(root: &Path) -> UserDb {
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap_or_default();
    UserDb::parse(&read("etc/passwd"), &read("etc/group"))
}

/// An environment made of data, for tests: the files it has, and nothing
/// else.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    pub root: PathBuf,
    /// Paths inside the environment.
    pub entries: BTreeMap<PathBuf, Entry>,
    /// Texts by path on this host.
    pub texts: BTreeMap<PathBuf, String>,
    pub users: UserDb,
    pub ceilings: Ceilings,
    pub cgroups: Support,
}

impl Fixture {
    /// An executable file at each path.
    pub fn with_programs(mut self, paths: &[&str]) -> Fixture {
        for p in paths {
            self.entries.insert(p.into(), Entry::File { executable: true });
        }
        self
    }
}

impl Host for Fixture {
    fn root(&self) -> &Path {
        &self.root
    }

    fn entry(&self, path: &Path) -> Option<Entry> {
        self.entries.get(&lexical(path)).cloned()
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        let text = self.texts.get(path).cloned();
        text.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn users(&self) -> &UserDb {
        &self.users
    }

    fn ceilings(&self) -> &Ceilings {
        &self.ceilings
    }

    fn cgroups(&self) -> &Support {
        &self.cgroups
    }
}

/// `path` with `.` and `..` taken away by their names alone: a fixture has
/// no directories to walk.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Without `CAP_SYS_RESOURCE` a hard limit can only be lowered; with it,
/// only `nofile` has a ceiling (`fs.nr_open`).
fn current_ceilings() -> Ceilings {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let privileged = parse_cap_eff(&status).is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0);
    if privileged {
        let nr_open = fs::read_to_string("/proc/sys/fs/nr_open").ok();
        let nr_open = nr_open.and_then(|t| t.trim().parse().ok());
        return Ceilings(crate::sorted::map(nr_open.map(|n| (Resource::Nofile, n))));
    }
    let hard = |r: Resource| nix::sys::resource::getrlimit(r.to_nix()).ok().map(|(_, h)| h);
    Ceilings(crate::sorted::map(
        Resource::ALL
            .into_iter()
            .filter_map(|r| Some((r, hard(r)?)))
            .filter(|&(_, h)| h != INFINITY),
    ))
}

/// The effective capability set from the text of `/proc/self/status`.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// Finds `argv0` as `execvp` would in the service, in the real filesystem
/// below `root`: see [`find_in`].
pub fn find_program(
    root: &Path,
    argv0: &str,
    path_var: &str,
    cwd: Option<&Path>,
    what: &'static str,
) -> Result<PathBuf, Problem> {
    let env = CheckEnv {
        root: root.to_path_buf(),
        ..CheckEnv::default()
    };
    find_in(&env, argv0, path_var, cwd, what)
}

/// Finds `argv0` as `execvp` would in the service: a path with a slash
/// taken as is (relative to `cwd`), else the first executable in `path_var`.
/// Returns the path as seen inside the root.
pub fn find_in(
    host: &dyn Host,
    argv0: &str,
    path_var: &str,
    cwd: Option<&Path>,
    what: &'static str,
) -> Result<PathBuf, Problem> {
    let root = || host.root().display().to_string();
    if argv0.contains('/') {
        let path = cwd.unwrap_or(Path::new("/")).join(argv0);
        return match is_executable(host, &path) {
            Some(true) => Ok(path),
            Some(false) => Err(Problem::NotExecutable {
                program: argv0.to_string(),
            }),
            None => Err(Problem::NoProgram {
                what,
                program: argv0.to_string(),
                root: root(),
            }),
        };
    }
    path_var
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| Path::new(dir).join(argv0))
        .find(|p| is_executable(host, p) == Some(true))
        .ok_or_else(|| Problem::NotInPath {
            program: argv0.to_string(),
            path: path_var.to_string(),
            root: root(),
        })
}

/// `None` if `path` (inside the environment) does not exist, else whether
/// it is an executable file. A final symlink is followed inside the
/// environment, so an absolute link in a container rootfs does not point
/// into the host.
fn is_executable(host: &dyn Host, path: &Path) -> Option<bool> {
    let mut path = path.to_path_buf();
    // The kernel's own limit of links followed in one lookup.
    for _ in 0..40 {
        let target = match host.entry(&path)? {
            Entry::File { executable } => return Some(executable),
            Entry::Other => return Some(false),
            Entry::Link(target) => target,
        };
        path = match path.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
    }
    None
}

/// `path` as seen from inside `root`, as a path on this host.
pub fn below(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Reads an env file: absolute paths below the root, relative ones from the
/// directory of the unit file. Returns the host path and the text.
pub fn read_env_file(host: &dyn Host, unit_dir: &Path, path: &str) -> Result<(PathBuf, String), Problem> {
    let on_host = if path.starts_with('/') {
        below(host.root(), Path::new(path))
    } else {
        unit_dir.join(path)
    };
    match host.read(&on_host) {
        Ok(text) => Ok((on_host, text)),
        Err(e) => Err(Problem::EnvFile {
            path: path.to_string(),
            reason: crate::sys::describe(&e),
        }),
    }
}

/// Longest env file read: a unit naming a huge file or `/dev/zero` must
/// not exhaust PID 1's memory.
/// The most tend reads of a file it is handed (a unit, an env file, a time
/// zone): none comes near it, and PID 1 must not hold a huge one.
pub(crate) const MAX_FILE: u64 = 1 << 20;

/// Reads at most [`MAX_FILE`] bytes, without blocking: a FIFO with no
/// writer (or one that never writes), or `/dev/zero`, must not stall or
/// fill PID 1.
pub(crate) fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let mut data = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    Ok(data)
}

/// [`read_limited`], as text.
pub(crate) fn read_bounded(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_limited(path)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_without_path_gets_tends_own_else_the_default() {
        let own = CheckEnv {
            path: "/opt/app/bin:/usr/bin".into(),
            ..CheckEnv::default()
        };
        assert_eq!(own.path(), "/opt/app/bin:/usr/bin");
        assert_eq!(CheckEnv::default().path(), DEFAULT_PATH);
        assert_eq!(Fixture::default().path(), DEFAULT_PATH);
    }

    #[test]
    fn cap_eff() {
        let status = "Name:\ttend\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(parse_cap_eff(""), None);
    }

    /// A root with `/bin/sh`, a link to it, a plain file and a directory.
    fn fixture() -> Fixture {
        let mut f = Fixture::default().with_programs(&["/bin/sh", "/usr/bin/env"]);
        f.root = PathBuf::from("/");
        let link = |to: &str| Entry::Link(PathBuf::from(to));
        f.entries.insert("/usr/bin/sh".into(), link("../../bin/sh"));
        f.entries.insert("/usr/local/bin/sh".into(), link("/bin/sh"));
        f.entries.insert("/bin/loop".into(), link("loop"));
        f.entries
            .insert("/etc/passwd".into(), Entry::File { executable: false });
        f.entries.insert("/usr/bin/dir".into(), Entry::Other);
        f
    }

    #[test]
    fn finds_programs_like_execvp() {
        let root = &fixture();
        let find = |argv0, path, cwd| find_in(root, argv0, path, cwd, "command");
        assert_eq!(find("sh", DEFAULT_PATH, None), Ok(PathBuf::from("/usr/local/bin/sh")));
        assert_eq!(find("sh", "/usr/bin", None), Ok(PathBuf::from("/usr/bin/sh")));
        assert_eq!(find("/bin/sh", "", None), Ok(PathBuf::from("/bin/sh")));
        assert_eq!(
            find("../bin/sh", "", Some(Path::new("/usr"))),
            Ok(PathBuf::from("/usr/../bin/sh"))
        );
        assert_eq!(
            find("dir", "/usr/bin:/bin", None),
            Err(Problem::NotInPath {
                program: "dir".into(),
                path: "/usr/bin:/bin".into(),
                root: "/".into(),
            })
        );
        assert!(matches!(
            find("/etc/passwd", "", None),
            Err(Problem::NotExecutable { .. })
        ));
        assert!(matches!(
            find("/usr/bin/dir", "", None),
            Err(Problem::NotExecutable { .. })
        ));
        assert!(matches!(find("/bin/loop", "", None), Err(Problem::NoProgram { .. })));
        assert!(matches!(
            find("./nope", "", Some(Path::new("/nonexistent"))),
            Err(Problem::NoProgram { .. })
        ));
        assert!(matches!(
            find("no-such-tend-program", "/bin:relative", None),
            Err(Problem::NotInPath { .. })
        ));
    }

    /// The real filesystem below a root: a final absolute link stays inside.
    #[test]
    fn real_host_follows_links_inside_the_root() {
        let root = std::env::temp_dir().join(format!("tend-host-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/prog"), "").unwrap();
        fs::set_permissions(root.join("bin/prog"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("bin/data"), "A=1\n").unwrap();
        std::os::unix::fs::symlink("/bin/prog", root.join("bin/link")).unwrap();
        let env = CheckEnv {
            root: root.clone(),
            ..CheckEnv::default()
        };
        let found = find_in(&env, "link", "/bin", None, "command");
        let missing = find_program(&root, "/bin/nope", "", None, "command");
        let text = read_env_file(&env, Path::new("."), "/bin/data").map(|(_, t)| t);
        let data = find_in(&env, "/bin/data", "", None, "command");
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, Ok(PathBuf::from("/bin/link")));
        assert!(matches!(missing, Err(Problem::NoProgram { .. })));
        assert_eq!(text, Ok("A=1\n".to_string()));
        assert!(matches!(data, Err(Problem::NotExecutable { .. })));
    }

    #[test]
    fn below_root() {
        assert_eq!(below(Path::new("/r"), Path::new("/bin/sh")), PathBuf::from("/r/bin/sh"));
        assert_eq!(below(Path::new("/"), Path::new("/bin/sh")), PathBuf::from("/bin/sh"));
    }
}
