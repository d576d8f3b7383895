//! The soak: `tend init` as PID 1 of a fresh PID namespace with 50 services
//! (printers, crashers, sleepers) for `DURATION` seconds (default 60; the
//! bench `benches/soak` runs it for an hour) under random kills, stops,
//! starts, restarts, reloads, `exec` calls and `logs -f` followers, all
//! through `tend ctl`. Checked every `CHECK_EVERY` and at the end, as
//! invariants, never timings:
//! - every `ctl` call is answered (a reply, whatever its code);
//! - PID 1's open fds and RSS after warm-up stay within a bound of their
//!   level at warm-up;
//! - no zombie: every one seen is reaped soon after;
//! - no service stuck between states: one seen `starting` or `stopping`
//!   is seen in another state soon after;
//! - every line a printer wrote (it also appends it to a file) is in its
//!   `logs` within the ring's window (the last 1000 lines).
//!
//! Prints its figures at the end (one markdown table) for the README.
//! Needs root.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(30);
const PRINTERS: usize = 20;
const CRASHERS: usize = 15;
const SLEEPERS: usize = 15;
const FOLLOWERS: usize = 3;
/// The ring of each service (RING_LINES in src/runtime/services.rs).
const RING: usize = 1000;
/// After warm-up, PID 1's RSS may grow this much (KiB) above its level
/// then: allocator slack, not a leak, which would grow without end.
const RSS_SLACK_KIB: u64 = 2048;
/// And its fds by this many: connections of the calls in flight.
const FD_SLACK: usize = 16;

/// The client's own failures (no reply from tend), as against a reply
/// that says no.
fn client_failure(stderr: &str) -> bool {
    [
        "no control socket",
        "cannot connect",
        "connection to tend failed",
        "cannot understand",
        "closed the connection",
    ]
    .iter()
    .any(|t| stderr.contains(t))
}

/// xorshift64: enough randomness for a schedule, seeded and printed so a
/// failing run can be replayed with `SEED=`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Soak {
    dir: TempDir,
    launcher: Option<Child>,
    pid: u32,
    calls: usize,
    names: Vec<String>,
}

fn printer(name: &str, dir: &Path) -> String {
    // stdout first, then the file: a line in the file was surely written to
    // tend's pipe before.
    format!(
        "command = \"i=0; while :; do i=$((i+1)); l=\\\"{name} $$ $i\\\"; echo \\\"$l\\\"; echo \\\"$l\\\" >> {dir}/{name}.printed; sleep 0.05; done\"\nrestart = \"always\"\nrestart-delay = \"50ms\"\nrestart-delay-max = \"200ms\"\nstart-limit-burst = 1000000\n",
        dir = dir.display()
    )
}

/// A crasher prints 20 lines a run: its log buffer (1000 lines) is full
/// within the warm-up, like the printers', so that what PID 1 holds after
/// the warm-up is what it holds for good (with one line a run, the rings
/// took about 25 minutes to fill, and RSS rose until then).
fn crasher(n: usize) -> String {
    format!(
        "command = \"for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo crash {n} $i; done; sleep 0.{d}; exit 3\"\nrestart = \"on-failure\"\nrestart-delay = \"50ms\"\nrestart-delay-max = \"400ms\"\nstart-limit-burst = 1000000\n",
        d = 1 + n % 9
    )
}

fn sleeper(generation: usize) -> String {
    format!(
        "command = \"sleep 100000\"\nrestart = \"always\"\nrestart-delay = \"50ms\"\nrestart-delay-max = \"200ms\"\nstart-limit-burst = 1000000\nenv = {{ GENERATION = \"{generation}\" }}\n"
    )
}

impl Soak {
    fn start() -> Soak {
        let dir = TempDir::new("soak");
        let units = dir.path("units");
        std::fs::create_dir(&units).unwrap();
        let mut names = Vec::new();
        let mut write = |name: String, toml: String| {
            std::fs::write(units.join(format!("{name}.toml")), toml).unwrap();
            names.push(name);
        };
        for i in 0..PRINTERS {
            let name = format!("p{i:02}");
            write(name.clone(), printer(&name, &dir.0));
        }
        for i in 0..CRASHERS {
            write(format!("c{i:02}"), crasher(i));
        }
        for i in 0..SLEEPERS {
            write(format!("s{i:02}"), sleeper(0));
        }
        let mut cmd = tend_as_pid1(&[
            "init",
            "--units",
            units.to_str().unwrap(),
            "--socket",
            dir.path("ctl.sock").to_str().unwrap(),
        ]);
        // Its own log is the captured output of 50 services: not kept.
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let launcher = cmd.spawn().unwrap();
        let pid = await_some("tend's pid", LIMIT, || children(launcher.id()).first().copied());
        let soak = Soak {
            dir,
            launcher: Some(launcher),
            pid,
            calls: 0,
            names,
        };
        let socket = soak.dir.path("ctl.sock");
        await_true("the socket", LIMIT, || {
            output(Command::new(tend()).arg("ctl").arg("--socket").arg(&socket).arg("ping"))
                .status
                .success()
        });
        soak
    }

    /// One `tend ctl` call: (code, stdout). Panics unless it is answered.
    fn ctl(&mut self, args: &[&str]) -> (i32, String) {
        self.calls += 1;
        let mut cmd = Command::new(tend());
        cmd.arg("ctl")
            .arg("--socket")
            .arg(self.dir.path("ctl.sock"))
            .args(args)
            .env_remove("TEND_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            code.is_some_and(|c| c != 6) && !client_failure(&stderr),
            "ctl {args:?} not answered: {code:?} {stderr}"
        );
        (code.unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// name → state, from `status --json`.
    fn states(&mut self) -> HashMap<String, String> {
        let (code, out) = self.ctl(&["status", "--json"]);
        assert_eq!(code, 0, "{out}");
        let reply: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        reply["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count())
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The anonymous part of the RSS (heap, stacks): what a leak grows.
    /// The rest is tend's code, faulted back from the page cache the first
    /// time a path runs (PID 1 drops its code pages after start-up).
    fn anon_kib(&self) -> u64 {
        self.status_kib("RssAnon:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Zombies whose parent is PID 1 (every orphan's parent, too).
    fn zombies(&self) -> HashSet<u32> {
        let mut found = HashSet::new();
        for pid in children(self.pid) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            {
                found.insert(pid);
            }
        }
        found
    }

    /// Every line printer `name` wrote is in its logs, back to the oldest
    /// line the ring still holds.
    fn check_lines(&mut self, name: &str) -> usize {
        let printed = std::fs::read_to_string(self.dir.path(&format!("{name}.printed"))).unwrap_or_default();
        let printed: Vec<&str> = printed.lines().collect();
        let Some(last) = printed.last().copied() else {
            return 0;
        };
        // The last line written may still be in the pipe: await it.
        let deadline = Instant::now() + LIMIT;
        let logged = loop {
            let (code, out) = self.ctl(&["logs", name, "-n", &RING.to_string()]);
            assert_eq!(code, 0);
            if out.lines().any(|l| l == last) {
                break out;
            }
            assert!(Instant::now() < deadline, "{name}: {last:?} never logged");
            std::thread::sleep(Duration::from_millis(20));
        };
        let logged: Vec<&str> = logged.lines().collect();
        let held: HashSet<&str> = logged.iter().copied().collect();
        // From the oldest line the ring holds that the printer wrote down.
        let from = printed.iter().position(|l| held.contains(l)).unwrap_or(printed.len());
        let missing: Vec<&&str> = printed[from..].iter().filter(|l| !held.contains(*l)).collect();
        assert!(
            missing.is_empty(),
            "{name}: {} printed lines not in its logs, first {:?}",
            missing.len(),
            missing.first()
        );
        // The window was full, or every line was kept since the start.
        assert!(
            from == 0 || logged.len() >= RING - 1,
            "{name}: lines lost before the window"
        );
        printed.len() - from
    }
}

impl Drop for Soak {
    fn drop(&mut self) {
        if let Some(mut launcher) = self.launcher.take() {
            stop_pid1(&mut launcher, LIMIT);
        }
    }
}

/// A `tend ctl logs -f` running in the background, counting its lines.
struct Follower {
    child: Child,
    lines: Arc<AtomicUsize>,
}

impl Follower {
    fn start(soak: &Soak, name: &str) -> Follower {
        let mut child = Command::new(tend())
            .arg("ctl")
            .arg("--socket")
            .arg(soak.dir.path("ctl.sock"))
            .args(["logs", "-f", name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(AtomicUsize::new(0));
        let count = lines.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for _ in BufReader::new(out).lines().map_while(Result::ok) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Follower { child, lines }
    }

    /// Ends it; how many lines it got.
    fn stop(mut self) -> usize {
        assert!(matches!(self.child.try_wait(), Ok(None)), "a follower ended by itself");
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Figures {
    checks: usize,
    kills: usize,
    stops: usize,
    restarts: usize,
    reloads: usize,
    execs: usize,
    followers: usize,
    followed_lines: usize,
    lines_checked: usize,
    zombies_seen: usize,
    fds_warm: usize,
    fds_max: usize,
    rss_warm: u64,
    rss_max: u64,
    anon_warm: u64,
    anon_max: u64,
    anon_end: u64,
    fds_end: usize,
    rss_end: u64,
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

/// One random action of the chaos.
fn act(soak: &mut Soak, rng: &mut Rng, f: &mut Figures, generation: &mut usize) {
    let name = soak.names[rng.below(soak.names.len())].clone();
    match rng.below(10) {
        0..=2 => {
            soak.ctl(&["signal", &name, "KILL"]);
            f.kills += 1;
        }
        3 => {
            soak.ctl(&["stop", &name]);
            soak.ctl(&["start", &name]);
            f.stops += 1;
        }
        4 | 5 => {
            soak.ctl(&["restart", &name]);
            f.restarts += 1;
        }
        6 => {
            // A changed unit: the sleeper is restarted with it.
            *generation += 1;
            let sleeper_name = format!("s{:02}", rng.below(SLEEPERS));
            let file = soak.dir.path("units").join(format!("{sleeper_name}.toml"));
            std::fs::write(file, sleeper(*generation)).unwrap();
            let (code, _) = soak.ctl(&["reload"]);
            assert_eq!(code, 0);
            f.reloads += 1;
        }
        _ => {
            let (code, out) = soak.ctl(&["exec", "--", "/bin/echo", "soak"]);
            assert_eq!((code, out.as_str()), (0, "soak\n"));
            f.execs += 1;
        }
    }
}

/// The periodic check; `warm`: the bounds are set now.
fn check(soak: &mut Soak, f: &mut Figures, warm: bool) {
    f.checks += 1;
    let zombies = soak.zombies();
    f.zombies_seen += zombies.len();
    let states = soak.states();
    assert_eq!(states.len(), soak.names.len(), "{states:?}");
    let between: Vec<(String, String)> = states
        .into_iter()
        .filter(|(_, s)| s == "starting" || s == "stopping")
        .collect();
    for i in 0..PRINTERS {
        f.lines_checked += soak.check_lines(&format!("p{i:02}"));
    }
    await_true("every zombie seen reaped", LIMIT, || {
        soak.zombies().is_disjoint(&zombies)
    });
    for (name, state) in between {
        await_true(&format!("{name} to leave {state}"), LIMIT, || {
            soak.states().get(&name) != Some(&state)
        });
    }
    let (fds, rss, anon) = (soak.fds(), soak.rss_kib(), soak.anon_kib());
    eprintln!("soak: check: PID 1 fds {fds}, RSS {rss} KiB, anonymous {anon} KiB");
    if warm {
        f.fds_warm = fds;
        f.rss_warm = rss;
        f.anon_warm = anon;
    }
    if f.fds_warm > 0 {
        f.fds_max = f.fds_max.max(fds);
        f.rss_max = f.rss_max.max(rss);
        f.anon_max = f.anon_max.max(anon);
        assert!(fds <= f.fds_warm + FD_SLACK, "fds grew: {fds} from {}", f.fds_warm);
        assert!(
            rss <= f.rss_warm + RSS_SLACK_KIB,
            "RSS grew: {rss} KiB from {}",
            f.rss_warm
        );
    }
}

#[test]
fn soak_root() {
    let duration = env_secs("DURATION", 60);
    let every = env_secs("CHECK_EVERY", 10);
    let warm_up = env_secs("WARM_UP", (duration.as_secs() / 4).clamp(10, 300));
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) | 1);
    eprintln!("soak: {duration:?}, checks every {every:?}, warm-up {warm_up:?}, SEED={seed}");
    let mut rng = Rng(seed);
    let mut soak = Soak::start();
    let mut f = Figures::default();
    let mut generation = 0;
    let start = Instant::now();
    let mut next_check = start + every;
    let mut warmed = false;
    let mut followers: Vec<Follower> = (0..FOLLOWERS)
        .map(|i| Follower::start(&soak, &format!("p{i:02}")))
        .collect();
    while start.elapsed() < duration {
        act(&mut soak, &mut rng, &mut f, &mut generation);
        if Instant::now() >= next_check {
            let warm = !warmed && start.elapsed() >= warm_up;
            warmed |= warm;
            check(&mut soak, &mut f, warm);
            // One follower replaced per check: they come and go too.
            let i = f.checks % FOLLOWERS;
            let old = std::mem::replace(&mut followers[i], Follower::start(&soak, &format!("p{i:02}")));
            f.followed_lines += old.stop();
            f.followers += 1;
            next_check = Instant::now() + every;
        }
        // Pacing, not waiting for anything: a few actions a second.
        std::thread::sleep(Duration::from_millis(20 + rng.below(80) as u64));
    }
    for follower in followers {
        f.followed_lines += follower.stop();
        f.followers += 1;
    }
    check(&mut soak, &mut f, !warmed);
    f.fds_end = soak.fds();
    f.rss_end = soak.rss_kib();
    f.anon_end = soak.anon_kib();
    assert!(f.followed_lines > 0, "the followers got nothing");
    let (code, _) = soak.ctl(&["shutdown"]);
    assert_eq!(code, 0);
    let mut launcher = soak.launcher.take().unwrap();
    let code = exit_code_within(&mut launcher, LIMIT);
    assert!(code < 128, "PID 1 died of a signal: {code}");
    report(&f, duration, soak.calls, seed);
}

fn report(f: &Figures, duration: Duration, calls: usize, seed: u64) {
    println!(
        "\nsoak: {}s, 50 services ({PRINTERS} printers, {CRASHERS} crashers, {SLEEPERS} sleepers), SEED={seed}\n",
        duration.as_secs()
    );
    println!("| figure | value |\n| --- | --- |");
    println!("| `tend ctl` calls, all answered | {calls} |");
    println!(
        "| actions: kills / stop+start / restarts / reloads / execs | {} / {} / {} / {} / {} |",
        f.kills, f.stops, f.restarts, f.reloads, f.execs
    );
    println!(
        "| `logs -f` followers / lines they got | {} / {} |",
        f.followers, f.followed_lines
    );
    println!(
        "| checks / printed lines found in the logs (summed over checks) | {} / {} |",
        f.checks, f.lines_checked
    );
    println!(
        "| zombies seen at a check (all reaped soon after) | {} |",
        f.zombies_seen
    );
    println!(
        "| PID-1 fds: after warm-up / max / end | {} / {} / {} |",
        f.fds_warm, f.fds_max, f.fds_end
    );
    println!(
        "| PID-1 RSS: after warm-up / max / end | {} / {} / {} KiB |",
        f.rss_warm, f.rss_max, f.rss_end
    );
    println!(
        "| PID-1 anonymous RSS (heap): after warm-up / max / end | {} / {} / {} KiB |",
        f.anon_warm, f.anon_max, f.anon_end
    );
}
