//! The network part of the machine registry: one `NAME.net` per machine
//! with a network of its own (its address slot in the pool, its host
//! interface, its published ports), and one `net-NSINO.json` per host
//! network namespace for what the machines there share (forwarding as it
//! was, bridges tend made). Read and changed only under a flock of the
//! directory, so two boots never take one address.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::types::{Cidr, Publish};

/// One machine's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub name: String,
    /// The launcher: the lease is stale once it is gone.
    pub launcher: i32,
    /// The inode of the host network namespace it lives in.
    pub netns: u64,
    pub pool: Cidr,
    /// Which /30 of the pool (from 1; 0 holds the bridges' gateway).
    pub slot: u32,
    pub bridge: Option<String>,
    pub host_if: String,
    pub publish: Vec<Publish>,
}

impl Lease {
    fn nth(&self, offset: u32) -> Ipv4Addr {
        self.pool
            .nth(self.slot.saturating_mul(4).saturating_add(offset))
            .unwrap_or(self.pool.base)
    }

    /// The container's address.
    pub fn address(&self) -> Ipv4Addr {
        self.nth(2)
    }

    /// The host's address the container routes through.
    pub fn gateway(&self) -> Ipv4Addr {
        match self.bridge {
            Some(_) => self.pool.nth(1).unwrap_or(self.pool.base),
            None => self.nth(1),
        }
    }

    /// The prefix length of the container's address.
    pub fn prefix(&self) -> u8 {
        match self.bridge {
            Some(_) => self.pool.prefix,
            None => 30,
        }
    }
}

/// What the machines of one host network namespace share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    pub netns: u64,
    /// `net.ipv4.ip_forward` before the first machine.
    pub forward_was: String,
    /// Bridges tend created (and removes with their last machine).
    pub bridges: Vec<String>,
}

/// The first free slot of `pool`, given every lease (of any namespace: an
/// address is never handed out twice).
pub fn free_slot(pool: Cidr, leases: &[Lease]) -> Option<u32> {
    let taken = |slot: u32| {
        let Some(net) = pool.nth(slot.saturating_mul(4)) else {
            return true;
        };
        let quad = Cidr { base: net, prefix: 30 };
        leases.iter().any(|l| {
            let theirs = Cidr {
                base: l.nth(0),
                prefix: 30,
            };
            let gateway = Cidr {
                base: l.pool.base,
                prefix: 30,
            };
            quad.overlaps(&theirs) || quad.overlaps(&gateway)
        })
    };
    (1..pool.slots()).find(|&slot| !taken(slot))
}

/// The registry's lock for networks, held until dropped.
pub struct Lock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

/// The lock is the directory itself: no lock file is left behind.
pub fn lock(dir: &Path) -> io::Result<Lock> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::File::open(dir)?;
    let file =
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
    Ok(Lock { _file: file })
}

pub fn lease_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.net"))
}

pub fn shared_path(dir: &Path, netns: u64) -> PathBuf {
    dir.join(format!("net-{netns}.json"))
}

/// Every lease in `dir`, live or stale.
pub fn all(dir: &Path) -> Vec<Lease> {
    in_listing(&super::listing(dir))
}

/// The leases among the files of a directory's listing.
pub fn in_listing(paths: &[PathBuf]) -> Vec<Lease> {
    paths
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .filter_map(|p| serde_json::from_slice(std::fs::read_to_string(p).ok()?.as_bytes()).ok())
        .collect()
}

/// The address of machine `name`, for `tend list`.
pub fn address(dir: &Path, name: &str) -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string(lease_path(dir, name)).ok()?;
    serde_json::from_slice::<Lease>(text.as_bytes())
        .ok()
        .map(|l| l.address())
}

pub fn write(dir: &Path, lease: &Lease) -> io::Result<()> {
    let text = serde_json::to_string(lease).map_err(io::Error::other)?;
    std::fs::write(lease_path(dir, &lease.name), text)
}

pub fn remove(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(lease_path(dir, name));
}

pub fn read_shared(dir: &Path, netns: u64) -> Option<Shared> {
    serde_json::from_slice(std::fs::read_to_string(shared_path(dir, netns)).ok()?.as_bytes()).ok()
}

pub fn write_shared(dir: &Path, shared: &Shared) -> io::Result<()> {
    let text = serde_json::to_string(shared).map_err(io::Error::other)?;
    std::fs::write(shared_path(dir, shared.netns), text)
}

pub fn remove_shared(dir: &Path, netns: u64) {
    let _ = std::fs::remove_file(shared_path(dir, netns));
}

/// Whether the lease's launcher still runs.
pub fn alive(lease: &Lease) -> bool {
    lease.launcher > 0 && Path::new(&format!("/proc/{}", lease.launcher)).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::net::types::DEFAULT_POOL;

    fn at(slot: u32, pool: Cidr) -> Lease {
        Lease {
            name: format!("m{slot}"),
            launcher: 1,
            netns: 1,
            pool,
            slot,
            bridge: None,
            host_if: format!("ve-m{slot}"),
            publish: vec![],
        }
    }

    #[test]
    fn slots_are_handed_out_once() {
        assert_eq!(free_slot(DEFAULT_POOL, &[]), Some(1));
        let leases = [at(1, DEFAULT_POOL), at(2, DEFAULT_POOL), at(4, DEFAULT_POOL)];
        assert_eq!(free_slot(DEFAULT_POOL, &leases), Some(3));
        // Another pool around the same addresses sees them taken too.
        let narrow: Cidr = "10.231.0.0/28".parse().unwrap();
        assert_eq!(free_slot(narrow, &leases), Some(3));
        let tiny: Cidr = "10.231.0.0/29".parse().unwrap();
        assert_eq!(free_slot(tiny, &leases), None, "exhausted");
        let l = at(3, DEFAULT_POOL);
        assert_eq!(l.address(), Ipv4Addr::new(10, 231, 0, 14));
        assert_eq!(l.gateway(), Ipv4Addr::new(10, 231, 0, 13));
    }

    #[test]
    fn leases_round_trip_under_the_lock() {
        let dir = std::env::temp_dir().join(format!("tend-lease-{}", std::process::id()));
        let _lock = lock(&dir).unwrap();
        let l = at(5, DEFAULT_POOL);
        write(&dir, &l).unwrap();
        assert_eq!(all(&dir), vec![l.clone()]);
        assert_eq!(address(&dir, "m5"), Some(Ipv4Addr::new(10, 231, 0, 22)));
        remove(&dir, "m5");
        assert!(all(&dir).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
