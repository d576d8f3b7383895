//! Cgroup limits for real on this host's layout (v1 controllers, hybrid
//! here): memory-max ends in an OOM kill named as such and restarted,
//! pids-max holds a fork bomb, cpus bounds a busy loop, a reload changes a
//! limit in place, and nothing tend made is left after it exits. Needs root
//! and writable memory, cpu, cpuacct and pids hierarchies (v1 or v2).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

/// tend, stopped (so that it removes its cgroups) however the test ends.
struct Pid1(Child);

impl Drop for Pid1 {
    fn drop(&mut self) {
        stop_pid1(&mut self.0, LIMIT);
    }
}

impl Pid1 {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

/// `tend init` as PID 1 with these units; its log in the dir.
fn start(dir: &TempDir, units: &[(&str, &str)]) -> Pid1 {
    let units_dir = dir.path("units");
    std::fs::create_dir(&units_dir).unwrap();
    for (name, toml) in units {
        std::fs::write(units_dir.join(format!("{name}.toml")), toml).unwrap();
    }
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    let socket = dir.path("ctl.sock");
    let args = [
        "init",
        "--units",
        units_dir.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
    ];
    let child = tend_as_pid1(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Pid1(child)
}

fn log(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path("tend.log")).unwrap_or_default()
}

/// The cgroup of `pid` in the hierarchy that carries `controller`: v2's
/// when the v2 hierarchy offers it, else the v1 one.
fn cgroup_dir(pid: u32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let v1 = text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        names.split(',').any(|n| n == controller).then(|| path.to_string())
    });
    match v1 {
        Some(path) => Some(
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/')),
        ),
        None => cgroup_of(pid),
    }
}

/// The host pid of the service `name` (a child of tend whose cgroup, v2's
/// or v1 memory's, is named after it), once it runs its command: it starts
/// in its v2 cgroup and joins the v1 ones before exec.
fn service_pid(tend: u32, name: &str) -> u32 {
    await_some(&format!("{name} running"), LIMIT, || {
        children(tend).into_iter().find(|&p| {
            exec_done(p)
                && [cgroup_of(p), cgroup_dir(p, "memory")]
                    .into_iter()
                    .flatten()
                    .any(|c| c.ends_with(name))
        })
    })
}

/// Whether `pid` is no longer the tend it was cloned from.
fn exec_done(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() != "tend")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Every `tend-*` directory in the hierarchies tend uses, beside tend's own
/// cgroup there.
fn tend_dirs(parents: &[PathBuf]) -> Vec<PathBuf> {
    parents
        .iter()
        .flat_map(|p| std::fs::read_dir(p).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("tend-")))
        .collect()
}

/// The directories tend made for its services (`tend-TOKEN`), by
/// controller, found from the service `pid`.
fn made_by_tend(pid: u32) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["memory", "cpu", "cpuacct", "pids", "blkio"]
        .iter()
        .filter_map(|c| cgroup_dir(pid, c)?.parent().map(Path::to_path_buf))
        .collect();
    dirs.extend(cgroup_of(pid).and_then(|c| c.parent().map(Path::to_path_buf)));
    // Hierarchies tend leaves the service out of (v1 cpuacct where v2
    // counts CPU time) hold it in the host's cgroup, not tend's.
    dirs.retain(|d| d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("tend-")));
    dirs.sort();
    dirs.dedup();
    dirs
}

fn stop(launcher: &mut Pid1, tend: u32) {
    send(tend, libc::SIGTERM);
    exit_code_within(&mut launcher.0, LIMIT);
}

#[test]
fn oom_kill_is_named_and_restarted_while_a_neighbour_runs_root() {
    let dir = TempDir::new("limits-oom");
    let hog = "command = \"head -c 64M /dev/zero | tail\"\nmemory-max = \"32M\"\nrestart = \"always\"\nrestart-delay = \"100ms\"\nstart-limit-burst = 1000\n";
    let neighbour = "command = \"sleep 1000\"\n";
    let mut launcher = start(&dir, &[("hog", hog), ("neighbour", neighbour)]);
    let tend = await_child(launcher.id());
    let before = service_pid(tend, "neighbour");
    let hog_pid = service_pid(tend, "hog");
    let memory = cgroup_dir(hog_pid, "memory").unwrap();
    let max = if memory.join("memory.max").exists() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(&memory, max), (32u64 << 20).to_string());
    let named = "killed by the OOM killer (memory-max 32M)";
    await_true("two OOM kills, named", LIMIT, || log(&dir).matches(named).count() >= 2);
    await_true("hog started again", LIMIT, || {
        log(&dir).matches("started hog").count() >= 3
    });
    assert_eq!(service_pid(tend, "neighbour"), before, "the neighbour kept running");
    // The status says so too, with the count, in text and JSON.
    let socket = dir.path("ctl.sock");
    let status = output(
        std::process::Command::new(common::tend())
            .args(["ctl", "--socket"])
            .arg(&socket)
            .args(["status", "--json", "hog"]),
    );
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("killed by the OOM killer (memory-max 32M)"), "{text}");
    assert!(text.contains("\"oom_kills\":"), "{text}");
    stop(&mut launcher, tend);
}

#[test]
fn pids_max_holds_a_fork_bomb_while_another_keeps_its_schedule_root() {
    let dir = TempDir::new("limits-pids");
    // It keeps forking when a fork fails (a shell's bomb would exit at the
    // first "Cannot fork", leaving 49 tasks: the test then raced its exit).
    let bomb = concat!(
        "command = [\"python3\", \"-c\", \"import os, time\\nwhile True:\\n",
        "    try:\\n        if os.fork() == 0:\\n            time.sleep(1000); os._exit(0)\\n",
        "    except OSError:\\n        time.sleep(0.01)\\n\"]\npids-max = 50\n"
    );
    let ticker = "command = \"sleep 0.1\"\nrestart = \"always\"\nrestart-delay = \"100ms\"\nstart-limit-burst = 1000\n";
    let mut launcher = start(&dir, &[("bomb", bomb), ("ticker", ticker)]);
    let tend = await_child(launcher.id());
    let pids = cgroup_dir(service_pid(tend, "bomb"), "pids").unwrap();
    assert_eq!(read(&pids, "pids.max"), "50");
    await_true("the bomb at 50 tasks", LIMIT, || read(&pids, "pids.current") == "50");
    let starts = log(&dir).matches("started ticker").count();
    await_true("ticker restarted meanwhile", LIMIT, || {
        log(&dir).matches("started ticker").count() >= starts + 3
    });
    let tasks: u32 = read(&pids, "pids.current").parse().unwrap();
    assert!(tasks <= 50, "{tasks} tasks under pids-max 50");
    stop(&mut launcher, tend);
}

#[test]
fn cpus_bounds_a_busy_loop_root() {
    let dir = TempDir::new("limits-cpu");
    let busy = "command = \"while :; do :; done\"\ncpus = 0.25\n";
    let mut launcher = start(&dir, &[("busy", busy)]);
    let tend = await_child(launcher.id());
    let pid = service_pid(tend, "busy");
    // The cgroup's own CPU time counter, in µs: v2's `cpu.stat` (in every
    // v2 cgroup, with or without the cpu controller).
    let stat = cgroup_of(pid).unwrap().join("cpu.stat");
    let usage = || {
        let text = std::fs::read_to_string(&stat).unwrap();
        let line = text.lines().find(|l| l.starts_with("usage_usec")).unwrap().to_string();
        line.split(' ').nth(1).unwrap().parse::<u64>().unwrap()
    };
    let (cpu0, t0) = (usage(), Instant::now());
    // A rate, so it is measured over a span of time.
    std::thread::sleep(Duration::from_secs(3));
    let (cpu1, t1) = (usage(), Instant::now());
    let share = (cpu1 - cpu0) as f64 / (t1 - t0).as_micros() as f64;
    assert!(
        (0.1..=0.45).contains(&share),
        "the busy loop used {share:.2} of a CPU under cpus = 0.25"
    );
    stop(&mut launcher, tend);
}

#[test]
fn reload_changes_memory_max_in_place_and_nothing_is_left_root() {
    let dir = TempDir::new("limits-reload");
    let unit = |max: &str| {
        let swap = "memory-swap-max = \"16M\"\n";
        format!("command = \"sleep 1000\"\nmemory-max = \"{max}\"\n{swap}pids-max = 40\ncpus = 0.5\n")
    };
    let mut launcher = start(&dir, &[("web", &unit("32M"))]);
    let tend = await_child(launcher.id());
    let pid = service_pid(tend, "web");
    let memory = cgroup_dir(pid, "memory").unwrap();
    let max = if memory.join("memory.max").exists() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(&memory, max), (32u64 << 20).to_string());
    let made = made_by_tend(pid);
    let parents: Vec<PathBuf> = made.iter().filter_map(|d| d.parent().map(Path::to_path_buf)).collect();
    std::fs::write(dir.path("units/web.toml"), unit("64M")).unwrap();
    send(tend, libc::SIGHUP);
    await_true("memory-max changed in place", LIMIT, || {
        read(&memory, max) == (64u64 << 20).to_string()
    });
    assert_eq!(service_pid(tend, "web"), pid, "the service kept running");
    // v1 bounds memory + swap: raised with memory-max (written after it,
    // which v1 refuses until memsw is raised: retried).
    if memory.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), (80u64 << 20).to_string());
    }
    assert!(log(&dir).contains("web: limits changed in place"), "{}", log(&dir));
    stop(&mut launcher, tend);
    for dir in &made {
        assert!(!dir.exists(), "{} is left on the host", dir.display());
    }
    // Nor any other tend's leftovers of ours: every tend-* here is live.
    for left in tend_dirs(&parents) {
        assert!(!made.contains(&left), "{} is left", left.display());
    }
}

#[test]
fn a_limit_added_by_reload_moves_the_running_service_into_its_hierarchy_root() {
    let dir = TempDir::new("limits-added");
    let mut launcher = start(&dir, &[("web", "command = \"sleep 1000\"\n")]);
    let tend = await_child(launcher.id());
    let pid = service_pid(tend, "web");
    let unit = "command = \"sleep 1000\"\npids-max = 30\n";
    std::fs::write(dir.path("units/web.toml"), unit).unwrap();
    send(tend, libc::SIGHUP);
    await_true("pids-max 30 on the running service", LIMIT, || {
        cgroup_dir(pid, "pids").is_some_and(|d| d.ends_with("web") && read(&d, "pids.max") == "30")
    });
    assert_eq!(service_pid(tend, "web"), pid, "the service kept running");
    stop(&mut launcher, tend);
}

#[test]
fn a_killed_tends_v1_cgroups_are_swept_at_the_next_start_root() {
    let dir = TempDir::new("limits-sweep");
    // Limits of two v1 controllers: the service joins their hierarchies.
    let unit = "command = \"sleep 1000\"\npids-max = 10\nmemory-max = \"64M\"\n";
    let mut killed = start(&dir, &[("a", unit)]);
    let killed_tend = await_child(killed.id());
    let pid = service_pid(killed_tend, "a");
    let left = made_by_tend(pid);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(
        left.len() >= 3,
        "tend's directories in v2, v1 memory, pids...: {left:?} ({cgroups})"
    );
    send(killed_tend, libc::SIGKILL);
    exit_code_within(&mut killed.0, LIMIT);
    // They stay until a tend starts beside them (another test's may be
    // first).
    let next_dir = TempDir::new("limits-sweep-next");
    let mut next = start(&next_dir, &[("b", "command = \"sleep 1000\"\n")]);
    let next_tend = await_child(next.id());
    service_pid(next_tend, "b");
    for d in &left {
        assert!(!d.exists(), "{} is left after the next start", d.display());
    }
    stop(&mut next, next_tend);
}

/// `sh -c SCRIPT` in a mount namespace where `/sys/fs/cgroup` is an empty
/// read-only tmpfs, as in a container without a delegated cgroup.
fn without_cgroups(script: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--mount",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--",
        "sh",
        "-c",
    ])
    .arg(format!("mount -t tmpfs -o ro tmpfs /sys/fs/cgroup && exec {script}"));
    cmd.env_remove("RUST_BACKTRACE").env_remove("TEND_LOG");
    cmd
}

#[test]
fn limits_where_the_cgroup_is_read_only_are_one_line_and_the_service_runs_root() {
    let dir = TempDir::new("limits-ro");
    let units = dir.path("units");
    std::fs::create_dir(&units).unwrap();
    let marker = dir.path("ran");
    let web = format!(
        "command = \"touch {} && sleep 1000\"\nmemory-max = \"64M\"\n",
        marker.display()
    );
    std::fs::write(units.join("web.toml"), web).unwrap();
    std::fs::write(units.join("plain.toml"), "command = \"sleep 1000\"\n").unwrap();
    let tend = common::tend();
    let check = output(&mut without_cgroups(&format!(
        "{} check {}",
        tend.display(),
        units.display()
    )));
    let text = String::from_utf8_lossy(&check.stdout).to_string() + &String::from_utf8_lossy(&check.stderr);
    let line = format!(
        "{}: limits not applied: no writable cgroup (read-only or not delegated)",
        units.join("web.toml").display()
    );
    assert!(text.contains(&line), "{text}");
    assert_eq!(text.matches("limits not applied").count(), 1, "{text}");
    assert!(check.status.success(), "{text}");

    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    let script = format!("{} init --units {} --no-socket", tend.display(), units.display());
    let child = without_cgroups(&script)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut pid1 = Pid1(child);
    await_true("web to run", LIMIT, || marker.exists());
    let tend_pid = await_child(pid1.id());
    let said = "web: limits not applied: no writable cgroup (read-only or not delegated)";
    await_true("the line at start", LIMIT, || {
        std::fs::read_to_string(dir.path("tend.log")).is_ok_and(|l| l.contains(said))
    });
    stop(&mut pid1, tend_pid);
}
