//! What `tend boot` is asked for ([`Request`], from the command line) and
//! the checked, resolved form the rest works from ([`BootOptions`]). Every
//! check that can fail before anything is started happens here.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// `--bind SRC:DST[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub src: PathBuf,
    /// Inside the container, absolute.
    pub dst: PathBuf,
    pub ro: bool,
}

/// `--net`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Net {
    /// A new network namespace with only loopback, up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// A new one, with a veth pair to the host (see [`super::net`]).
    Veth,
    /// A new one, its veth's host side on this bridge.
    Bridge(String),
    /// An existing one (`ip netns add`'s /run/netns/NAME, /proc/PID/ns/net).
    Ns(PathBuf),
    /// A new one, connected by pasta (user mode: works rootless).
    Pasta,
}

impl Net {
    /// Whether the container gets a network namespace of its own.
    pub fn is_new(&self) -> bool {
        matches!(self, Net::None | Net::Veth | Net::Bridge(_) | Net::Pasta)
    }

    /// Parses `--net`'s value.
    pub fn parse(text: &str) -> Result<Net, String> {
        match text {
            "none" => Ok(Net::None),
            "host" => Ok(Net::Host),
            "veth" => Ok(Net::Veth),
            "pasta" => Ok(Net::Pasta),
            "bridge" => Ok(Net::Bridge("tend0".into())),
            _ => match (text.strip_prefix("bridge="), text.strip_prefix("ns:")) {
                (Some(name), _) if super::net::types::valid_ifname(name) => Ok(Net::Bridge(name.into())),
                (_, Some(path)) if !path.is_empty() => Ok(Net::Ns(path.into())),
                _ => Err(format!(
                    "unknown network {text:?} (none, host, veth, bridge[=NAME], pasta, ns:PATH)"
                )),
            },
        }
    }
}

/// Where the inner PID 1 reports readiness, from the launcher's `$NOTIFY_SOCKET`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Notify {
    #[default]
    None,
    /// A socket file: bound into the container at [`NOTIFY_INSIDE`].
    Path(PathBuf),
    /// An abstract socket: reachable only with `--net host`.
    Abstract(String),
}

/// Where a host `$NOTIFY_SOCKET` file appears inside.
pub const NOTIFY_INSIDE: &str = "/run/host/notify";
/// Where `--units DIR` appears inside.
pub const UNITS_INSIDE: &str = "/run/tend/units";
/// The units of the rootfs.
pub const ROOTFS_UNITS: &str = "/etc/tend/units";

/// The command line, unchecked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub rootfs: PathBuf,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<PathBuf>,
    pub read_only: bool,
    pub net: Net,
    pub publish: Vec<super::net::Publish>,
    pub net_pool: Option<super::net::Cidr>,
    pub userns: bool,
    pub units: Option<PathBuf>,
    pub detach: bool,
    pub shutdown_timeout: Duration,
    pub command: Vec<OsString>,
}

/// Everything checked and resolved: paths absolute and existing, the name
/// and hostname chosen, rootless or not decided.
#[derive(Debug, Clone, Default)]
pub struct BootOptions {
    /// Absolute, canonical.
    pub rootfs: PathBuf,
    pub name: String,
    pub hostname: String,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<PathBuf>,
    pub read_only: bool,
    pub net: Net,
    /// `--publish`: host ports DNAT'ed to the container's.
    pub publish: Vec<super::net::Publish>,
    /// `--net-pool`: where the container's address comes from.
    pub net_pool: Option<super::net::Cidr>,
    /// Run in a new user namespace (no mknod, sysfs only with a new netns).
    pub userns: bool,
    /// `--units DIR` on the host.
    pub units: Option<PathBuf>,
    pub detach: bool,
    pub shutdown_timeout: Duration,
    pub command: Vec<OsString>,
    /// The launching terminal, bound to /dev/console.
    pub console: Option<PathBuf>,
    pub notify: Notify,
}

impl BootOptions {
    /// The units directory as PID 1 sees it; `None` with `-- CMD` and no
    /// `--units`: then only the command runs.
    pub fn units_inside(&self) -> Option<PathBuf> {
        match (&self.units, self.command.is_empty()) {
            (Some(_), _) => Some(UNITS_INSIDE.into()),
            (None, true) => Some(ROOTFS_UNITS.into()),
            (None, false) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rootfs {} does not exist", .0.display())]
    NoRootfs(PathBuf),
    #[error("rootfs {} is not a directory", .0.display())]
    RootfsNotDir(PathBuf),
    #[error("cannot resolve {}", .path.display())]
    Resolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid machine name {0:?}: use letters, digits and _ . - (not starting with . or -, at most 64)")]
    Name(String),
    #[error("invalid hostname {0:?}: use letters, digits, - and . (at most 64)")]
    Hostname(String),
    #[error("bind source {} does not exist", .0.display())]
    NoBindSource(PathBuf),
    #[error("{what} {} must be an absolute path without ..", .path.display())]
    Inside { what: &'static str, path: PathBuf },
    #[error("units directory {} is not a directory", .0.display())]
    Units(PathBuf),
}

/// Parses `SRC:DST[:ro|:rw]`, or `SRC` for the same path inside.
pub fn parse_bind(text: &str) -> Result<Bind, String> {
    let mut parts: Vec<&str> = text.split(':').collect();
    let ro = match parts.last() {
        Some(&"ro") if parts.len() > 1 => true,
        Some(&"rw") if parts.len() > 1 => false,
        _ => {
            parts.push("rw");
            false
        }
    };
    parts.pop();
    let (src, dst) = match parts.as_slice() {
        [src] => (*src, *src),
        [src, dst] => (*src, *dst),
        _ => return Err(format!("bad bind {text:?}: expected SRC:DST[:ro]")),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(format!("bad bind {text:?}: expected SRC:DST[:ro]"));
    }
    Ok(Bind {
        src: src.into(),
        dst: dst.into(),
        ro,
    })
}

/// A machine name: also a file name in the registry.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A hostname as sethostname(2) and resolvers accept it.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
}

/// A path inside the container: absolute, no `..`.
fn inside_path(what: &'static str, path: &Path) -> Result<PathBuf, Error> {
    let ok = path.is_absolute() && path.components().all(|c| c != Component::ParentDir);
    if ok {
        Ok(path.to_path_buf())
    } else {
        Err(Error::Inside {
            what,
            path: path.to_path_buf(),
        })
    }
}

/// Checks the request against the host and resolves its defaults.
pub fn resolve(request: Request, is_root: bool, tty: Option<PathBuf>) -> Result<BootOptions, Error> {
    let rootfs = check_rootfs(&request.rootfs)?;
    let name = match request.name {
        Some(name) => name,
        None => rootfs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".into()),
    };
    if !valid_name(&name) {
        return Err(Error::Name(name));
    }
    let hostname = match request.hostname {
        Some(h) => h,
        None => hostname_of(&rootfs).unwrap_or_else(|| name.clone()),
    };
    if !valid_hostname(&hostname) {
        return Err(Error::Hostname(hostname));
    }
    let mut binds = Vec::new();
    for bind in request.binds {
        let src = std::fs::canonicalize(&bind.src).map_err(|_| Error::NoBindSource(bind.src.clone()))?;
        let dst = inside_path("bind destination", &bind.dst)?;
        binds.push(Bind { src, dst, ro: bind.ro });
    }
    let tmpfs = request
        .tmpfs
        .iter()
        .map(|p| inside_path("tmpfs", p))
        .collect::<Result<_, _>>()?;
    if let Some(units) = &request.units {
        if !units.is_dir() {
            return Err(Error::Units(units.clone()));
        }
    }
    Ok(BootOptions {
        rootfs,
        name,
        hostname,
        binds,
        tmpfs,
        read_only: request.read_only,
        net: request.net,
        publish: request.publish,
        net_pool: request.net_pool,
        userns: request.userns || !is_root,
        units: request.units,
        detach: request.detach,
        shutdown_timeout: request.shutdown_timeout,
        command: request.command,
        console: if request.detach { None } else { tty },
        notify: notify_from(std::env::var("NOTIFY_SOCKET").ok()),
    })
}

fn check_rootfs(rootfs: &Path) -> Result<PathBuf, Error> {
    match std::fs::metadata(rootfs) {
        Err(_) => return Err(Error::NoRootfs(rootfs.to_path_buf())),
        Ok(m) if !m.is_dir() => return Err(Error::RootfsNotDir(rootfs.to_path_buf())),
        Ok(_) => {}
    }
    std::fs::canonicalize(rootfs).map_err(|source| Error::Resolve {
        path: rootfs.to_path_buf(),
        source,
    })
}

/// The first line of ROOTFS/etc/hostname, when there is one.
fn hostname_of(rootfs: &Path) -> Option<String> {
    let text = std::fs::read_to_string(rootfs.join("etc/hostname")).ok()?;
    let first = text.lines().next()?.trim();
    (!first.is_empty()).then(|| first.to_string())
}

/// `$NOTIFY_SOCKET`: `@name` is abstract, anything else a path.
pub fn notify_from(value: Option<String>) -> Notify {
    match value {
        None => Notify::None,
        Some(v) if v.is_empty() => Notify::None,
        Some(v) => match v.strip_prefix('@') {
            Some(name) => Notify::Abstract(name.to_string()),
            None => Notify::Path(v.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse() {
        let b = parse_bind("/a:/b:ro").unwrap();
        assert_eq!((b.src, b.dst, b.ro), ("/a".into(), "/b".into(), true));
        let b = parse_bind("/a:/b").unwrap();
        assert!(!b.ro);
        let b = parse_bind("/a").unwrap();
        assert_eq!(b.dst, PathBuf::from("/a"));
        assert!(parse_bind("/a:/b:/c:ro").is_err());
        assert!(parse_bind(":/b").is_err());
    }

    #[test]
    fn network_modes_parse() {
        assert_eq!(Net::parse("veth"), Ok(Net::Veth));
        assert_eq!(Net::parse("bridge"), Ok(Net::Bridge("tend0".into())));
        assert_eq!(Net::parse("bridge=br1"), Ok(Net::Bridge("br1".into())));
        assert_eq!(Net::parse("ns:/run/netns/x"), Ok(Net::Ns("/run/netns/x".into())));
        assert_eq!(Net::parse("pasta"), Ok(Net::Pasta));
        for bad in [
            "bridge=",
            "bridge=a/b",
            "ns:",
            "tap",
            &format!("bridge={}", "x".repeat(16)),
        ] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
        assert!(Net::Pasta.is_new() && !Net::Ns("/x".into()).is_new() && !Net::Host.is_new());
    }

    #[test]
    fn names_and_hostnames() {
        assert!(valid_name("demo-1.x_y"));
        assert!(!valid_name(".hidden"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(valid_hostname("web.example"));
        assert!(!valid_hostname("a b"));
    }

    #[test]
    fn inside_paths_stay_inside() {
        assert!(inside_path("tmpfs", Path::new("/x/y")).is_ok());
        assert!(inside_path("tmpfs", Path::new("x")).is_err());
        assert!(inside_path("tmpfs", Path::new("/x/../../etc")).is_err());
    }

    #[test]
    fn units_inside_follow_the_command() {
        let mut o = BootOptions::default();
        assert_eq!(o.units_inside(), Some(PathBuf::from(ROOTFS_UNITS)));
        o.command = vec!["true".into()];
        assert_eq!(o.units_inside(), None);
        o.units = Some("/host/units".into());
        assert_eq!(o.units_inside(), Some(PathBuf::from(UNITS_INSIDE)));
    }

    #[test]
    fn notify_socket_kinds() {
        assert_eq!(notify_from(Some("@x".into())), Notify::Abstract("x".into()));
        assert_eq!(notify_from(Some("/run/n".into())), Notify::Path("/run/n".into()));
        assert_eq!(notify_from(None), Notify::None);
    }
}
