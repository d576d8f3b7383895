//! What `tend init` leaves in the host's cgroup2 hierarchy: nothing once
//! it exits, and at start it removes what an earlier tend that was killed
//! left, never the cgroups of a tend still running. Needs root and a
//! writable cgroup2 hierarchy.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// `tend init` as PID 1 with these units; its log in the dir. Stopped
/// however the test ends: a failed assertion leaves no tend running.
fn start(dir: &TempDir, tag: &str, units: &[(&str, &str)]) -> StopOnDrop {
    start_with(dir, tag, units, &[])
}

fn start_with(dir: &TempDir, tag: &str, units: &[(&str, &str)], extra: &[&str]) -> StopOnDrop {
    let units_dir = dir.path(tag);
    std::fs::create_dir(&units_dir).unwrap();
    for (name, toml) in units {
        std::fs::write(units_dir.join(format!("{name}.toml")), toml).unwrap();
    }
    let log = std::fs::File::create(dir.path(&format!("{tag}.log"))).unwrap();
    let mut args = vec!["init", "--units", units_dir.to_str().unwrap(), "--no-socket"];
    args.extend(extra);
    StopOnDrop(
        tend_as_pid1(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// tend's host pid and the host path of its own cgroup directory, found
/// from the service `name` once it runs; a failure shows what tend's
/// children are in and tend's log (`tag`'s, in `dir`).
fn tend_cgroup(launcher: &Child, name: &str, dir: &TempDir, tag: &str) -> (u32, PathBuf) {
    let tend = await_child(launcher.id());
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let cgroups: Vec<PathBuf> = children(tend).into_iter().filter_map(cgroup_of).collect();
        if let Some(service) = cgroups.iter().find(|c| c.file_name().is_some_and(|n| n == name)) {
            return (tend, service.parent().unwrap().to_path_buf());
        }
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.path(&format!("{tag}.log"))).unwrap_or_default();
            panic!("no child of tend in a cgroup named {name} within {LIMIT:?}; its children are in {cgroups:?}; tend's log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn exists(path: &Path) -> bool {
    path.exists()
}

const SLEEPER: &str = "command = \"sleep 1000\"\n";

/// Whether this host has no cgroup2 hierarchy (said once: these tests then
/// have nothing to look at; every machine tend's CI runs on has one).
fn no_cgroup2() -> bool {
    let none = cgroup2_mount().is_none();
    if none {
        eprintln!("no cgroup2 hierarchy here: nothing to test");
    }
    none
}

#[test]
fn exit_removes_every_cgroup_it_made_root() {
    if no_cgroup2() {
        return;
    }
    let dir = TempDir::new("cg-exit");
    // A service that ignores SIGTERM, still running when the shutdown
    // times out: tend kills it and exits at once.
    let stubborn = "command = \"trap '' TERM; sleep 1000 & exec sleep 1000\"\nstop-timeout = \"60s\"\n";
    let units = [("a", SLEEPER), ("b", stubborn)];
    let mut launcher = start_with(&dir, "units", &units, &["--shutdown-timeout", "300ms"]);
    let (tend, cgroups) = tend_cgroup(&launcher.0, "a", &dir, "units");
    await_true("b's two processes", LIMIT, || {
        std::fs::read_to_string(cgroups.join("b/cgroup.procs")).is_ok_and(|t| t.lines().count() == 2)
    });
    send(tend, libc::SIGTERM);
    exit_code_within(&mut launcher.0, LIMIT);
    let log = std::fs::read_to_string(dir.path("units.log")).unwrap_or_default();
    assert!(
        !exists(&cgroups),
        "{} is left on the host; {}",
        cgroups.display(),
        leftover(&cgroups, &log)
    );
}

/// What a test failure shows: the cgroups left and tend's log.
fn leftover(cgroups: &Path, log: &str) -> String {
    let dirs: Vec<String> = std::fs::read_dir(cgroups)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    format!("cgroups inside: {dirs:?}; tend's log:\n{log}")
}

#[test]
fn start_removes_what_a_killed_tend_left_but_not_a_live_ones_root() {
    if no_cgroup2() {
        return;
    }
    let dir = TempDir::new("cg-sweep");
    // A live tend whose oneshot has finished: its cgroup is empty.
    let oneshot = "command = \"true\"\ntype = \"oneshot\"\n";
    let mut live = start(&dir, "live", &[("a", SLEEPER), ("once", oneshot)]);
    let (live_pid, live_cgroups) = tend_cgroup(&live.0, "a", &dir, "live");
    await_true("once's cgroup, empty", LIMIT, || {
        std::fs::read_to_string(live_cgroups.join("once/cgroup.procs")).is_ok_and(|t| t.is_empty())
    });
    // A tend killed: it could remove nothing.
    let mut killed = start(&dir, "killed", &[("a", SLEEPER)]);
    let (killed_pid, killed_cgroups) = tend_cgroup(&killed.0, "a", &dir, "killed");
    send(killed_pid, libc::SIGKILL);
    exit_code_within(&mut killed.0, LIMIT);
    // Its cgroups stay until a tend starts (the other test's may be first).

    let mut next = start(&dir, "next", &[("a", SLEEPER)]);
    let (next_pid, next_cgroups) = tend_cgroup(&next.0, "a", &dir, "next");
    assert!(
        !exists(&killed_cgroups),
        "a killed tend's empty cgroups are removed at the next start"
    );
    assert!(
        exists(&live_cgroups.join("once")),
        "a live tend's cgroups are kept, even empty ones"
    );

    for (pid, launcher, cgroups) in [
        (live_pid, &mut live.0, live_cgroups),
        (next_pid, &mut next.0, next_cgroups),
    ] {
        send(pid, libc::SIGTERM);
        exit_code_within(launcher, LIMIT);
        assert!(!exists(&cgroups), "{} is left on the host", cgroups.display());
    }
}

/// A service is down when its main process is: what it left running in
/// its cgroup is killed at that exit (as systemd's `KillMode=control-group`),
/// and a service that left nothing is not signalled.
#[test]
fn leftovers_are_killed_when_the_main_process_exits_root() {
    if no_cgroup2() {
        return;
    }
    let dir = TempDir::new("cg-leftover");
    let pidfile = dir.path("left.pid");
    let leaves = format!(
        "command = \"sleep 1000 & echo $! > {}; sleep 0.2\"\nrestart = \"no\"\n",
        pidfile.display()
    );
    let mut launcher = start(&dir, "units", &[("a", SLEEPER), ("leaves", &leaves)]);
    let (tend, cgroups) = tend_cgroup(&launcher.0, "a", &dir, "units");
    await_true("the leftover started", LIMIT, || pidfile.exists());
    let log = || std::fs::read_to_string(dir.path("units.log")).unwrap_or_default();
    await_true("the main process's exit", LIMIT, || log().contains("leaves (pid"));
    let procs = cgroups.join("leaves/cgroup.procs");
    await_true("the leftover killed", LIMIT, || {
        std::fs::read_to_string(&procs).map_or(true, |t| t.trim().is_empty())
    });
    send(tend, libc::SIGTERM);
    exit_code_within(&mut launcher.0, LIMIT);
}

/// The same at each run of a restarted service, whose cgroup (kept open
/// across its runs) is read again at each exit.
#[test]
fn leftovers_are_killed_at_each_exit_of_a_restarted_service_root() {
    if no_cgroup2() {
        return;
    }
    let dir = TempDir::new("cg-leftover-runs");
    let runs = dir.path("runs");
    // Runs 1 and 2 each leave a sleep behind and fail; run 3 stays.
    let leaves = format!(
        "command = \"n=$(($(cat {runs} 2>/dev/null || echo 0)+1)); sleep 1000 & echo $! > {runs}.$n; \
         echo $n > {runs}; [ $n -ge 3 ] && exec sleep 1000; sleep 0.1; exit 1\"\nrestart-delay = \"0s\"\n",
        runs = runs.display()
    );
    let mut launcher = start(&dir, "units", &[("leaves", &leaves)]);
    let (tend, cgroups) = tend_cgroup(&launcher.0, "leaves", &dir, "units");
    await_true("the third run", LIMIT, || {
        std::fs::read_to_string(&runs).is_ok_and(|t| t.trim() == "3")
    });
    // The third run and the sleep it left; the first two's are gone.
    let procs = cgroups.join("leaves/cgroup.procs");
    await_true("runs 1 and 2's leftovers killed", LIMIT, || {
        std::fs::read_to_string(&procs).is_ok_and(|t| t.lines().count() == 2)
    });
    send(tend, libc::SIGTERM);
    exit_code_within(&mut launcher.0, LIMIT);
}
