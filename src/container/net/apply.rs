//! Carries out a network plan step by step through a [`System`]: link
//! operations of one place run together over one rtnetlink socket
//! ([`crate::sys::netlink`]), sysctls are file writes, the table is one
//! `nft -f`. On a failure, what was done is undone in reverse before the
//! error returns.
//!
//! The table goes through `nft`, not netlink from here: nftables' netlink
//! protocol (an expression per match, registers, batches) is not one a
//! small module speaks, and the table changes only with the set of
//! machines (see [`super::plan::ruleset`]).

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::plan::{Action, Link, Place, Step};
use super::Error;
use crate::sys::netlink::{self as nl, Socket};

/// The host operations a plan needs.
pub trait System {
    /// Carries out `links` in `place`, in order, up to the first failure.
    fn links(&mut self, place: Place, links: &[Link]) -> Result<(), Error>;
    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error>;
    fn read_sysctl(&mut self, key: &str) -> Result<String, Error>;
    /// Runs an nft script (atomic: all of it or nothing).
    fn nft(&mut self, script: &str) -> Result<(), Error>;

    /// `links` in `place` (none: skipped) and an nft script, both run (at
    /// once where it can: the kernel's waits in each then overlap).
    fn links_with_nft(&mut self, place: Place, links: &[Link], script: &str) -> (Result<(), Error>, Result<(), Error>) {
        let done = if links.is_empty() {
            Ok(())
        } else {
            self.links(place, links)
        };
        (done, self.nft(script))
    }
}

/// Applies `steps`; on failure, undoes the ones applied (and the failed
/// batch's) in reverse, then returns the error.
pub fn apply(sys: &mut dyn System, steps: &[Step]) -> Result<(), Error> {
    let mut done = 0;
    while done < steps.len() {
        let batch = batch_len(&steps[done..]);
        let result = run(sys, &steps[done..done + batch]);
        done += batch;
        if let Err(e) = result {
            undo(sys, &super::plan::undo(&steps[..done]));
            return Err(e);
        }
    }
    Ok(())
}

/// Runs undos, ignoring failures: each is tried (the thing may be gone).
pub fn undo(sys: &mut dyn System, undos: &[(Place, Action)]) {
    for (place, action) in undos {
        let result = match action {
            Action::Link(link) => sys.links(*place, std::slice::from_ref(link)),
            Action::Sysctl { key, value } => sys.sysctl(key, value),
        };
        if let Err(e) = result {
            tracing::debug!("undo: {}", crate::sys::chain(&e));
        }
    }
}

/// How many steps from the first run together: links of one place.
fn batch_len(steps: &[Step]) -> usize {
    let Some(first) = steps.first() else { return 0 };
    if !matches!(first.action, Action::Link(_)) {
        return 1;
    }
    steps
        .iter()
        .take_while(|s| s.place == first.place && matches!(s.action, Action::Link(_)))
        .count()
}

fn run(sys: &mut dyn System, steps: &[Step]) -> Result<(), Error> {
    match steps.first().map(|s| (&s.action, s.place)) {
        Some((Action::Sysctl { key, value }, _)) => sys.sysctl(key, value),
        Some((Action::Link(_), place)) => sys.links(place, &super::plan::links(steps)),
        None => Ok(()),
    }
}

/// The real host: rtnetlink, /proc/sys, and `nft` from nftables.
pub struct Real {
    /// The container's network namespace, for [`Place::Container`].
    netns: Option<PathBuf>,
    /// The sockets of each place, opened when first needed.
    host: Option<Socket>,
    inside: Option<Socket>,
}

pub fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A tool started with its input written, not yet waited for.
struct Running<'a> {
    tool: &'static str,
    child: std::process::Child,
    input: &'a str,
}

fn start<'a>(tool: &'static str, mut cmd: Command, input: &'a str) -> Result<Running<'a>, Error> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| Error::Tool { tool, source })?;
    // Small inputs fit the pipe: this does not wait for the tool.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    Ok(Running { tool, child, input })
}

impl Running<'_> {
    fn finish(self) -> Result<(), Error> {
        let tool = self.tool;
        let out = self
            .child
            .wait_with_output()
            .map_err(|source| Error::Tool { tool, source })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(Error::ToolFailed {
            tool,
            input: failed_line(self.input, &stderr).to_string(),
            stderr: stderr.lines().next().unwrap_or_default().trim().to_string(),
        })
    }
}

/// The input line nft's error names ("/dev/stdin:N:..."), else the first.
fn failed_line<'a>(input: &'a str, stderr: &str) -> &'a str {
    let number = stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("/dev/stdin:")?;
        rest.split(':').next()?.trim().parse::<usize>().ok()
    });
    let index = number.and_then(|n| n.checked_sub(1)).unwrap_or(0);
    input.lines().nth(index).unwrap_or_default()
}

/// One link operation as rtnetlink requests on `socket` (a name becomes an
/// index by a request of its own where the kernel wants an index).
fn carry_out(socket: &mut Socket, link: &Link) -> io::Result<()> {
    let request = match link {
        Link::Veth { name, peer, netns } => {
            // Open until the kernel has answered: it reads the descriptor.
            let ns = crate::sys::ns::open_ns_file(Path::new(netns))?;
            return socket.call(nl::add_veth(name, peer, ns.as_raw_fd())).map(drop);
        }
        Link::Bridge(name) => nl::add_bridge(name),
        Link::Delete(name) => nl::delete_link(name),
        Link::Up(name) => nl::set_up(name),
        Link::Master { name, bridge } => nl::set_master(name, socket.index(bridge)?),
        Link::Address { dev, addr, prefix } => nl::add_address(socket.index(dev)?, *addr, *prefix),
        Link::DefaultRoute(via) => nl::add_default_route(*via),
    };
    socket.call(request).map(drop)
}

impl Real {
    /// For steps on the host only.
    pub fn host() -> Real {
        Real {
            netns: None,
            host: None,
            inside: None,
        }
    }

    /// For steps on the host and in the container whose network namespace
    /// is at `netns`.
    pub fn container(netns: PathBuf) -> Real {
        Real {
            netns: Some(netns),
            ..Real::host()
        }
    }

    fn socket(&mut self, place: Place) -> Result<&mut Socket, Error> {
        let failed = |source| Error::Link {
            place,
            step: "open a netlink socket".into(),
            source,
        };
        let slot = match place {
            Place::Host => &mut self.host,
            Place::Container => &mut self.inside,
        };
        if let Some(socket) = slot {
            return Ok(socket);
        }
        let socket = match place {
            Place::Host => Socket::open(),
            Place::Container => {
                let path = self.netns.as_deref().ok_or(Error::Missing("the container"))?;
                crate::sys::ns::open_ns_file(path).and_then(Socket::open_in)
            }
        }
        .map_err(failed)?;
        Ok(slot.insert(socket))
    }

    fn nft_command() -> Result<Command, Error> {
        let path = find_tool("nft").ok_or(Error::Missing("nft (nftables)"))?;
        let mut cmd = Command::new(path);
        cmd.args(["-f", "-"]);
        Ok(cmd)
    }

    /// The kind of link `name` on the host (`None`: there is none).
    pub fn link_kind(&mut self, name: &str) -> Result<Option<Option<String>>, Error> {
        let link = self.socket(Place::Host)?.link(name).map_err(|source| Error::Link {
            place: Place::Host,
            step: format!("link show {name}"),
            source,
        })?;
        Ok(link.map(|l| l.kind))
    }
}

impl System for Real {
    fn links(&mut self, place: Place, links: &[Link]) -> Result<(), Error> {
        let socket = self.socket(place)?;
        for link in links {
            carry_out(socket, link).map_err(|source| Error::Link {
                place,
                step: link.to_string(),
                source,
            })?;
        }
        Ok(())
    }

    fn links_with_nft(&mut self, place: Place, links: &[Link], script: &str) -> (Result<(), Error>, Result<(), Error>) {
        // nft first: its start and the kernel's work overlap the links'.
        let nft = Real::nft_command().and_then(|cmd| start("nft", cmd, script));
        let done = if links.is_empty() {
            Ok(())
        } else {
            self.links(place, links)
        };
        (done, nft.and_then(Running::finish))
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let path = Path::new("/proc/sys").join(key);
        std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
    }

    fn read_sysctl(&mut self, key: &str) -> Result<String, Error> {
        let path = Path::new("/proc/sys").join(key);
        std::fs::read_to_string(&path)
            .map(|v| v.trim().to_string())
            .map_err(|source| Error::Sysctl { path, source })
    }

    fn nft(&mut self, script: &str) -> Result<(), Error> {
        start("nft", Real::nft_command()?, script)?.finish()
    }
}

/// Records what it is asked and fails where told: applying tested
/// without root.
#[derive(Debug, Default)]
pub struct Recording {
    pub log: Vec<String>,
    /// Fail the call whose log entry contains this.
    pub fail_on: Option<String>,
}

impl Recording {
    fn record(&mut self, entry: String) -> Result<(), Error> {
        let fail = self.fail_on.as_ref().is_some_and(|f| entry.contains(f.as_str()));
        self.log.push(entry);
        if fail {
            return Err(Error::Missing("(told to fail)"));
        }
        Ok(())
    }
}

impl System for Recording {
    fn links(&mut self, place: Place, links: &[Link]) -> Result<(), Error> {
        let lines: Vec<String> = links.iter().map(Link::to_string).collect();
        self.record(format!("ip {place:?}: {}", lines.join("; ")))
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.record(format!("sysctl {key}={value}"))
    }

    fn read_sysctl(&mut self, _key: &str) -> Result<String, Error> {
        Ok("0".into())
    }

    fn nft(&mut self, script: &str) -> Result<(), Error> {
        self.record(format!("nft {}", script.lines().count()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::net::lease::Lease;
    use crate::container::net::plan;
    use crate::container::net::types::{parse_publish, DEFAULT_POOL};

    fn web() -> Lease {
        Lease {
            name: "web".into(),
            launcher: 1,
            netns: 1,
            pool: DEFAULT_POOL,
            slot: 1,
            bridge: None,
            host_if: "ve-web".into(),
            publish: vec![parse_publish("8080:80").unwrap()],
        }
    }

    #[test]
    fn links_of_one_place_run_as_one_batch() {
        let mut sys = Recording::default();
        apply(&mut sys, &plan::machine(&web(), "42")).unwrap();
        assert_eq!(
            sys.log,
            [
                "ip Host: link add ve-web type veth peer name host0 netns 42; addr add 10.231.0.5/30 dev ve-web",
                "sysctl net/ipv4/conf/ve-web/route_localnet=1",
                "ip Host: link set ve-web up",
                "ip Container: link set lo up; addr add 10.231.0.6/30 dev host0; link set host0 up; route add default via 10.231.0.5",
            ]
        );
    }

    #[test]
    fn errors_name_the_failed_line() {
        let input = "table inet tend\ndelete table inet tend\n";
        assert_eq!(
            failed_line(input, "/dev/stdin:2:1-6: Error: x\n"),
            "delete table inet tend"
        );
        assert_eq!(failed_line(input, "weird\n"), "table inet tend");
    }

    #[test]
    fn a_failed_step_undoes_what_was_done() {
        let mut sys = Recording {
            fail_on: Some("Container".into()),
            ..Recording::default()
        };
        assert!(apply(&mut sys, &plan::machine(&web(), "42")).is_err());
        assert_eq!(sys.log.last().map(String::as_str), Some("ip Host: link del ve-web"));
        let mut sys = Recording {
            fail_on: Some("link add".into()),
            ..Recording::default()
        };
        assert!(apply(&mut sys, &plan::machine(&web(), "42")).is_err());
        // The failed batch held the link: its undo is tried too.
        assert_eq!(sys.log.len(), 2);
    }
}
