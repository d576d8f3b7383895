//! Who services and `tend ctl exec` run as: a unit's `user` and `ctl exec
//! --user` resolve alike, with the user's supplementary groups from
//! `/etc/group` and its `USER`, `LOGNAME`, `HOME` and `SHELL`, as systemd's
//! `User=` gives them. Needs root: the test adds a user and a group to this
//! machine and removes them after.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// What the service and the exec'd command print about themselves.
const SCRIPT: &str = "echo $(id -u) $(id -g) $(id -G) HOME=$HOME USER=$USER LOGNAME=$LOGNAME SHELL=$SHELL";

/// A user with its own primary group and one more group it is a member
/// of, removed when dropped.
struct TempUser {
    name: String,
    extra: String,
}

impl TempUser {
    fn create() -> TempUser {
        let id = std::process::id();
        let user = TempUser {
            name: format!("tendcred{id}"),
            extra: format!("tendcredx{id}"),
        };
        // Other tests may be editing /etc/passwd at the same time: the
        // tools then fail on its lock, and are tried again.
        run_until_ok(&["groupadd", &user.extra]);
        let home = format!("/nonexistent/{}", user.name);
        run_until_ok(&[
            "useradd",
            "-M",
            "-U",
            "-G",
            &user.extra,
            "-d",
            &home,
            "-s",
            "/bin/sh",
            &user.name,
        ]);
        user
    }

    fn gid(&self, group: &str) -> u32 {
        let out = output(Command::new("getent").args(["group", group]));
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        line.split(':').nth(2).and_then(|g| g.parse().ok()).unwrap()
    }

    fn uid(&self) -> u32 {
        let out = output(Command::new("id").args(["-u", &self.name]));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        // userdel also removes the user's own group.
        run_until_ok(&["userdel", &self.name]);
        run_until_ok(&["groupdel", &self.extra]);
    }
}

/// A child killed when dropped, so a failing test leaves no tend behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_until_ok(argv: &[&str]) {
    await_true(&format!("{argv:?} to succeed"), LIMIT, || {
        output(Command::new(argv[0]).args(&argv[1..])).status.success()
    });
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn services_and_exec_get_the_users_groups_and_login_root() {
    let user = TempUser::create();
    let dir = TempDir::new("creds");
    std::fs::create_dir(dir.path("units")).unwrap();
    let unit = |name: &str, who: &str| {
        let out = dir.path(&format!("{name}.out"));
        let toml = format!(
            "command = \"{SCRIPT}\"\nuser = {who}\nrestart = \"no\"\nstdout = {{ file = \"{}\" }}\n",
            out.display()
        );
        std::fs::write(dir.path("units").join(format!("{name}.toml")), toml).unwrap();
    };
    unit("named", &format!("\"{}\"", user.name));
    // A number with no passwd entry: no login variables change.
    unit("numeric", "4242");
    let socket = dir.path("ctl.sock");
    let units = dir.path("units");
    let mut cmd = tend_as_pid1(&[
        "init",
        "--units",
        units.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
    ]);
    cmd.env("HOME", "/tend-home")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("SHELL");
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    let mut init = Killed(cmd.spawn().unwrap());
    let line = |name: &str| {
        let path = dir.path(&format!("{name}.out"));
        await_some(&format!("the output of {name}"), LIMIT, || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            text.lines().next().map(str::to_string)
        })
    };
    let (named, numeric) = (line("named"), line("numeric"));
    let exec = output(
        Command::new(tend())
            .args([
                "ctl",
                "--socket",
                socket.to_str().unwrap(),
                "exec",
                "--user",
                &user.name,
            ])
            .args(["--", "sh", "-c", SCRIPT]),
    );
    send(await_child(init.0.id()), libc::SIGTERM);
    let code = exit_code_within(&mut init.0, LIMIT);
    let log = std::fs::read_to_string(dir.path("tend.log")).unwrap_or_default();
    assert_eq!(code, 0, "{log}");

    let (uid, gid, extra) = (user.uid(), user.gid(&user.name), user.gid(&user.extra));
    let name = &user.name;
    assert_eq!(
        named,
        format!("{uid} {gid} {gid} {extra} HOME=/nonexistent/{name} USER={name} LOGNAME={name} SHELL=/bin/sh"),
        "{log}"
    );
    assert_eq!(text(&exec.stdout).trim_end(), named, "{}", text(&exec.stderr));
    assert_eq!(numeric, "4242 0 0 HOME=/tend-home USER= LOGNAME= SHELL=", "{log}");
}
