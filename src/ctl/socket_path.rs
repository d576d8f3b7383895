//! Where the control socket is when no `--socket` says: the one function
//! both `tend init` (to bind) and `tend ctl` (to connect) use, so that
//! they agree.
//!
//! 1. `$TEND_SOCKET`, when set and not empty.
//! 2. `/run/tend/ctl.sock`, when `/run/tend` can be used: a tend listens
//!    already, or we may write it (or create it in `/run`) and its file
//!    system is not full.
//! 3. Otherwise (a non-root container: `podman run --user 1000`) a place
//!    the user owns: `$XDG_RUNTIME_DIR/tend/ctl.sock`, else
//!    `/tmp/tend-UID/ctl.sock`, whose directory must be ours, mode 0700 and
//!    no symlink (anyone may create names in /tmp: a directory set up by
//!    someone else could hand us their socket).

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

/// The environment variable that names the socket for both sides.
pub const ENV: &str = "TEND_SOCKET";

/// The socket where `/run` can be used.
pub const DEFAULT_SOCKET: &str = "/run/tend/ctl.sock";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("refusing {}: {why} (it must be a directory of uid {uid}, mode 0700; or set {ENV})", .dir.display())]
    Unsafe { dir: PathBuf, uid: u32, why: String },
    #[error("cannot create {}", .dir.display())]
    Create { dir: PathBuf, source: io::Error },
}

/// What the environment says, gathered by [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub tend_socket: Option<PathBuf>,
    pub run_usable: bool,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub uid: u32,
}

/// Where the socket is (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A path to use as it is.
    Given(PathBuf),
    /// A socket in a directory of /tmp that must be private to us.
    Private { dir: PathBuf, socket: PathBuf },
}

pub fn choose(facts: &Facts) -> Place {
    if let Some(path) = &facts.tend_socket {
        return Place::Given(path.clone());
    }
    if facts.run_usable {
        return Place::Given(DEFAULT_SOCKET.into());
    }
    if let Some(dir) = facts.xdg_runtime_dir.as_ref().filter(|d| d.is_absolute()) {
        return Place::Given(dir.join("tend/ctl.sock"));
    }
    let dir = PathBuf::from(format!("/tmp/tend-{}", facts.uid));
    Place::Private {
        socket: dir.join("ctl.sock"),
        dir,
    }
}

/// The socket's path. With `create` (the server), a missing private
/// directory is made (0700); either side refuses one that is not ours.
pub fn resolve(create: bool) -> Result<PathBuf, Error> {
    let var = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    let uid = nix::unistd::geteuid().as_raw();
    let facts = Facts {
        tend_socket: var(ENV),
        run_usable: run_usable(),
        xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
        uid,
    };
    match choose(&facts) {
        Place::Given(path) => Ok(path),
        Place::Private { dir, socket } => {
            if create {
                make_private(&dir)?;
            }
            check_private(&dir, uid)?;
            Ok(socket)
        }
    }
}

/// We may write in `/run/tend` (it is neither read-only nor full), or a
/// tend listens there. A socket file alone is not enough: one left by a
/// killed tend would send a non-root user's server and client to a place
/// neither can use.
fn run_usable() -> bool {
    let dir = Path::new(DEFAULT_SOCKET).parent().unwrap_or(Path::new("/run"));
    let writable = |p: &Path| access(p, AccessFlags::W_OK | AccessFlags::X_OK).is_ok() && has_room(p);
    if dir.exists() {
        writable(dir) || listened(Path::new(DEFAULT_SOCKET))
    } else {
        dir.parent().is_some_and(writable)
    }
}

/// Someone listens on the socket at `path`. A socket we may not write
/// refuses us before the kernel looks for a listener (EACCES either way):
/// then the kernel's table of bound sockets tells.
fn listened(path: &Path) -> bool {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => true,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            std::fs::read_to_string("/proc/net/unix").is_ok_and(|table| listening_in(&table, path))
        }
        Err(_) => false,
    }
}

/// `table` (`/proc/net/unix`) has a listening socket bound at `path`.
fn listening_in(table: &str, path: &Path) -> bool {
    // Flags 00010000 is __SO_ACCEPTCON: the socket listens.
    const LISTENING: u32 = 0x10000;
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(3).and_then(|f| u32::from_str_radix(f, 16).ok());
        fields.get(7).is_some_and(|p| Path::new(p) == path) && flags.is_some_and(|f| f & LISTENING != 0)
    })
}

/// A new socket (and its directory) needs an inode and a block: a full
/// file system is as unusable as a read-only one, and both sides must see
/// it so (the server binds where the client looks). A count of zero means
/// the file system does not count (btrfs's inodes): room.
fn has_room(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path).map_or(true, |s| {
        let room = |total: u64, free: u64| total == 0 || free > 0;
        room(s.files(), s.files_available()) && room(s.blocks(), s.blocks_available())
    })
}

/// Creates `dir` 0700 if it is missing; an existing one is checked after.
fn make_private(dir: &Path) -> Result<(), Error> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(Error::Create {
            dir: dir.into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// `dir` (not followed if a symlink) is a directory of `uid`, closed to
/// others; a missing one is fine here (the client then finds no socket).
fn check_private(dir: &Path, uid: u32) -> Result<(), Error> {
    let meta = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unsafe_dir(dir, uid, e.to_string())),
        Ok(meta) => meta,
    };
    let why = if meta.file_type().is_symlink() {
        "it is a symlink".to_string()
    } else if !meta.is_dir() {
        "it is not a directory".to_string()
    } else if meta.uid() != uid {
        format!("it belongs to uid {}", meta.uid())
    } else if meta.mode() & 0o077 != 0 {
        format!("its mode is {:04o}", meta.mode() & 0o7777)
    } else {
        return Ok(());
    };
    Err(unsafe_dir(dir, uid, why))
}

fn unsafe_dir(dir: &Path, uid: u32, why: String) -> Error {
    Error::Unsafe {
        dir: dir.into(),
        uid,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            tend_socket: None,
            run_usable: false,
            xdg_runtime_dir: None,
            uid: 1000,
        }
    }

    #[test]
    fn tend_socket_first_then_run_then_the_users_places() {
        let given = |p: &str| Place::Given(p.into());
        let mut f = facts();
        assert_eq!(
            choose(&f),
            Place::Private {
                dir: "/tmp/tend-1000".into(),
                socket: "/tmp/tend-1000/ctl.sock".into()
            }
        );
        f.xdg_runtime_dir = Some("relative".into());
        assert!(
            matches!(choose(&f), Place::Private { .. }),
            "a relative XDG_RUNTIME_DIR is ignored"
        );
        f.xdg_runtime_dir = Some("/run/user/1000".into());
        assert_eq!(choose(&f), given("/run/user/1000/tend/ctl.sock"));
        f.run_usable = true;
        assert_eq!(choose(&f), given(DEFAULT_SOCKET));
        f.tend_socket = Some("/x/s".into());
        assert_eq!(choose(&f), given("/x/s"));
    }

    #[test]
    fn a_socket_counts_only_where_one_listens() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/tend/ctl.sock\n\
            0000000000000000: 00000002 00000000 00000000 0001 01 4243 /run/other.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 4244\n";
        assert!(listening_in(table, Path::new("/run/tend/ctl.sock")));
        assert!(
            !listening_in(table, Path::new("/run/other.sock")),
            "bound, not listening"
        );
        assert!(!listening_in(table, Path::new("/run/gone.sock")));
        assert!(!listening_in("Num RefCount\n", Path::new("/run/tend/ctl.sock")));
    }

    #[test]
    fn private_dir_must_be_ours_and_closed() {
        let base = std::env::temp_dir().join(format!("tend-socket-path-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let dir = base.join("private");
        assert!(check_private(&dir, uid).is_ok(), "missing is fine");
        make_private(&dir).unwrap();
        make_private(&dir).unwrap();
        check_private(&dir, uid).unwrap();
        let err = check_private(&dir, uid + 1).unwrap_err().to_string();
        assert!(err.contains(&format!("belongs to uid {uid}")), "{err}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_private(&dir, uid).unwrap_err().to_string();
        assert!(err.contains("mode is 0755"), "{err}");
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = check_private(&link, uid).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
