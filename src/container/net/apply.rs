//! Carries out a network plan step by step through a [`System`]: `ip`
//! lines of one place run as one `ip -batch` (a process start is the
//! dominant cost), sysctls are file writes, the table is one `nft -f`. On
//! a failure, what was done is undone in reverse before the error returns.
//!
//! Links, addresses and routes go through iproute2's `ip` and the table
//! through `nft`, not netlink from here: nftables' netlink protocol is not
//! one a small crate speaks, and one spawned `ip -batch` per side costs
//! about a millisecond.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::plan::{Action, Place, Step};
use super::Error;

/// The host operations a plan needs.
pub trait System {
    /// Runs `lines` as one `ip -batch` in `place`.
    fn ip(&mut self, place: Place, lines: &[String]) -> Result<(), Error>;
    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error>;
    fn read_sysctl(&mut self, key: &str) -> Result<String, Error>;
    /// Runs an nft script (atomic: all of it or nothing).
    fn nft(&mut self, script: &str) -> Result<(), Error>;

    /// `ip` lines in `place` (none: skipped) and an nft script, both run
    /// (at once where it can: the kernel's waits in each then overlap).
    fn ip_with_nft(&mut self, place: Place, lines: &[String], script: &str) -> (Result<(), Error>, Result<(), Error>) {
        let ip = if lines.is_empty() {
            Ok(())
        } else {
            self.ip(place, lines)
        };
        (ip, self.nft(script))
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
            Action::Ip(line) => sys.ip(*place, std::slice::from_ref(line)),
            Action::Sysctl { key, value } => sys.sysctl(key, value),
        };
        if let Err(e) = result {
            tracing::debug!("undo: {}", crate::sys::chain(&e));
        }
    }
}

/// How many steps from the first run together: `ip` lines of one place.
fn batch_len(steps: &[Step]) -> usize {
    let Some(first) = steps.first() else { return 0 };
    if !matches!(first.action, Action::Ip(_)) {
        return 1;
    }
    steps
        .iter()
        .take_while(|s| s.place == first.place && matches!(s.action, Action::Ip(_)))
        .count()
}

fn run(sys: &mut dyn System, steps: &[Step]) -> Result<(), Error> {
    let lines: Vec<String> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Ip(line) => Some(line.clone()),
            Action::Sysctl { .. } => None,
        })
        .collect();
    match steps.first().map(|s| (&s.action, s.place)) {
        Some((Action::Sysctl { key, value }, _)) => sys.sysctl(key, value),
        Some((Action::Ip(_), place)) => sys.ip(place, &lines),
        None => Ok(()),
    }
}

/// The real host: `ip` and `nft` from iproute2 and nftables, /proc/sys.
pub struct Real {
    /// The container's PID 1, for [`Place::Container`].
    pub child: Option<i32>,
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

fn batch(lines: &[String]) -> String {
    let mut input = lines.join("\n");
    input.push('\n');
    input
}

/// The input line a tool's error names (`ip`: "Command failed -:N", nft:
/// "/dev/stdin:N:..."), else the first.
fn failed_line<'a>(input: &'a str, stderr: &str) -> &'a str {
    let number = stderr.lines().find_map(|l| {
        let rest = l
            .strip_prefix("Command failed -:")
            .or_else(|| l.strip_prefix("/dev/stdin:"))?;
        rest.split(':').next()?.trim().parse::<usize>().ok()
    });
    let index = number.and_then(|n| n.checked_sub(1)).unwrap_or(0);
    input.lines().nth(index).unwrap_or_default()
}

impl Real {
    fn ip_command(&self, place: Place) -> Result<Command, Error> {
        let path = find_tool("ip").ok_or(Error::Missing("ip (iproute2)"))?;
        let mut cmd = Command::new(path);
        cmd.args(["-batch", "-"]);
        if place == Place::Container {
            let pid = self.child.ok_or(Error::Missing("the container"))?;
            let ns = crate::sys::ns::open_netns(pid).map_err(|source| Error::Tool { tool: "ip", source })?;
            crate::sys::ns::enter_netns_on_exec(&mut cmd, ns);
        }
        Ok(cmd)
    }

    fn nft_command() -> Result<Command, Error> {
        let path = find_tool("nft").ok_or(Error::Missing("nft (nftables)"))?;
        let mut cmd = Command::new(path);
        cmd.args(["-f", "-"]);
        Ok(cmd)
    }
}

impl System for Real {
    fn ip(&mut self, place: Place, lines: &[String]) -> Result<(), Error> {
        let input = batch(lines);
        start("ip", self.ip_command(place)?, &input)?.finish()
    }

    fn ip_with_nft(&mut self, place: Place, lines: &[String], script: &str) -> (Result<(), Error>, Result<(), Error>) {
        if lines.is_empty() {
            return (Ok(()), self.nft(script));
        }
        let input = batch(lines);
        let ip = self.ip_command(place).and_then(|cmd| start("ip", cmd, &input));
        let nft = Real::nft_command().and_then(|cmd| start("nft", cmd, script));
        (ip.and_then(Running::finish), nft.and_then(Running::finish))
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
    fn ip(&mut self, place: Place, lines: &[String]) -> Result<(), Error> {
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
    fn ip_lines_of_one_place_run_as_one_batch() {
        let mut sys = Recording::default();
        apply(&mut sys, &plan::machine(&web(), 42)).unwrap();
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
        let input = "link add a\naddr add b\n";
        assert_eq!(failed_line(input, "Error: bad\nCommand failed -:2\n"), "addr add b");
        assert_eq!(failed_line(input, "/dev/stdin:1:5-9: Error: x\n"), "link add a");
        assert_eq!(failed_line(input, "weird\n"), "link add a");
    }

    #[test]
    fn a_failed_step_undoes_what_was_done() {
        let mut sys = Recording {
            fail_on: Some("Container".into()),
            ..Recording::default()
        };
        assert!(apply(&mut sys, &plan::machine(&web(), 42)).is_err());
        assert_eq!(sys.log.last().map(String::as_str), Some("ip Host: link del ve-web"));
        let mut sys = Recording {
            fail_on: Some("link add".into()),
            ..Recording::default()
        };
        assert!(apply(&mut sys, &plan::machine(&web(), 42)).is_err());
        // The failed batch held the link: its undo is tried too.
        assert_eq!(sys.log.len(), 2);
    }
}
