//! Name resolution for a machine: an `/etc/resolv.conf` when the rootfs
//! has none (the host's, without loopback servers a container on its own
//! network cannot reach), and for a machine with an address from the pool
//! or slirp4netns's an `/etc/hosts` line for its own name. The rootfs's own files are kept;
//! nothing is written for `--net none`, nor into a `--read-only` rootfs.

use std::net::Ipv4Addr;
use std::path::Path;

use super::super::options::{within, BootOptions, Net};
use super::super::plan::under;

/// The resolv.conf for the container, from the host's text: as is with
/// the host's own network, else without nameservers on loopback (and with
/// slirp4netns, its forwarder instead of the host's servers: it asks
/// them, loopback ones included); `None` when no nameserver is left or the
/// machine has no network.
pub fn resolv_conf(host: &str, net: &Net) -> Option<String> {
    let keep_loopback = matches!(net, Net::Host);
    if *net == Net::None {
        return None;
    }
    if *net == Net::Slirp4netns {
        let head = format!("# written by tend for slirp4netns\nnameserver {}\n", super::slirp::DNS);
        let rest = host
            .lines()
            .filter(|l| l.split_whitespace().next() != Some("nameserver"))
            .map(|l| format!("{l}\n"));
        return Some(std::iter::once(head).chain(rest).collect());
    }
    let loopback = |line: &str| {
        let mut words = line.split_whitespace();
        words.next() == Some("nameserver")
            && words
                .next()
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .is_some_and(|a| a.is_loopback())
    };
    let lines: Vec<&str> = host.lines().filter(|l| keep_loopback || !loopback(l)).collect();
    let servers = lines.iter().any(|l| l.split_whitespace().next() == Some("nameserver"));
    servers.then(|| format!("# written by tend from the host's\n{}\n", lines.join("\n")))
}

/// The hosts file with a line for `hostname` at `addr`, when the text has
/// none for it; `None` when it has.
pub fn hosts(text: &str, hostname: &str, addr: Ipv4Addr) -> Option<String> {
    let named = text.lines().any(|line| {
        let line = line.split('#').next().unwrap_or_default();
        line.split_whitespace().skip(1).any(|name| name == hostname)
    });
    if named {
        return None;
    }
    let mut out = if text.is_empty() {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_string()
    } else {
        text.to_string()
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{addr}\t{hostname}\n"));
    Some(out)
}

/// Writes the files into the rootfs where needed; problems are warnings.
pub fn write(o: &BootOptions, address: Option<Ipv4Addr>) {
    if o.read_only || o.net == Net::None {
        return;
    }
    // As the container sees them: a rootfs's symlinks (`etc -> /etc`) are
    // followed inside it, never out to the host's files.
    // A loop of links there: nothing to write to.
    let Some(etc) = within(&o.rootfs, Path::new("/etc")) else {
        return;
    };
    let etc = under(&o.rootfs, &etc);
    let resolv = etc.join("resolv.conf");
    // A symlink there, even dangling (to a resolver's runtime file), is the
    // rootfs's own: only a missing file is written.
    if std::fs::symlink_metadata(&resolv).is_err() {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if let Some(text) = resolv_conf(&host, &o.net) {
            save(&resolv, &text);
        }
    }
    // Only a machine with an address of its own gets a line for it
    // (slirp4netns's is always the same, inside).
    let slirp = (o.net == Net::Slirp4netns).then_some(super::slirp::ADDRESS);
    let Some(addr) = address.or(slirp) else { return };
    let Some(path) = within(&o.rootfs, Path::new("/etc/hosts")) else {
        return;
    };
    let path = under(&o.rootfs, &path);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some(text) = hosts(&text, &o.hostname, addr) {
        save(&path, &text);
    }
}

fn save(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!("cannot write {}: {}", path.display(), crate::sys::describe(&e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example\n";

    #[test]
    fn loopback_servers_stay_on_the_host() {
        let r = resolv_conf(HOST, &Net::Veth).unwrap();
        assert!(!r.contains("127.0.0.53") && r.contains("nameserver 192.0.2.53") && r.contains("search example"));
        assert!(resolv_conf(HOST, &Net::Host).unwrap().contains("127.0.0.53"));
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\n", &Net::Bridge("tend0".into())),
            None
        );
        assert_eq!(resolv_conf(HOST, &Net::None), None);
        let s = resolv_conf("nameserver 127.0.0.53\nsearch example\n", &Net::Slirp4netns).unwrap();
        assert!(
            s.contains("\nnameserver 10.0.2.3\nsearch example\n") && !s.contains("127.0.0.53"),
            "{s}"
        );
    }

    #[test]
    fn the_own_name_is_added_once() {
        let addr = Ipv4Addr::new(10, 231, 0, 6);
        let h = hosts("127.0.0.1 localhost\n", "web", addr).unwrap();
        assert_eq!(h, "127.0.0.1 localhost\n10.231.0.6\tweb\n");
        assert_eq!(hosts(&h, "web", addr), None);
        assert_eq!(hosts("127.0.1.1 demo # me\n", "demo", addr), None);
        assert!(hosts("", "web", addr).unwrap().starts_with("127.0.0.1\tlocalhost\n"));
    }
}
