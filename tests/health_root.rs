//! Liveness checks for real: `tend init` as PID 1 of a fresh PID namespace,
//! an HTTP server (busybox httpd) that stops answering but keeps running,
//! and an exec check that hangs. Needs root and `/bin/busybox`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

struct Tend {
    dir: TempDir,
    child: Option<Child>,
}

impl Tend {
    /// Writes the units (`@DIR` is the scratch directory, `@PORT` a free
    /// port), starts tend and waits until its socket answers.
    fn start(tag: &str, port: u16, units: &[(&str, &str)]) -> Tend {
        let dir = TempDir::new(tag);
        std::fs::create_dir(dir.path("units")).unwrap();
        std::fs::create_dir(dir.path("www")).unwrap();
        std::fs::write(dir.path("www/index.html"), "hello\n").unwrap();
        // A copy of sleep for exec checks, so their processes can be told apart.
        std::fs::copy("/bin/sleep", dir.path("probe-sleep")).unwrap();
        for (name, toml) in units {
            let toml = toml
                .replace("@DIR", &dir.0.display().to_string())
                .replace("@PORT", &port.to_string());
            std::fs::write(dir.path("units").join(format!("{name}.toml")), toml).unwrap();
        }
        let units = dir.path("units");
        let socket = dir.path("ctl.sock");
        let mut cmd = tend_as_pid1(&[
            "init",
            "--units",
            units.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ]);
        let log = std::fs::File::create(dir.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = cmd.spawn().unwrap();
        let tend = Tend {
            dir,
            child: Some(child),
        };
        await_true("the control socket", LIMIT, || tend.ctl(&["ping"]).status.success());
        tend
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(tend());
        cmd.arg("ctl").arg("--socket").arg(self.dir.path("ctl.sock")).args(args);
        output(&mut cmd)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("tend.log")).unwrap_or_default()
    }

    /// One service of `status --json`.
    fn status(&self, name: &str) -> serde_json::Value {
        let out = self.ctl(&["--json", "status", name]);
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        reply["services"][0].clone()
    }

    fn await_status(&self, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
        await_true(what, LIMIT, || check(&self.status("web")));
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

const HTTPD: &str = r#"
command = ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:@PORT", "-h", "@DIR/www"]
ready = { tcp = "127.0.0.1:@PORT" }
health = { http = "http://127.0.0.1:@PORT/index.html" }
health-interval = "200ms"
health-timeout = "300ms"
health-retries = 2
stop-timeout = "300ms"
restart-delay = "100ms"
"#;

#[test]
fn an_http_server_that_stops_answering_is_restarted_root() {
    let tend = Tend::start("health-http", free_port(), &[("web", HTTPD)]);
    tend.await_status("web healthy", |s| s["health"] == "healthy");
    let before = tend.status("web")["pid"].as_i64();
    // Still running, still accepting connections (the kernel completes
    // them), but no longer answering.
    assert!(tend.ctl(&["signal", "web", "STOP"]).status.success());
    tend.await_status("web restarted", |s| s["restarts"] == 1);
    tend.await_status("web healthy again", |s| s["health"] == "healthy");
    assert_ne!(tend.status("web")["pid"].as_i64(), before);
    let log = tend.log();
    assert!(log.contains("web: unhealthy"), "{log}");
    assert!(log.contains("unhealthy: no answer within 300ms"), "{log}");
}

#[test]
fn ctl_health_fails_while_a_service_is_unhealthy_root() {
    let unit = format!("{HTTPD}on-unhealthy = \"none\"\n");
    let tend = Tend::start("health-none", free_port(), &[("web", &unit)]);
    tend.await_status("web healthy", |s| s["health"] == "healthy");
    assert!(tend.ctl(&["health"]).status.success());
    assert!(tend.ctl(&["signal", "web", "STOP"]).status.success());
    await_true("ctl health to fail", LIMIT, || {
        tend.ctl(&["health"]).status.code() == Some(1)
    });
    let out = tend.ctl(&["health"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("web: ready (unhealthy)"));
    assert_eq!(tend.status("web")["restarts"], 0, "on-unhealthy = none only shows it");
    assert!(tend.ctl(&["signal", "web", "CONT"]).status.success());
    await_true("ctl health to pass again", LIMIT, || {
        tend.ctl(&["health"]).status.success()
    });
}

/// Host pids of processes running `exe`.
fn running(exe: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !zombie && std::fs::read_link(entry.path().join("exe")).is_ok_and(|e| e == exe) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn an_exec_check_that_hangs_is_killed_with_its_children_root() {
    // The first probe starts two sleeps (one in the background) and hangs;
    // later probes pass.
    let tend = Tend::start(
        "health-exec",
        0,
        &[(
            "web",
            r#"
command = "sleep 1000"
health = { exec = "if [ -e @DIR/once ]; then exit 0; fi; touch @DIR/once; @DIR/probe-sleep 1000 & exec @DIR/probe-sleep 1001" }
health-interval = "100ms"
health-timeout = "1s"
health-retries = 5
"#,
        )],
    );
    let sleep: PathBuf = tend.dir.path("probe-sleep");
    await_true("the hanging probe and its child", LIMIT, || running(&sleep).len() == 2);
    tend.await_status("web healthy", |s| s["health"] == "healthy");
    await_true("no probe process left", LIMIT, || running(&sleep).is_empty());
    assert_eq!(tend.status("web")["restarts"], 0);
}

#[test]
fn a_tcp_check_without_listener_fails_the_service_with_restart_no_root() {
    // Nothing listens on the port: every connect is refused.
    let unit = r#"
command = "sleep 1000"
restart = "no"
health = { tcp = "127.0.0.1:@PORT" }
health-interval = "100ms"
health-retries = 2
"#;
    let tend = Tend::start("health-tcp", free_port(), &[("web", unit)]);
    tend.await_status("web failed", |s| s["state"] == "failed");
    let detail = tend.status("web")["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.starts_with("unhealthy: cannot connect"),
        "{detail}\n{}",
        tend.log()
    );
    assert!(tend.log().contains("web: unhealthy"), "{}", tend.log());
}
