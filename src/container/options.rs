//! What `tend boot` is asked for ([`Request`], from the command line) and
//! the checked, resolved form the rest works from ([`BootOptions`]). Every
//! check that can fail before anything is started happens here.

use crate::unit::Resources;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// `--bind SRC:DST[:OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bind {
    pub src: PathBuf,
    /// Inside the container, absolute.
    pub dst: PathBuf,
    pub ro: bool,
    /// How its ids appear in a container with its own id range.
    pub idmap: IdMap,
    /// The launcher's idmapped copy of SRC (an fd the child inherits).
    pub tree: Option<i32>,
}

/// The ids of a bind in a container with its own id range (as nspawn's
/// `rootidmap`, `idmap`, `noidmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdMap {
    /// SRC's owner is root inside; what root makes there is SRC's owner's.
    #[default]
    Root,
    /// The container's ids 0..65535 are the host's 0..65535 in it.
    Whole,
    /// Not mapped: host files show as nobody inside.
    None,
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
    /// A new one, connected by slirp4netns (user mode: works rootless).
    Slirp4netns,
}

impl Net {
    /// Whether the container gets a network namespace of its own.
    pub fn is_new(&self) -> bool {
        matches!(
            self,
            Net::None | Net::Veth | Net::Bridge(_) | Net::Pasta | Net::Slirp4netns
        )
    }

    /// Parses `--net`'s value.
    pub fn parse(text: &str) -> Result<Net, String> {
        match text {
            "none" => Ok(Net::None),
            "host" => Ok(Net::Host),
            "veth" => Ok(Net::Veth),
            "pasta" => Ok(Net::Pasta),
            "slirp4netns" => Ok(Net::Slirp4netns),
            "bridge" => Ok(Net::Bridge("tend0".into())),
            _ => match (text.strip_prefix("bridge="), text.strip_prefix("ns:")) {
                (Some(name), _) if super::net::types::valid_ifname(name) => Ok(Net::Bridge(name.into())),
                (_, Some(path)) if !path.is_empty() => Ok(Net::Ns(path.into())),
                _ => Err(format!(
                    "unknown network {text:?} (none, host, veth, bridge[=NAME], pasta, slirp4netns, ns:PATH)"
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
    /// `--capability`, `--drop-capability`: lists of names, unchecked.
    pub capability: Vec<String>,
    pub drop_capability: Vec<String>,
    /// `--privileged`: no confinement (today's full root).
    pub privileged: bool,
    /// `--userns=START:COUNT`, unchecked.
    pub userns_range: Option<String>,
    /// `--userns-chown`: shift the rootfs's ownership instead of idmapping it.
    pub userns_chown: bool,
    /// `--seccomp=off` gives `Some(false)`; the default follows `privileged`.
    pub seccomp: Option<bool>,
    /// `--memory`, `--cpus`, `--pids`: the whole machine's bounds.
    pub resources: Resources,
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
    /// The bounding set PID 1 keeps (see [`super::caps`]).
    pub caps: super::caps::Set,
    /// `--privileged`: full capabilities, no filter, no user namespace of its own.
    pub privileged: bool,
    /// Install the default seccomp filter (see [`super::seccomp`]).
    pub seccomp: bool,
    /// As root: ids 0.. map to a range of host ids claimed in the registry
    /// ([`super::userns`]): `id_range` as asked (or `None`: picked), then
    /// as claimed.
    pub id_range_wanted: bool,
    pub id_range: Option<super::userns::Range>,
    /// `--userns-chown`: the rootfs is chowned into the range (once), not
    /// attached idmapped.
    pub userns_chown: bool,
    /// The fd of the idmapped rootfs the launcher made (the child inherits it).
    pub idmapped_root: Option<i32>,
    /// The namespaces the launcher made for the child to enter, by name
    /// (`user`, `net`, `uts`, `ipc`): fds it inherits.
    pub held: Vec<(&'static str, i32)>,
    /// The launcher's process that made them, reaped once the child runs.
    pub holder: i32,
    /// The whole machine's bounds (a cgroup the launcher makes).
    pub resources: Resources,
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
    #[error("rootfs {} is the host's own root: boot a directory holding an OS tree", .0.display())]
    RootfsIsHost(PathBuf),
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
    #[error("{what} {} goes through too many symlinks in the rootfs", .path.display())]
    Links { what: &'static str, path: PathBuf },
    #[error("{what} {} would cover the container's {}, which tend mounts itself", .path.display(), .at.display())]
    Reserved {
        what: &'static str,
        path: PathBuf,
        at: PathBuf,
    },
    #[error("units directory {} is not a directory", .0.display())]
    Units(PathBuf),
    #[error("{0}")]
    UserNs(String),
    #[error("unknown capability {name:?} in --{option} (names as in capabilities(7), e.g. CAP_NET_ADMIN, or all)")]
    Capability { option: &'static str, name: String },
}

/// Parses `SRC:DST[:OPTIONS]`, or `SRC` for the same path inside;
/// OPTIONS: comma-separated `ro`, `rw`, `rootidmap`, `idmap`, `noidmap`.
pub fn parse_bind(text: &str) -> Result<Bind, String> {
    let bad = || format!("bad bind {text:?}: expected SRC:DST[:ro|rw][,idmap|noidmap|rootidmap]");
    let mut parts: Vec<&str> = text.split(':').collect();
    let mut bind = Bind::default();
    let options = |last: &str| {
        last.split(',')
            .all(|o| ["ro", "rw", "idmap", "noidmap", "rootidmap"].contains(&o))
    };
    if parts.len() > 1 && parts.last().is_some_and(|l| options(l)) {
        for option in parts.pop().unwrap_or_default().split(',') {
            match option {
                "ro" => bind.ro = true,
                "rw" => bind.ro = false,
                "idmap" => bind.idmap = IdMap::Whole,
                "noidmap" => bind.idmap = IdMap::None,
                _ => bind.idmap = IdMap::Root,
            }
        }
    }
    let (src, dst) = match parts.as_slice() {
        [src] => (*src, *src),
        [src, dst] => (*src, *dst),
        _ => return Err(bad()),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(bad());
    }
    bind.src = src.into();
    bind.dst = dst.into();
    Ok(bind)
}

pub use crate::registry::valid_name;

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

/// A mount's destination as the container will see it: checked, then
/// resolved inside the rootfs (see [`within`]); not one tend mounts.
fn destination(rootfs: &Path, what: &'static str, path: &Path) -> Result<PathBuf, Error> {
    let path = inside_path(what, path)?;
    let Some(at) = within(rootfs, &path) else {
        return Err(Error::Links { what, path });
    };
    if ["/", "/proc", "/sys", "/dev"].iter().any(|r| at == Path::new(r)) {
        return Err(Error::Reserved { what, path, at });
    }
    Ok(at)
}

/// `path` inside the container as it resolves there: each symlink of the
/// rootfs on its way is followed as the container would follow it (an
/// absolute one from the rootfs, `..` never above it), as nspawn does. A
/// rootfs's `etc -> /etc` must not make the host's `/etc` the place tend
/// writes to or mounts on. What does not exist yet is taken as written.
/// `None` past 40 links (a loop): the rest could not be taken as written,
/// as the kernel would follow the link that is left.
pub fn within(rootfs: &Path, path: &Path) -> Option<PathBuf> {
    let mut done = PathBuf::from("/");
    let mut rest: std::collections::VecDeque<OsString> = parts(path).collect();
    // The kernel's own limit of links in one lookup.
    let mut links = 0;
    while let Some(part) = rest.pop_front() {
        if part == ".." {
            done.pop();
            continue;
        }
        let next = done.join(&part);
        let host = super::plan::under(rootfs, &next);
        let link = std::fs::symlink_metadata(&host)
            .is_ok_and(|m| m.file_type().is_symlink())
            .then(|| std::fs::read_link(&host).ok())
            .flatten();
        match link {
            Some(_) if links >= 40 => return None,
            Some(target) => {
                links += 1;
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                for part in parts(&target).collect::<Vec<_>>().into_iter().rev() {
                    rest.push_front(part);
                }
            }
            None => done = next,
        }
    }
    Some(done)
}

/// The names and `..`s of a path (`.` and `/` dropped).
fn parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

/// A machine's name when `--name` gives none: its rootfs directory's.
pub fn default_name(rootfs: &Path) -> String {
    rootfs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
}

/// Checks the request against the host and resolves its defaults.
pub fn resolve(request: Request, is_root: bool, tty: Option<PathBuf>) -> Result<BootOptions, Error> {
    let caps = capabilities(&request)?;
    let id_range = id_range(&request, is_root)?;
    let rootfs = check_rootfs(&request.rootfs)?;
    let name = request.name.unwrap_or_else(|| default_name(&rootfs));
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
        let dst = destination(&rootfs, "bind destination", &bind.dst)?;
        binds.push(Bind { src, dst, ..bind });
    }
    let tmpfs = request
        .tmpfs
        .iter()
        .map(|p| destination(&rootfs, "tmpfs", p))
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
        userns: !request.privileged,
        units: request.units,
        detach: request.detach,
        shutdown_timeout: request.shutdown_timeout,
        command: request.command,
        console: if request.detach { None } else { tty },
        notify: notify_from(std::env::var("NOTIFY_SOCKET").ok()),
        caps,
        privileged: request.privileged,
        seccomp: request.seccomp.unwrap_or(!request.privileged),
        id_range_wanted: is_root && !request.privileged,
        id_range,
        userns_chown: request.userns_chown,
        idmapped_root: None,
        held: Vec::new(),
        holder: 0,
        resources: request.resources,
    })
}

/// The range `--userns=START:COUNT` names, checked against the other options.
fn id_range(request: &Request, is_root: bool) -> Result<Option<super::userns::Range>, Error> {
    if request.privileged && (request.userns || request.userns_range.is_some()) {
        return Err(Error::UserNs("--userns cannot be combined with --privileged".into()));
    }
    if request.privileged && request.userns_chown {
        return Err(Error::UserNs(
            "--userns-chown cannot be combined with --privileged (no id range to chown into)".into(),
        ));
    }
    if request.privileged && !is_root {
        return Err(Error::UserNs("--privileged needs root".into()));
    }
    if request.userns_chown && !is_root {
        return Err(Error::UserNs(
            "--userns-chown needs root (a rootless boot maps the ids of /etc/subuid)".into(),
        ));
    }
    let Some(text) = &request.userns_range else {
        return Ok(None);
    };
    if !is_root {
        return Err(Error::UserNs(
            "--userns=START:COUNT needs root (a rootless boot maps the ids of /etc/subuid)".into(),
        ));
    }
    let range = super::userns::parse(text).map_err(Error::UserNs)?;
    let span = crate::sys::chown::SPAN;
    if request.userns_chown && (range.start % span != 0 || range.count < span) {
        return Err(Error::UserNs(format!(
            "--userns-chown needs --userns=START:COUNT with START a multiple of 65536 and COUNT at least 65536, not {text}"
        )));
    }
    Ok(Some(range))
}

/// The bounding set asked for: the default, `--capability`, `--drop-capability`.
fn capabilities(request: &Request) -> Result<super::caps::Set, Error> {
    use super::caps;
    let parse = |option: &'static str, lists: &[String]| {
        lists.iter().try_fold(0, |set, list| {
            caps::parse(list)
                .map(|s| set | s)
                .map_err(|name| Error::Capability { option, name })
        })
    };
    let add = parse("capability", &request.capability)?;
    let drop = parse("drop-capability", &request.drop_capability)?;
    let base = caps::base(request.privileged, request.net == Net::None);
    Ok(caps::resolve(base, add, drop))
}

fn check_rootfs(rootfs: &Path) -> Result<PathBuf, Error> {
    match std::fs::metadata(rootfs) {
        Err(_) => return Err(Error::NoRootfs(rootfs.to_path_buf())),
        Ok(m) if !m.is_dir() => return Err(Error::RootfsNotDir(rootfs.to_path_buf())),
        Ok(_) => {}
    }
    let resolved = std::fs::canonicalize(rootfs).map_err(|source| Error::Resolve {
        path: rootfs.to_path_buf(),
        source,
    })?;
    // As nspawn refuses it: the host's own tree, its mounts and all.
    if resolved == Path::new("/") {
        return Err(Error::RootfsIsHost(rootfs.to_path_buf()));
    }
    Ok(resolved)
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
        assert_eq!(parse_bind("/a:/b").unwrap().idmap, IdMap::Root);
        let b = parse_bind("/a:/b:ro,noidmap").unwrap();
        assert!(b.ro && b.idmap == IdMap::None);
        assert_eq!(parse_bind("/a:/b:idmap").unwrap().idmap, IdMap::Whole);
        assert!(parse_bind(":/b").is_err());
    }

    #[test]
    fn network_modes_parse() {
        assert_eq!(Net::parse("veth"), Ok(Net::Veth));
        assert_eq!(Net::parse("bridge"), Ok(Net::Bridge("tend0".into())));
        assert_eq!(Net::parse("bridge=br1"), Ok(Net::Bridge("br1".into())));
        assert_eq!(Net::parse("ns:/run/netns/x"), Ok(Net::Ns("/run/netns/x".into())));
        assert_eq!(Net::parse("pasta"), Ok(Net::Pasta));
        assert_eq!(Net::parse("slirp4netns"), Ok(Net::Slirp4netns));
        for bad in [
            "bridge=",
            "bridge=a/b",
            "ns:",
            "tap",
            &format!("bridge={}", "x".repeat(16)),
        ] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Net::Pasta.is_new() && Net::Slirp4netns.is_new() && !Net::Ns("/x".into()).is_new() && !Net::Host.is_new()
        );
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
    fn destinations_resolve_inside_the_rootfs() {
        let root = std::env::temp_dir().join(format!("tend-within-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("srv/data")).unwrap();
        let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
        link("/etc", "etc"); // absolute: the rootfs's /etc, not the host's
        link("srv/data", "data");
        link("../../../..", "srv/up");
        link("loop", "loop");
        link("/", "top");
        let at = |p: &str| within(&root, Path::new(p));
        assert_eq!(at("/data/x/y").as_deref(), Some(Path::new("/srv/data/x/y")));
        assert_eq!(at("/srv/up/srv").as_deref(), Some(Path::new("/srv")));
        assert_eq!(at("/mnt/new").as_deref(), Some(Path::new("/mnt/new")));
        // A loop (etc -> /etc is one inside the rootfs) is refused, not
        // taken as written: the kernel would follow what is left.
        assert_eq!(at("/etc/hosts"), None);
        assert_eq!(at("/loop/x"), None);
        assert!(matches!(
            destination(&root, "tmpfs", Path::new("/loop/x")),
            Err(Error::Links { .. })
        ));
        let refused = destination(&root, "tmpfs", Path::new("/top"));
        assert!(matches!(refused, Err(Error::Reserved { .. })), "{refused:?}");
        for reserved in ["/", "/proc", "/dev"] {
            assert!(destination(&root, "tmpfs", Path::new(reserved)).is_err(), "{reserved}");
        }
        assert!(destination(&root, "tmpfs", Path::new("/dev/fuse")).is_ok());
        std::fs::remove_dir_all(&root).unwrap();
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
