//! tend under podman, in the images of packaging/Containerfile (needs root).
//!
//! One binary without the test harness (`harness = false`): the images are
//! built once (the static tend from packaging/build-static, a busybox base
//! imported from busybox-static, then packaging/build-image), every case
//! runs in turn, and the images are removed at the end whatever happened.
//! podman runs as PEERS.md says it works here: runc, no network, fixed
//! ulimits. Conditions are awaited with deadlines, never slept for.
//!
//! `cargo test --test podman_root [FILTER]` runs the cases whose name
//! contains FILTER.

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

mod common;

use common::{await_some, TempDir};

/// Options every `podman run` here needs (see PEERS.md).
const RUN: &[&str] = &[
    "--runtime",
    "runc",
    "--network",
    "none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// The images of one run, tagged with this process's pid.
struct Images {
    busybox: String,
    tend: String,
    example: String,
}

type Case = (&'static str, fn(&Images));

fn main() {
    let filter = filter();
    let cases: &[Case] = &[
        ("podman_run_passes_exit_codes", podman_run_passes_exit_codes),
        ("the_scratch_image_holds_only_tend", the_scratch_image_holds_only_tend),
        ("podman_stop_of_a_child_is_graceful", podman_stop_of_a_child_is_graceful),
        ("podman_stop_of_units_is_graceful", podman_stop_of_units_is_graceful),
        (
            "podman_exec_tend_ctl_status_and_health",
            podman_exec_tend_ctl_status_and_health,
        ),
        (
            "podman_logs_shows_the_services_lines",
            podman_logs_shows_the_services_lines,
        ),
        ("podman_kill_hup_reloads", podman_kill_hup_reloads),
        (
            "podman_run_as_user_1000_keeps_tend_ctl",
            podman_run_as_user_1000_keeps_tend_ctl,
        ),
        (
            "podman_kube_play_runs_the_kubernetes_pod",
            podman_kube_play_runs_the_kubernetes_pod,
        ),
        (
            "sdnotify_container_gets_ready_once_all_are_up",
            sdnotify_container_gets_ready_once_all_are_up,
        ),
    ];
    let selected: Vec<_> = cases
        .iter()
        .filter(|(name, _)| filter.as_deref().map_or(true, |f| name.contains(f)))
        .collect();
    if selected.is_empty() {
        return;
    }
    let images = build_images();
    let mut failed = Vec::new();
    for (name, case) in &selected {
        println!("test {name} ...");
        if std::panic::catch_unwind(|| case(&images)).is_err() {
            failed.push(*name);
        }
    }
    remove_images(&images);
    for name in &failed {
        println!("FAILED {name}");
    }
    // The plain closing line test runners read: `N passed, N failed`.
    println!("{} passed, {} failed", selected.len() - failed.len(), failed.len());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

/// The name filter among libtest's arguments (`cargo test NAME`), skipping
/// the values of libtest's options (`--test-threads 1`).
fn filter() -> Option<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let takes_value = ["--test-threads", "--skip", "--color", "--format", "--logfile", "-Z"];
    args.iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with('-') && (*i == 0 || !takes_value.contains(&args[i - 1].as_str())))
        .map(|(_, a)| a.clone())
}

fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.env_remove("RUST_BACKTRACE").env_remove("TEND_LOG");
    cmd.env_remove("NOTIFY_SOCKET").stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The static tend, busybox imported from a rootfs (no registry here), and
/// packaging/build-image's two images on top.
fn build_images() -> Images {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tag = std::process::id();
    let images = Images {
        busybox: format!("localhost/tend-test-busybox-{tag}:latest"),
        tend: format!("localhost/tend-test-tend-{tag}:latest"),
        example: format!("localhost/tend-test-example-{tag}:latest"),
    };
    let bin = run_ok(Command::new(root.join("packaging/build-static")).current_dir(root));
    let rootfs = TempDir::new("podman-busybox");
    busybox_rootfs(&rootfs.path("root"));
    let tar = rootfs.path("busybox.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(rootfs.path("root"))
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    run_ok(podman().arg("import").arg(&tar).arg(&images.busybox));
    run_ok(
        Command::new(root.join("packaging/build-image"))
            .arg(&images.busybox)
            .env("TEND_BIN", bin.trim())
            .env("TEND_IMAGE", &images.tend)
            .env("EXAMPLE_IMAGE", &images.example),
    );
    images
}

fn remove_images(images: &Images) {
    for image in [&images.example, &images.tend, &images.busybox] {
        let _ = podman()
            .args(["rmi", "-f", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Busybox with every applet linked in /bin, and a passwd that knows root.
fn busybox_rootfs(root: &Path) {
    for dir in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is not installed (apt-get install busybox-static)");
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = run_ok(Command::new(busybox).arg("--list"));
    for applet in list.lines().filter(|a| *a != "busybox") {
        let _ = symlink("busybox", root.join("bin").join(applet));
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
}

/// A detached container; `podman rm -f` when dropped.
struct Ctr {
    name: String,
}

impl Ctr {
    fn name() -> String {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        format!(
            "tend-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `podman run -d OPTS IMAGE ARGS`.
    fn start(opts: &[&str], image: &str, args: &[&str]) -> Ctr {
        Ctr::start_with(podman(), opts, image, args)
    }

    fn start_with(mut cmd: Command, opts: &[&str], image: &str, args: &[&str]) -> Ctr {
        let ctr = Ctr { name: Ctr::name() };
        cmd.args(["run", "-d", "--name", &ctr.name])
            .args(RUN)
            .args(opts)
            .arg(image)
            .args(args);
        run_ok(&mut cmd);
        ctr
    }

    fn exec(&self, args: &[&str]) -> Output {
        run(podman().arg("exec").arg(&self.name).args(args))
    }

    fn inspect(&self, format: &str) -> String {
        run_ok(podman().args(["inspect", "--format", format, &self.name]))
            .trim()
            .to_string()
    }

    /// `podman stop` with a timeout long enough that only tend's own
    /// shutdown ends the container: 137 would mean podman had to KILL.
    fn stop(&self) -> i32 {
        run_ok(podman().args(["stop", "--time", "60", &self.name]));
        self.inspect("{{.State.ExitCode}}").parse().expect("an exit code")
    }

    fn logs(&self) -> String {
        text(&run(podman().args(["logs", &self.name])))
    }

    /// Waits until `tend ctl wait NAMES` (default: ready) succeeds inside.
    fn await_ready(&self, names: &[&str]) {
        let mut args = vec!["tend", "ctl", "wait", "--timeout", "30s"];
        args.extend_from_slice(names);
        // The socket appears a moment after the container starts.
        await_some("tend ctl wait to answer", Duration::from_secs(30), || {
            self.exec(&args).status.success().then_some(())
        });
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "-f", "--time", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `podman run --rm --entrypoint /sbin/tend EXAMPLE -- ARGS`: tend as a
/// tini-like entrypoint in the busybox image.
fn entry_code(images: &Images, args: &[&str]) -> i32 {
    let mut cmd = podman();
    cmd.args(["run", "--rm"]).args(RUN).args(["--entrypoint", "/sbin/tend"]);
    cmd.arg(&images.example).arg("--").args(args);
    let out = run(&mut cmd);
    out.status.code().expect("podman exited by a signal")
}

fn podman_run_passes_exit_codes(images: &Images) {
    assert_eq!(entry_code(images, &["true"]), 0);
    assert_eq!(entry_code(images, &["sh", "-c", "exit 7"]), 7);
    assert_eq!(entry_code(images, &["no-such-program"]), 127);
    assert_eq!(entry_code(images, &["sh", "-c", "kill -9 $$"]), 137);
}

fn the_scratch_image_holds_only_tend(images: &Images) {
    let mut cmd = podman();
    cmd.args(["run", "--rm"])
        .args(RUN)
        .arg(&images.tend)
        .arg("/sbin/tend")
        .arg("--version");
    let out = run_ok(&mut cmd);
    assert!(out.starts_with("tend "), "{out}");
    // No shell in it: nothing but tend.
    let mut cmd = podman();
    cmd.args(["run", "--rm"]).args(RUN).arg(&images.tend).arg("/bin/sh");
    assert_eq!(run(&mut cmd).status.code(), Some(127));
}

/// The host pid of the container's PID 1.
fn init_pid(ctr: &Ctr) -> u32 {
    ctr.inspect("{{.State.Pid}}").parse().expect("a pid")
}

fn podman_stop_of_a_child_is_graceful(images: &Images) {
    let ctr = Ctr::start(
        &["--entrypoint", "/sbin/tend"],
        &images.example,
        &["--", "sleep", "1000"],
    );
    let init = init_pid(&ctr);
    // Until tend runs its child it may not yet handle TERM (a namespace's
    // init ignores signals it has no handler for).
    await_some("tend to run sleep", Duration::from_secs(10), || {
        let children = fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
        (!children.trim().is_empty()).then_some(())
    });
    // sleep dies of the forwarded TERM: 143, as with tini.
    assert_eq!(ctr.stop(), 143, "{}", ctr.logs());
}

fn podman_stop_of_units_is_graceful(images: &Images) {
    let ctr = Ctr::start(&[], &images.example, &[]);
    ctr.await_ready(&["httpd", "ticker"]);
    assert_eq!(ctr.stop(), 0, "{}", ctr.logs());
    let logs = ctr.logs();
    assert!(logs.contains("httpd"), "{logs}");
}

fn podman_exec_tend_ctl_status_and_health(images: &Images) {
    let ctr = Ctr::start(&[], &images.example, &[]);
    ctr.await_ready(&["httpd", "ticker"]);
    let status = ctr.exec(&["tend", "ctl", "status"]);
    let shown = text(&status);
    assert!(status.status.success(), "{shown}");
    for line in ["httpd", "ticker", "prepare"] {
        assert!(shown.lines().any(|l| l.starts_with(line)), "{shown}");
    }
    let health = ctr.exec(&["tend", "ctl", "health"]);
    assert!(health.status.success(), "{}", text(&health));
    assert_eq!(String::from_utf8_lossy(&health.stdout).trim(), "healthy");
}

fn podman_logs_shows_the_services_lines(images: &Images) {
    let ctr = Ctr::start(&[], &images.example, &[]);
    ctr.await_ready(&["httpd", "ticker"]);
    // ticker prints `tick` on start; tend's own lines name each service.
    await_some("the lines in podman logs", Duration::from_secs(20), || {
        let logs = ctr.logs();
        (logs.contains("tick") && logs.contains("started httpd")).then_some(())
    });
}

fn podman_kill_hup_reloads(images: &Images) {
    let ctr = Ctr::start(&[], &images.example, &[]);
    ctr.await_ready(&["httpd", "ticker"]);
    let unit = "command = [\"sleep\", \"1000\"]\n";
    let out = ctr.exec(&["sh", "-c", &format!("printf '{unit}' > /etc/tend/units/extra.toml")]);
    assert!(out.status.success(), "{}", text(&out));
    run_ok(podman().args(["kill", "--signal", "HUP", &ctr.name]));
    ctr.await_ready(&["extra"]);
}

fn podman_run_as_user_1000_keeps_tend_ctl(images: &Images) {
    // /run is root's: the socket goes where user 1000 may write.
    let ctr = Ctr::start(
        &["--user", "1000"],
        &images.example,
        &["--socket", "/tmp/tend/ctl.sock"],
    );
    await_some("tend ctl to answer as user 1000", Duration::from_secs(30), || {
        let out = ctr.exec(&[
            "tend",
            "ctl",
            "--socket",
            "/tmp/tend/ctl.sock",
            "wait",
            "httpd",
            "ticker",
        ]);
        out.status.success().then_some(())
    });
    let out = ctr.exec(&["tend", "ctl", "--socket", "/tmp/tend/ctl.sock", "health"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ctr.exec(&["id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1000");
}

fn sdnotify_container_gets_ready_once_all_are_up(images: &Images) {
    // podman hands the container a socket of its own and forwards READY=1
    // to its own $NOTIFY_SOCKET, as under systemd: ours.
    let dir = TempDir::new("podman-notify");
    let socket_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_nonblocking(true).unwrap();
    // A unit that is ready only once the test says so.
    let units = dir.path("units");
    fs::create_dir_all(&units).unwrap();
    fs::write(
        units.join("gate.toml"),
        "command = [\"sleep\", \"1000\"]\nready = { exec = \"test -e /tmp/go\" }\nready-timeout = \"60s\"\n",
    )
    .unwrap();
    let mut cmd = podman();
    cmd.env("NOTIFY_SOCKET", &socket_path);
    let volume = format!("{}:/units:ro", units.display());
    let ctr = Ctr::start_with(
        cmd,
        &["--sdnotify=container", "-v", &volume],
        &images.example,
        &["--units", "/units"],
    );
    // `running`: started, its ready check not yet passed.
    await_some("gate to be running", Duration::from_secs(30), || {
        let out = ctr.exec(&["tend", "ctl", "status", "gate"]);
        String::from_utf8_lossy(&out.stdout).contains(" running ").then_some(())
    });
    assert!(!received_ready(&socket), "READY=1 before every service was up");
    assert!(ctr.exec(&["touch", "/tmp/go"]).status.success());
    await_some("READY=1 at podman's notify socket", Duration::from_secs(30), || {
        received_ready(&socket).then_some(())
    });
    let status = text(&ctr.exec(&["tend", "ctl", "status", "gate"]));
    assert!(status.contains("ready"), "{status}");
}

/// Whether a datagram holding READY=1 has arrived (reads what is there).
fn received_ready(socket: &UnixDatagram) -> bool {
    let mut buf = [0u8; 4096];
    let mut ready = false;
    while let Ok(n) = socket.recv(&mut buf) {
        ready |= String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "READY=1");
    }
    ready
}

/// The pod of packaging/kubernetes under `podman kube play`: non-root, the
/// read-only root, the socket on an emptyDir, and the probes' commands
/// answering inside.
fn podman_kube_play_runs_the_kubernetes_pod(images: &Images) {
    let dir = TempDir::new("podman-kube");
    let kube = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/kubernetes");
    let pod_name = Ctr::name();
    // No network here, so no ports; this run's image and pod name.
    let pod = fs::read_to_string(kube.join("pod.yaml"))
        .unwrap()
        .replace(
            "      ports:\n        - name: http\n          containerPort: 8080\n",
            "",
        )
        .replace("localhost/tend-example:latest", &images.example)
        .replacen("  name: tend-example\n", &format!("  name: {pod_name}\n"), 1);
    let pod_file = dir.path("pod.yaml");
    fs::write(&pod_file, pod).unwrap();
    // kube play takes no --ulimit or --runtime: the same settings as RUN, as
    // defaults.
    let conf = dir.path("containers.conf");
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    let kube_cmd = |args: &[&str]| {
        let mut cmd = podman();
        cmd.env("CONTAINERS_CONF", &conf).arg("kube").args(args);
        cmd
    };
    // kube play builds podman's pause image for the pod's infra container
    // when it is missing: remove it again if this test made it.
    let before = image_names();
    let _down = Defer(Some(|| {
        let _ = kube_cmd(&["down", pod_file.to_str().unwrap()]).output();
        for image in image_names().difference(&before) {
            if image.starts_with("localhost/podman-pause:") {
                let _ = podman().args(["rmi", "-f", image]).output();
            }
        }
    }));
    let configmap = kube.join("configmap.yaml");
    run_ok(&mut kube_cmd(&[
        "play",
        "--network",
        "none",
        "--configmap",
        configmap.to_str().unwrap(),
        pod_file.to_str().unwrap(),
    ]));
    let ctr = format!("{pod_name}-app");
    let exec = |args: &[&str]| run(podman().arg("exec").arg(&ctr).args(args));
    let probe = |args: &[&str]| {
        let mut all = vec!["/sbin/tend", "ctl", "--socket=/run/tend/ctl.sock"];
        all.extend_from_slice(args);
        exec(&all)
    };
    await_some("the startup probe's command to pass", Duration::from_secs(30), || {
        probe(&["wait", "--timeout=4s", "httpd", "ticker"])
            .status
            .success()
            .then_some(())
    });
    let health = probe(&["health"]);
    assert!(health.status.success(), "{}", text(&health));
    assert_eq!(String::from_utf8_lossy(&exec(&["id", "-u"]).stdout).trim(), "1000");
    // The root is read-only, the units' /tmp is not.
    assert!(!exec(&["touch", "/x"]).status.success());
    assert!(exec(&["test", "-s", "/tmp/www/index.html"]).status.success());
}

/// The `REPOSITORY:TAG` of every image in podman's store.
fn image_names() -> std::collections::BTreeSet<String> {
    let list = run_ok(podman().args(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    list.lines().map(str::to_string).collect()
}

/// Runs its closure when dropped (cleanup that must happen on a failure too).
struct Defer<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Defer<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
