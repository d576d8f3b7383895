//! What validation needs to know of the environment the services will run
//! in ([`CheckEnv`]), and the few file lookups it makes below its root:
//! finding a command, reading an env file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::Problem;
use super::limits::{Ceilings, Resource, INFINITY};
use super::users::{parse_group, parse_passwd, Group, User};

/// `PATH` when a unit sets none (the one of systemd and Docker).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `CAP_SYS_RESOURCE`: the capability to raise hard limits.
const CAP_SYS_RESOURCE: u32 = 24;

/// The environment units are checked against. Tests and `tend check` on a
/// container rootfs fill it by hand; [`CheckEnv::for_root`] reads it.
#[derive(Debug, Clone, Default)]
pub struct CheckEnv {
    /// Commands, env files given as absolute paths, and stdio files are
    /// looked up below this directory (`/` when tend runs the units).
    pub root: PathBuf,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// Above these, a unit's hard limits cannot be set.
    pub ceilings: Ceilings,
}

impl CheckEnv {
    /// The environment below `root` as this process sees it: users and
    /// groups from `ROOT/etc/passwd` and `ROOT/etc/group` (none if missing),
    /// and the hard limits this process could set.
    pub fn for_root(root: &Path) -> CheckEnv {
        let read = |p: &str| fs::read_to_string(root.join(p)).unwrap_or_default();
        CheckEnv {
            root: root.to_path_buf(),
            users: parse_passwd(&read("etc/passwd")),
            groups: parse_group(&read("etc/group")),
            ceilings: current_ceilings(),
        }
    }
}

/// Without `CAP_SYS_RESOURCE` a hard limit can only be lowered; with it,
/// only `nofile` has a ceiling (`fs.nr_open`).
fn current_ceilings() -> Ceilings {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let privileged = parse_cap_eff(&status).is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0);
    if privileged {
        let nr_open = fs::read_to_string("/proc/sys/fs/nr_open").ok();
        let nr_open = nr_open.and_then(|t| t.trim().parse().ok());
        return Ceilings(nr_open.map(|n| (Resource::Nofile, n)).into_iter().collect());
    }
    let hard = |r: Resource| nix::sys::resource::getrlimit(r.to_nix()).ok().map(|(_, h)| h);
    Ceilings(
        Resource::ALL
            .into_iter()
            .filter_map(|r| Some((r, hard(r)?)))
            .filter(|&(_, h)| h != INFINITY)
            .collect(),
    )
}

/// The effective capability set from the text of `/proc/self/status`.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// Finds `argv0` as `execvp` would in the service: a path with a slash
/// taken as is (relative to `cwd`), else the first executable in `path_var`.
/// Returns the path as seen inside the root.
pub fn find_program(
    root: &Path,
    argv0: &str,
    path_var: &str,
    cwd: Option<&Path>,
    what: &'static str,
) -> Result<PathBuf, Problem> {
    if argv0.contains('/') {
        let path = cwd.unwrap_or(Path::new("/")).join(argv0);
        return match is_executable(root, &path) {
            Some(true) => Ok(path),
            Some(false) => Err(Problem::NotExecutable {
                program: argv0.to_string(),
            }),
            None => Err(Problem::NoProgram {
                what,
                program: argv0.to_string(),
                root: root.display().to_string(),
            }),
        };
    }
    path_var
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| Path::new(dir).join(argv0))
        .find(|p| is_executable(root, p) == Some(true))
        .ok_or_else(|| Problem::NotInPath {
            program: argv0.to_string(),
            path: path_var.to_string(),
            root: root.display().to_string(),
        })
}

/// `None` if `path` (inside `root`) does not exist, else whether it is an
/// executable file. A final symlink is followed inside the root, so an
/// absolute link in a container rootfs does not point into the host.
fn is_executable(root: &Path, path: &Path) -> Option<bool> {
    let mut path = path.to_path_buf();
    // The kernel's own limit of links followed in one lookup.
    for _ in 0..40 {
        let host = below(root, &path);
        let meta = fs::symlink_metadata(&host).ok()?;
        if !meta.file_type().is_symlink() {
            return Some(meta.is_file() && meta.permissions().mode() & 0o111 != 0);
        }
        let target = fs::read_link(&host).ok()?;
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
pub fn read_env_file(root: &Path, unit_dir: &Path, path: &str) -> Result<(PathBuf, String), Problem> {
    let host = if path.starts_with('/') {
        below(root, Path::new(path))
    } else {
        unit_dir.join(path)
    };
    match read_bounded(&host) {
        Ok(text) => Ok((host, text)),
        Err(e) => Err(Problem::EnvFile {
            path: path.to_string(),
            reason: crate::sys::describe(&e),
        }),
    }
}

/// Longest env file read: a unit naming a huge file or `/dev/zero` must
/// not exhaust PID 1's memory.
const MAX_ENV_FILE: u64 = 1 << 20;

/// Reads at most [`MAX_ENV_FILE`] bytes, without blocking: a FIFO with no
/// writer (or one that never writes) must not stall loading.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let mut text = String::new();
    file.take(MAX_ENV_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_ENV_FILE {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff() {
        let status = "Name:\ttend\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(parse_cap_eff(""), None);
    }

    #[test]
    fn finds_programs_like_execvp() {
        let root = Path::new("/");
        let sh = find_program(root, "sh", DEFAULT_PATH, None, "command");
        assert!(sh.is_ok_and(|p| p.ends_with("sh")));
        assert_eq!(
            find_program(root, "/bin/sh", "", None, "command"),
            Ok(PathBuf::from("/bin/sh"))
        );
        assert!(matches!(
            find_program(root, "/etc/passwd", "", None, "command"),
            Err(Problem::NotExecutable { .. })
        ));
        assert!(matches!(
            find_program(root, "./nope", "", Some(Path::new("/nonexistent")), "command"),
            Err(Problem::NoProgram { .. })
        ));
        assert!(matches!(
            find_program(root, "no-such-tend-program", "/bin:relative", None, "command"),
            Err(Problem::NotInPath { .. })
        ));
    }

    #[test]
    fn below_root() {
        assert_eq!(below(Path::new("/r"), Path::new("/bin/sh")), PathBuf::from("/r/bin/sh"));
        assert_eq!(below(Path::new("/"), Path::new("/bin/sh")), PathBuf::from("/bin/sh"));
    }
}
