//! The registry of running machines: one `NAME.json` per machine in
//! `/run/tend/machines/` (`$XDG_RUNTIME_DIR/tend/machines/` rootless),
//! created exclusively by the launcher (so a name is taken once) and removed
//! when the machine ends. An entry whose launcher is gone is stale and is
//! ignored, and replaced by a new boot of the same name.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// The host pid of the container's PID 1 (0 while it starts).
    pub pid: i32,
    /// The host pid of the launcher, which owns the entry.
    pub launcher: i32,
    pub rootfs: PathBuf,
    /// Unix time of the boot, in seconds.
    pub started: u64,
    /// The container's address (`--net veth|bridge`), from its lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::Ipv4Addr>,
    /// The host ids its ids 0.. map to (booted as root, not --privileged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<IdRange>,
}

/// A range of host ids: a subordinate range of /etc/subuid or /etc/subgid,
/// or the range a container's ids 0.. map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the machines directory {}", .path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("machine name {name} is already in use (launcher pid {launcher})")]
    InUse { name: String, launcher: i32 },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A machine name: also a file name in the registry.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The machines directory for this user.
pub fn dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/tend/machines");
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", nix::unistd::geteuid())));
    runtime.join("tend/machines")
}

/// Makes `dir` (its parents as they come) 0700 and ours: it holds each
/// machine's control socket and the socket its PID 1 reports readiness on,
/// which no other host user may reach. One an older tend made 0755 is
/// closed; a symlink, or one another user owns, is refused.
fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        other => other?,
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
        let why = "not a directory of this user's (a symlink, or another user's)";
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Where the machine's host-side control socket goes (served by PID 1).
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// Where a detached machine's own log goes (kept by its launcher).
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// Where a detached machine's PID 1 reports readiness to its launcher.
pub fn notify_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.notify"))
}

/// The entry of a booting machine, removed on drop by its launcher.
#[derive(Debug)]
pub struct Reservation {
    path: PathBuf,
    entry: Entry,
}

/// Fails when a live launcher holds `name` in `dir`: the early check, made
/// before anything is started. `reserve` takes the name for good.
pub fn check_free(dir: &Path, name: &str) -> Result<(), Error> {
    match read(&dir.join(format!("{name}.json"))).filter(alive) {
        Some(old) => Err(Error::InUse {
            name: name.into(),
            launcher: old.launcher,
        }),
        None => Ok(()),
    }
}

/// Takes `name` in `dir` for the machine whose PID 1 is `pid`, in one
/// exclusive create (two launchers racing for a name: one wins); fails when
/// a live launcher holds it. A stale entry (its launcher died) is replaced.
pub fn reserve(dir: &Path, name: &str, rootfs: &Path, pid: i32, userns: Option<IdRange>) -> Result<Reservation, Error> {
    private_dir(dir).map_err(|source| Error::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    sweep(dir);
    let path = dir.join(format!("{name}.json"));
    let entry = Entry {
        name: name.to_string(),
        pid,
        launcher: std::process::id() as i32,
        rootfs: rootfs.to_path_buf(),
        started: unix_now(),
        address: None,
        userns,
    };
    let text = serde_json::to_string(&entry).unwrap_or_default();
    let write_new = || {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        file.write_all(text.as_bytes())
    };
    match write_new() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if let Some(old) = read(&path).filter(alive) {
                return Err(Error::InUse {
                    name: name.into(),
                    launcher: old.launcher,
                });
            }
            // Stale: its launcher died without cleaning up.
            let _ = std::fs::remove_file(&path);
            write_new().map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        }
        Err(source) => return Err(Error::Write { path, source }),
    }
    Ok(Reservation { path, entry })
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // A cloned child holds a copy: only the launcher removes the entry.
        if std::process::id() as i32 == self.entry.launcher {
            remove_entry(&self.path);
        }
    }
}

/// An entry and the files beside it: its control socket, a detached
/// machine's log and its notify socket.
fn remove_entry(json: &Path) {
    let _ = std::fs::remove_file(json);
    for ext in ["sock", "log", "notify"] {
        let _ = std::fs::remove_file(json.with_extension(ext));
    }
}

/// Removes what launchers that were killed left (their entries and files),
/// as the next boot of any name starts: `tend list` hides them, and nothing
/// else would. An entry that cannot be read yet (one being written) stays.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let json = path.extension().is_some_and(|x| x == "json");
        if json && read(&path).is_some_and(|entry| !alive(&entry)) {
            remove_entry(&path);
        }
    }
}

fn read(path: &Path) -> Option<Entry> {
    // from_slice, as everywhere in tend: one copy of serde_json's reader.
    serde_json::from_slice(std::fs::read_to_string(path).ok()?.as_bytes()).ok()
}

/// Whether the entry's launcher still runs.
fn alive(entry: &Entry) -> bool {
    entry.launcher > 0 && Path::new(&format!("/proc/{}", entry.launcher)).exists()
}

/// The current time in seconds since the epoch (entries' `started`, and
/// [`table`]'s now).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The live machines of `dir`, by name.
pub fn list(dir: &Path) -> Vec<Entry> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<Entry> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| read(&p))
        .filter(alive)
        .collect();
    crate::sorted::sort_by(&mut found, |a, b| a.name.cmp(&b.name));
    found
}

/// A machine's memory in use and tasks, where it has its own cgroup.
pub type Usage = Option<(Option<u64>, Option<u64>)>;

/// `tend list`'s table: name, PID 1's host pid, uptime, memory and tasks
/// (`-` for a machine without its own cgroup: booted without bounds), host
/// ids, address, rootfs. `usage` gives each entry's, in order.
pub fn table(entries: &[Entry], now: u64, usage: &[Usage]) -> String {
    let mut out = format!(
        "{:<16} {:>8} {:>10} {:>9} {:>6} {:>22}  {:<15}  {}\n",
        "NAME", "PID", "UPTIME", "MEMORY", "TASKS", "USERNS", "ADDRESS", "ROOTFS"
    );
    for (i, e) in entries.iter().enumerate() {
        let up = humantime::format_duration(std::time::Duration::from_secs(now.saturating_sub(e.started)));
        let (memory, tasks) = usage.get(i).copied().flatten().unwrap_or_default();
        let memory = memory.map_or("-".into(), crate::resources::show_used);
        let tasks = tasks.map_or("-".into(), |t| t.to_string());
        let address = e.address.map_or_else(|| "-".to_string(), |a| a.to_string());
        let ids = e.userns.map_or("-".to_string(), |r| r.to_string());
        out.push_str(&format!(
            "{:<16} {:>8} {:>10} {:>9} {:>6} {:>22}  {:<15}  {}\n",
            e.name,
            e.pid,
            up.to_string(),
            memory,
            tasks,
            ids,
            address,
            e.rootfs.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_uptime() {
        let e = Entry {
            name: "demo".into(),
            pid: 4242,
            launcher: 4241,
            rootfs: "/srv/demo".into(),
            started: 1000,
            address: Some(std::net::Ipv4Addr::new(10, 231, 0, 6)),
            userns: Some(IdRange {
                start: 524288,
                count: 65536,
            }),
        };
        let t = table(std::slice::from_ref(&e), 1065, &[None]);
        assert!(t.starts_with("NAME"));
        assert!(
            t.contains("demo")
                && t.contains("4242")
                && t.contains("1m 5s")
                && t.contains("10.231.0.6")
                && t.contains("524288:65536")
                && t.contains("/srv/demo"),
            "{t}"
        );
        assert!(t.contains(" - "), "{t}");
        let bounded = table(&[e], 1065, &[Some((Some(3 << 20), Some(4)))]);
        assert!(bounded.contains("3.0M") && bounded.contains(" 4 "), "{bounded}");
    }

    #[test]
    fn the_machines_directory_is_made_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("tend-registry-mode-{}", std::process::id()));
        let dir = base.join("machines");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        drop(reserve(&dir, "a", Path::new("/r"), 42, None).unwrap());
        assert_eq!(mode(&dir), 0o700);
        // One an older tend left open is closed again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(reserve(&dir, "a", Path::new("/r"), 42, None).unwrap());
        assert_eq!(mode(&dir), 0o700);
        // A symlink in its place is refused.
        std::fs::remove_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&base, &dir).unwrap();
        assert!(matches!(
            reserve(&dir, "a", Path::new("/r"), 42, None),
            Err(Error::Dir { .. })
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn what_a_killed_launcher_left_is_swept_by_the_next_boot() {
        let dir = std::env::temp_dir().join(format!("tend-registry-sweep-{}", std::process::id()));
        private_dir(&dir).unwrap();
        let stale = Entry {
            name: "gone".into(),
            pid: 1,
            launcher: i32::MAX,
            rootfs: "/r".into(),
            started: 0,
            address: None,
            userns: None,
        };
        std::fs::write(dir.join("gone.json"), serde_json::to_string(&stale).unwrap()).unwrap();
        for ext in ["sock", "log", "notify"] {
            std::fs::write(dir.join(format!("gone.{ext}")), "").unwrap();
        }
        // One being written (not JSON yet) is left alone.
        std::fs::write(dir.join("new.json"), "").unwrap();
        let r = reserve(&dir, "other", Path::new("/r"), 42, None).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["new.json", "other.json"]);
        drop(r);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_is_taken_once_and_freed_on_drop() {
        let dir = std::env::temp_dir().join(format!("tend-registry-{}", std::process::id()));
        assert!(check_free(&dir, "x").is_ok());
        let r = reserve(&dir, "x", Path::new("/r"), 42, None).unwrap();
        assert!(matches!(check_free(&dir, "x"), Err(Error::InUse { .. })));
        assert!(matches!(
            reserve(&dir, "x", Path::new("/r"), 43, None),
            Err(Error::InUse { .. })
        ));
        assert_eq!(list(&dir)[0].pid, 42);
        assert_eq!(list(&dir).len(), 1);
        drop(r);
        assert!(list(&dir).is_empty());
        // A stale entry (dead launcher) is replaced.
        let stale = Entry {
            name: "y".into(),
            pid: 0,
            launcher: i32::MAX,
            rootfs: "/r".into(),
            started: 0,
            address: None,
            userns: None,
        };
        std::fs::write(dir.join("y.json"), serde_json::to_string(&stale).unwrap()).unwrap();
        assert!(list(&dir).is_empty());
        assert!(check_free(&dir, "y").is_ok());
        assert!(reserve(&dir, "y", Path::new("/r"), 44, None).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
