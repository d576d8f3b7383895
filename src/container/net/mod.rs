//! A machine's own network: `--net veth` (a veth pair to the host, an
//! address from the pool), `--net bridge[=NAME]` (the host side on a
//! bridge), egress NAT and `--publish` in tend's own nftables table, and
//! `--net ns:PATH` (join a namespace that exists). [`prepare`] checks and
//! takes an address before anything starts; [`Network::attach`] builds it
//! once the container's PID 1 exists; dropping the [`Network`] (in the
//! launcher) takes it all down, and the next boot takes down what a killed
//! launcher left.

pub mod apply;
pub mod dns;
pub mod lease;
pub mod pasta;
pub mod plan;
pub mod slirp;
pub mod types;
pub mod usermode;

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use crate::sys::fault::Fault;
use apply::{Real, System};
use lease::{Lease, Shared};
use plan::{Link, Place, Step};
pub use types::{parse_publish, Cidr, Proto, Publish, DEFAULT_POOL};

use super::options::{BootOptions, Net};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run {tool}")]
    Tool {
        tool: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{tool} failed on {input:?}: {stderr}")]
    ToolFailed {
        tool: &'static str,
        input: String,
        stderr: String,
    },
    #[error("cannot {step} {place}")]
    Link {
        place: Place,
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write nftables table inet tend")]
    Table {
        #[source]
        source: io::Error,
    },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("--net {tool}: {reason}")]
    UserMode { tool: &'static str, reason: String },
    #[error("cannot set {}", .path.display())]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot use the machine registry {}", .path.display())]
    Registry {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}", .path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--net-pool {pool} overlaps the host's route to {route} on {iface}")]
    PoolOverlap { pool: Cidr, route: Cidr, iface: String },
    #[error("--net-pool {0} has no free address left")]
    Exhausted(Cidr),
    #[error("--publish {0}: the host's port is in use")]
    PortInUse(Publish),
    #[error("--publish {0}: needs --net veth, bridge, pasta or slirp4netns")]
    PublishWithoutNet(Publish),
    #[error("--net-pool {0}: needs --net veth or bridge")]
    PoolWithoutNet(Cidr),
    #[error("--net bridge={0}: {0} exists and is not a bridge")]
    NotBridge(String),
    #[error("--net bridge={0}: not a valid interface name")]
    BridgeName(String),
    #[error("--net {0} needs root (CAP_NET_ADMIN on the host); rootless, use --net pasta or slirp4netns")]
    NeedsRoot(&'static str),
    #[error("--net ns:{}: cannot join", .path.display())]
    Join {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How long the end of a machine waits for its veth pair to be deleted.
const LINGER_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The network of one machine, owned by its launcher.
pub struct Network {
    dir: PathBuf,
    /// The launcher's pid: a cloned child's copy does nothing on drop.
    owner: u32,
    lease: Option<Lease>,
    pasta: Option<pasta::Pasta>,
    slirp: Option<slirp::Slirp>,
    /// `--net pasta` or `slirp4netns`: what to start once the container
    /// exists (the mode, its ports, whether it has a user namespace).
    user_mode: Option<(Net, Vec<Publish>, bool)>,
    /// The nf_tables socket that wrote the table: closed after the end.
    nft: Option<std::os::fd::OwnedFd>,
    /// The child that deletes the veth pair and closes the socket last.
    lingering: Option<crate::sys::netlink::Lingering>,
    name: String,
    /// `TEND_TEST_FAULT`: the launcher's steps counted (see
    /// [`crate::sys::fault`]).
    fault: Fault,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").field("lease", &self.lease).finish()
    }
}

/// Where the container's namespaces are, as paths the launcher (and the
/// tools it runs) can open: `/proc/PID/ns/...`, or a descriptor the
/// launcher holds (`/proc/LAUNCHER/fd/N`).
#[derive(Debug, Clone)]
pub struct Target {
    pub netns: PathBuf,
    pub userns: PathBuf,
}

/// Checks the network options against the host and takes the machine's
/// address, before anything starts; joins `--net ns:PATH` (the clone then
/// inherits it).
pub fn prepare(o: &BootOptions) -> Result<Network, Error> {
    let mut network = Network {
        dir: crate::registry::dir(),
        owner: std::process::id(),
        lease: None,
        pasta: None,
        slirp: None,
        user_mode: None,
        nft: None,
        lingering: None,
        name: o.name.clone(),
        fault: Fault::from_env(),
    };
    sweep_stale(&network.dir);
    match &o.net {
        Net::Veth | Net::Bridge(_) => {}
        Net::Pasta | Net::Slirp4netns => {
            if let Some(pool) = o.net_pool {
                return Err(Error::PoolWithoutNet(pool));
            }
            match o.net {
                Net::Pasta => pasta::check()?,
                _ => slirp::check()?,
            };
            for p in &o.publish {
                check_port(p, &[])?;
            }
            network.user_mode = Some((o.net.clone(), o.publish.clone(), o.userns));
            return Ok(network);
        }
        Net::Ns(path) => {
            no_publish(o)?;
            let join = |path: &Path| crate::sys::ns::enter_netns(&crate::sys::ns::open_ns_file(path)?);
            join(path).map_err(|source| Error::Join {
                path: path.clone(),
                source,
            })?;
            return Ok(network);
        }
        Net::None | Net::Host => {
            no_publish(o)?;
            return Ok(network);
        }
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NeedsRoot(if o.net == Net::Veth { "veth" } else { "bridge" }));
    }
    network.lease = Some(take_lease(&network.dir, o, &mut network.fault)?);
    Ok(network)
}

/// `--publish` and `--net-pool` are for networks tend makes.
fn no_publish(o: &BootOptions) -> Result<(), Error> {
    if let Some(pool) = o.net_pool {
        return Err(Error::PoolWithoutNet(pool));
    }
    match o.publish.first() {
        Some(p) => Err(Error::PublishWithoutNet(*p)),
        None => Ok(()),
    }
}

fn registry_error(dir: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Registry {
        path: dir.to_path_buf(),
        source,
    }
}

/// Under the lock: the stale leases of dead launchers cleaned, the checks,
/// then the first free slot written down as this machine's.
fn take_lease(dir: &Path, o: &BootOptions, fault: &mut Fault) -> Result<Lease, Error> {
    let netns = crate::sys::ns::netns_id().map_err(registry_error(dir))?;
    let _lock = lease::lock(dir).map_err(registry_error(dir))?;
    let mut sys = Real::host();
    sweep(dir, netns, &mut sys);
    // A dead machine of another namespace holds no address any more.
    let leases: Vec<Lease> = lease::all(dir)
        .into_iter()
        .filter(|l| l.netns == netns || lease::alive(l))
        .collect();
    let pool = o.net_pool.unwrap_or(DEFAULT_POOL);
    let shared = lease::read_shared(dir, netns);
    let ours: Vec<&str> = leases
        .iter()
        .filter(|l| l.netns == netns)
        .map(|l| l.host_if.as_str())
        .chain(shared.iter().flat_map(|s| s.bridges.iter().map(String::as_str)))
        .collect();
    let routes = std::fs::read_to_string("/proc/self/net/route").unwrap_or_default();
    check_pool(pool, &plan::routes(&routes), &ours)?;
    let bridge = match &o.net {
        Net::Bridge(name) => Some(check_bridge(name)?),
        _ => None,
    };
    for p in &o.publish {
        check_port(p, &leases)?;
    }
    let slot = lease::free_slot(pool, &leases).ok_or(Error::Exhausted(pool))?;
    let lease = Lease {
        name: o.name.clone(),
        launcher: std::process::id() as i32,
        netns,
        pool,
        slot,
        bridge: bridge.map(|(name, _)| name),
        host_if: types::host_ifname(&o.name),
        publish: o.publish.clone(),
    };
    fault
        .step()
        .map_err(io::Error::from)
        .and_then(|()| lease::write(dir, &lease))
        .map_err(|source| Error::Record {
            path: lease::lease_path(dir, &lease.name),
            source,
        })?;
    Ok(lease)
}

/// The pool must not overlap a route of the host that is not tend's.
pub fn check_pool(pool: Cidr, routes: &[(String, Cidr)], ours: &[&str]) -> Result<(), Error> {
    let clash = routes
        .iter()
        .filter(|(iface, route)| route.prefix > 0 && !ours.contains(&iface.as_str()))
        .find(|(_, route)| route.overlaps(&pool));
    match clash {
        Some((iface, route)) => Err(Error::PoolOverlap {
            pool,
            route: *route,
            iface: iface.clone(),
        }),
        None => Ok(()),
    }
}

/// A bridge name, and whether it exists already (else tend creates it).
fn check_bridge(name: &str) -> Result<(String, bool), Error> {
    if !types::valid_ifname(name) {
        return Err(Error::BridgeName(name.into()));
    }
    match Real::host().link_kind(name)? {
        None => Ok((name.into(), false)),
        Some(Some(kind)) if kind == "bridge" => Ok((name.into(), true)),
        Some(_) => Err(Error::NotBridge(name.into())),
    }
}

/// The host port is free: no live machine publishes it, and it binds.
fn check_port(p: &Publish, leases: &[Lease]) -> Result<(), Error> {
    let netns = crate::sys::ns::netns_id().unwrap_or(0);
    let taken = leases.iter().filter(|l| l.netns == netns && lease::alive(l)).any(|l| {
        l.publish.iter().any(|q| {
            q.host_port == p.host_port && q.proto == p.proto && (q.ip.is_none() || p.ip.is_none() || q.ip == p.ip)
        })
    });
    let addr = SocketAddrV4::new(p.ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port);
    let binds = match p.proto {
        Proto::Tcp => std::net::TcpListener::bind(addr).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind(addr).is_ok(),
    };
    if taken || !binds {
        return Err(Error::PortInUse(*p));
    }
    Ok(())
}

/// What launchers killed before cleaning up left: their pastas and API
/// sockets of slirp4netns, and (only
/// when there are such leases, to keep a boot without them cheap) their
/// links and rules in this namespace.
fn sweep_stale(dir: &Path) {
    // One listing for the three kinds (each boot pays for it).
    let listing = listing(dir);
    pasta::sweep(&listing);
    slirp::sweep(&listing);
    let Ok(netns) = crate::sys::ns::netns_id() else { return };
    if !lease::in_listing(&listing).iter().any(|l| stale_here(l, netns)) {
        return;
    }
    let Ok(_lock) = lease::lock(dir) else { return };
    sweep(dir, netns, &mut Real::host());
}

/// The paths of the files in `dir`; none where it cannot be read.
fn listing(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A lease of a dead launcher in this namespace. One of another namespace
/// is left for a boot there: only there can its rules be removed.
fn stale_here(lease: &Lease, netns: u64) -> bool {
    lease.netns == netns && !lease::alive(lease)
}

/// Takes down what machines of dead launchers left in this namespace, and
/// forgets their leases.
fn sweep(dir: &Path, netns: u64, sys: &mut dyn System) {
    let stale: Vec<Lease> = lease::all(dir).into_iter().filter(|l| stale_here(l, netns)).collect();
    for l in &stale {
        if crate::sys::ns::link_exists(&l.host_if) {
            apply::undo(sys, &plan::undo(&plan::machine(l, "0")));
        }
        lease::remove(dir, &l.name);
    }
    if !stale.is_empty() {
        let unused = reconcile(dir, netns, sys);
        remove_bridges(sys, &unused);
    }
}

/// Deletes bridges tend made, here and now.
fn remove_bridges(sys: &mut dyn System, bridges: &[String]) {
    for bridge in bridges {
        apply::undo(sys, &plan::undo(&plan::bridge(bridge, DEFAULT_POOL)));
    }
}

/// The shared part made to fit the live leases of this namespace: the
/// table rewritten, and with the last machine gone, forwarding as it was.
/// Returns the bridges tend made that nobody uses any more, forgotten in
/// the registry: the caller deletes them (see [`remove_bridges`]).
fn reconcile(dir: &Path, netns: u64, sys: &mut dyn System) -> Vec<String> {
    let Some(mut shared) = lease::read_shared(dir, netns) else {
        return Vec::new();
    };
    let leases: Vec<Lease> = lease::all(dir).into_iter().filter(|l| l.netns == netns).collect();
    let unused: Vec<String> = shared
        .bridges
        .iter()
        .filter(|b| !leases.iter().any(|l| l.bridge.as_ref() == Some(b)))
        .cloned()
        .collect();
    if let Err(e) = sys.table(&plan::ruleset(&leases, &shared)) {
        tracing::warn!("{}", crate::sys::chain(&e));
    }
    shared.bridges.retain(|b| !unused.contains(b));
    if leases.is_empty() {
        apply::undo(sys, &plan::undo(&plan::forwarding(&shared)));
        lease::remove_shared(dir, netns);
    } else if let Err(e) = lease::write_shared(dir, &shared) {
        tracing::warn!("cannot write the shared network state: {e}");
    }
    unused
}

impl Network {
    /// With `TEND_TEST_FAULT` set: how many steps the launcher counted,
    /// for the child to number its own after them.
    pub fn fault_steps(&self) -> Option<u64> {
        self.fault.armed().then_some(self.fault.steps)
    }

    /// The launcher's step counter, for its other steps (the machine's
    /// cgroups) to be counted with the network's.
    pub fn fault(&mut self) -> &mut Fault {
        &mut self.fault
    }

    /// The container's address, when it has one from the pool.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.lease.as_ref().map(Lease::address)
    }

    /// Builds the network of the container whose namespaces are `target`.
    pub fn attach(&mut self, target: &Target) -> Result<(), Error> {
        match self.user_mode.take() {
            Some((Net::Pasta, publish, userns)) => {
                self.pasta = Some(pasta::start(&self.dir, &self.name, target, &publish, userns)?);
            }
            Some((Net::Slirp4netns, publish, userns)) => {
                self.slirp = Some(slirp::start(&self.dir, &self.name, target, &publish, userns)?);
            }
            _ => {}
        }
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        let dir = &self.dir;
        let _lock = lease::lock(dir).map_err(registry_error(dir))?;
        let netns = target.netns.display().to_string();
        let mut sys = Real::container(target.netns.clone());
        let mut counted = apply::Faulty {
            inner: &mut sys,
            fault: &mut self.fault,
        };
        let result = build(dir, lease, &netns, &mut counted);
        self.nft = sys.take_nft();
        if result.is_ok() {
            // Now, while the container sets up: its end then forks nothing.
            let pair = sys.host_index(&lease.host_if);
            let keep: Vec<_> = self.nft.iter().collect();
            self.lingering = crate::sys::netlink::Lingering::start(pair, &keep).ok();
        }
        if result.is_err() {
            lease::remove(dir, &lease.name);
            let unused = reconcile(dir, lease.netns, &mut sys);
            remove_bridges(&mut sys, &unused);
            self.lease = None;
        }
        result
    }
}

/// Under the lock: forwarding and the bridge when first needed, the
/// machine's links, then the table with its rules.
fn build(dir: &Path, lease: &Lease, netns: &str, sys: &mut dyn System) -> Result<(), Error> {
    let mut shared = match lease::read_shared(dir, lease.netns) {
        Some(shared) => shared,
        None => {
            let shared = Shared {
                netns: lease.netns,
                forward_was: sys.read_sysctl(plan::IP_FORWARD)?,
                bridges: Vec::new(),
            };
            write_shared(dir, &shared, sys)?;
            apply::apply(sys, &plan::forwarding(&shared))?;
            shared
        }
    };
    if let Some(bridge) = &lease.bridge {
        if !check_bridge(bridge)?.1 {
            // Recorded first: a failure half-way still removes it.
            shared.bridges.push(bridge.clone());
            write_shared(dir, &shared, sys)?;
            apply::apply(sys, &plan::bridge(bridge, lease.pool))?;
        }
    }
    // The host side first (the link must exist), then the inside, then
    // the table.
    let (host, inside): (Vec<Step>, Vec<Step>) = plan::machine(lease, netns)
        .into_iter()
        .partition(|s| s.place == Place::Host);
    apply::apply(sys, &host)?;
    let leases: Vec<Lease> = lease::all(dir).into_iter().filter(|l| l.netns == lease.netns).collect();
    let rules = plan::ruleset(&leases, &shared);
    sys.links(Place::Container, &plan::links(&inside))
        .and_then(|()| sys.table(&rules))
        .inspect_err(|_| apply::undo(sys, &plan::undo(&host)))
}

/// The shared file written, a step of its own (see [`apply::Faulty`]).
fn write_shared(dir: &Path, shared: &Shared, sys: &mut dyn System) -> Result<(), Error> {
    sys.step()
        .map_err(io::Error::from)
        .and_then(|()| lease::write_shared(dir, shared))
        .map_err(|source| Error::Record {
            path: lease::shared_path(dir, shared.netns),
            source,
        })
}

/// The link operations that take a machine's links down.
fn undo_links(lease: &Lease) -> Vec<Link> {
    plan::undo(&plan::machine(lease, "0"))
        .into_iter()
        .filter_map(|(_, action)| match action {
            plan::Action::Link(link) => Some(link),
            plan::Action::Sysctl { .. } => None,
        })
        .collect()
}

impl Drop for Network {
    fn drop(&mut self) {
        if std::process::id() != self.owner {
            return;
        }
        if let Some(p) = self.pasta.take() {
            pasta::stop(p);
        }
        if let Some(s) = self.slirp.take() {
            slirp::stop(s);
        }
        let Some(lease) = self.lease.take() else { return };
        let dir = &self.dir;
        let _lock = lease::lock(dir);
        let mut sys = Real::host_with(self.nft.take());
        lease::remove(dir, &lease.name);
        let unused = reconcile(dir, lease.netns, &mut sys);
        // The deletions of the pair and of a bridge it was the last on,
        // and the last close of the table's socket, each wait for the
        // kernel's RCU grace period: a child does them, and this returns
        // once the links are gone from view (so the same names can be
        // made again at once), under the registry's lock. Only after the
        // table and forwarding above: both take the kernel's rtnl lock,
        // and whoever releases it next while a deletion is pending
        // finishes that unregistration, waiting for the device's last
        // references (up to a second, seen when the child went first).
        let (handed, more) = unused.split_at(unused.len().min(crate::sys::netlink::LINGER_MORE));
        remove_bridges(&mut sys, more);
        let bridges: Vec<u32> = handed.iter().filter_map(|b| sys.host_index(b)).collect();
        let keep: Vec<_> = sys.take_nft().into_iter().collect();
        let done = match self.lingering.take() {
            // It holds its own copy of the socket, and knows the pair.
            Some(lingering) => {
                drop(keep);
                lingering.finish(&bridges, LINGER_LIMIT)
            }
            None => {
                // Often the kernel removed the pair already, with the namespace.
                let pair = sys.host_index(&lease.host_if);
                crate::sys::netlink::linger(pair, &bridges, keep, LINGER_LIMIT)
            }
        };
        if let Err(e) = done {
            tracing::debug!("deleting {} in a child: {}", lease.host_if, crate::sys::describe(&e));
            if crate::sys::ns::link_exists(&lease.host_if) {
                let _ = sys.links(Place::Host, &undo_links(&lease));
            }
            let left: Vec<String> = handed
                .iter()
                .filter(|b| crate::sys::ns::link_exists(b))
                .cloned()
                .collect();
            remove_bridges(&mut sys, &left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apply::Recording;

    fn web(dir: &Path) -> Lease {
        let lease = Lease {
            name: "web".into(),
            launcher: std::process::id() as i32,
            netns: 7,
            pool: DEFAULT_POOL,
            slot: 1,
            bridge: None,
            host_if: "ve-web".into(),
            publish: vec![],
        };
        lease::write(dir, &lease).unwrap();
        lease
    }

    #[test]
    fn a_machine_is_built_in_order_and_undone_when_the_table_fails() {
        let dir = std::env::temp_dir().join(format!("tend-net-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lease = web(&dir);
        let mut sys = Recording::default();
        build(&dir, &lease, "42", &mut sys).unwrap();
        let log: Vec<&str> = sys
            .log
            .iter()
            .map(|l| l.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            log,
            [
                "sysctl net/ipv4/ip_forward=1",
                "ip Host",
                "ip Host",
                "ip Host",
                "ip Container",
                "nft 17"
            ]
        );
        assert_eq!(lease::read_shared(&dir, 7).unwrap().forward_was, "0");
        let mut sys = Recording {
            fail_on: Some("nft".into()),
            ..Recording::default()
        };
        assert!(build(&dir, &lease, "42", &mut sys).is_err());
        assert_eq!(sys.log.last().map(String::as_str), Some("ip Host: link del ve-web"));
        // The last machine gone: the table and forwarding as they were.
        lease::remove(&dir, "web");
        let mut sys = Recording::default();
        reconcile(&dir, 7, &mut sys);
        assert_eq!(sys.log, ["nft 2", "sysctl net/ipv4/ip_forward=0"]);
        assert!(lease::read_shared(&dir, 7).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_pool_must_not_overlap_a_foreign_route() {
        let routes = vec![
            (
                "eth0".to_string(),
                Cidr {
                    base: Ipv4Addr::UNSPECIFIED,
                    prefix: 0,
                },
            ),
            ("eth0".to_string(), "192.168.1.0/24".parse().unwrap()),
            ("ve-web".to_string(), "10.231.0.4/29".parse().unwrap()),
        ];
        assert!(check_pool(DEFAULT_POOL, &routes, &["ve-web"]).is_ok());
        let e = check_pool("192.168.0.0/16".parse().unwrap(), &routes, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--net-pool 192.168.0.0/16 overlaps the host's route to 192.168.1.0/24 on eth0"
        );
        assert!(check_pool(DEFAULT_POOL, &routes, &[]).is_err());
    }
}
