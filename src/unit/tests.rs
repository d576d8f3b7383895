//! Validation of single unit files: every kind of bad input gives its
//! message at the right line and column; defaults and the typed result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::check_text;
use super::*;
use crate::supervisor::{RestartPolicy, ServiceConfig, ServiceType};

mod decode;
mod load;
mod supervision;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\nredis:x:999:999::/var/lib/redis:/bin/false\nnobody:x:65534:65534::/:/bin/false\n";
const GROUP: &str = "root:x:0:\nwww-data:x:33:\napp:x:1000:\nredis:x:999:\nadm:x:4:app\nnogroup:x:65534:\n";

/// The programs of the test environment (no other exists), where a Debian
/// root has them.
const PROGRAMS: &[&str] = &[
    "/usr/bin/sh",
    "/bin/sh",
    "/usr/bin/sleep",
    "/usr/bin/true",
    "/usr/bin/env",
];

/// The environment units are checked against: data only, nothing of this
/// machine's own `/bin` or `/etc`.
fn env() -> Fixture {
    let mut env = Fixture {
        root: PathBuf::from("/"),
        users: UserDb::parse(PASSWD, GROUP),
        ceilings: Ceilings([(Resource::Nofile, 1_048_576)].into()),
        ..Fixture::default()
    }
    .with_programs(PROGRAMS);
    env.entries
        .insert("/etc/passwd".into(), Entry::File { executable: false });
    env.texts.insert("/dev/null".into(), String::new());
    env
}

fn errors(text: &str) -> Vec<String> {
    let file = Path::new("units/web.toml");
    let (_, errors) = check_text("web", file, text, &env(), Path::new("units"));
    errors.iter().map(ToString::to_string).collect()
}

fn unit(text: &str) -> Unit {
    let file = Path::new("units/web.toml");
    let (checked, errors) = check_text("web", file, text, &env(), Path::new("units"));
    assert!(errors.is_empty(), "{errors:#?}");
    match checked {
        Some(c) => c.unit,
        None => panic!("no unit"),
    }
}

/// Found by fuzz/unit: a value with a newline (`"inherit\nx"` in TOML) was
/// printed raw, so one error of `tend check` took two lines. Values are
/// quoted and escaped.
#[test]
fn errors_are_one_line_whatever_the_values() {
    let text = "command = [\"a\\nb\"]\nstderr = \"inherit\\nx\"\nuser = \"u\\tv\"\nenv = { PATH = \"/x\\n\" }\n";
    let errors = errors(text);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    for e in &errors {
        assert!(!e.contains(['\n', '\t']), "{e:?}");
    }
    assert!(
        errors[0].ends_with(r#"command "a\nb" not found in PATH "/x\n" under /"#),
        "{errors:#?}"
    );
    assert!(errors[1].contains(r#"unknown stderr "inherit\nx""#), "{errors:#?}");
}

#[test]
fn defaults_are_the_supervisors() {
    let u = unit("command = [\"sleep\", \"10\"]\n");
    assert_eq!(u.service.clone(), ServiceConfig::default());
    assert_eq!(u.argv, ["sleep", "10"]);
    assert_eq!(u.form, CommandForm::Exec);
    assert!(u.program.is_absolute() && u.program.ends_with("sleep"));
    assert_eq!((u.run_as.uid, u.run_as.gid, u.ready.clone()), (None, None, None));
    assert_eq!((u.stdout.clone(), u.stderr.clone()), (Stdio::Log, Stdio::Log));
    assert!(u.env.is_empty() && u.limits.is_empty() && u.description.is_none());
}

#[test]
fn shell_form_runs_sh() {
    let u = unit("command = \"echo hi && sleep 1\"\n");
    assert_eq!(u.argv, ["/bin/sh", "-c", "echo hi && sleep 1"]);
    assert_eq!(u.form, CommandForm::Shell);
    assert_eq!(u.program, PathBuf::from("/bin/sh"));
}

/// Every key at once; also keeps the schema's key list in step with it.
const FULL: &str = r#"
description = "the web front"
command = ["sh", "-c", "exec sleep 1"]
type = "simple"
ready = { tcp = "127.0.0.1:8080" }
ready-timeout = "5s"
restart = "always"
restart-delay = "250ms"
restart-delay-max = "1m30s"
start-limit-burst = 3
start-limit-interval = "1m"
after = ["db"]
requires = ["cache"]
stop-signal = "QUIT"
stop-timeout = "20s"
user = "www-data"
group = "adm"
working-dir = "/var/www"
env = { Z = "last", A = 1, DEBUG = true, PATH = "/usr/bin:/bin" }
limits = { nofile = 65536, core = "infinity", nproc = { soft = 100, hard = 200 } }
memory-max = "1G"
memory-high = "768M"
memory-swap-max = "0.5G"
cpus = 1.5
cpu-weight = 50
pids-max = 500
io-weight = 200
stdout = "inherit"
stderr = { file = "/var/log/web.err" }
env-file = "/dev/null"
main = true
enabled = false
on-failure = "shutdown"
health = { http = "http://127.0.0.1:8080/healthz" }
health-interval = "15s"
health-timeout = "2s"
health-retries = 4
health-start-period = "1m"
on-unhealthy = "shutdown"
log-buffer-lines = 50
"#;

#[test]
fn every_key() {
    let u = unit(FULL);
    assert_eq!(u.description.as_deref(), Some("the web front"));
    assert_eq!(u.ready.as_deref(), Some(&Ready::Tcp(([127, 0, 0, 1], 8080).into())));
    assert_eq!(u.service.ready_timeout, Some(Duration::from_secs(5)));
    assert_eq!(u.service.restart, RestartPolicy::Always);
    assert_eq!(u.service.restart_delay, Duration::from_millis(250));
    assert_eq!(u.service.restart_delay_max, Duration::from_secs(90));
    assert_eq!(
        (u.service.start_limit_burst, u.service.start_limit_interval),
        (3, Duration::from_secs(60))
    );
    assert_eq!(
        (u.service.after.clone(), u.service.requires.clone()),
        (vec!["db".into()], vec!["cache".into()])
    );
    assert_eq!(
        (u.service.stop_signal, u.service.stop_timeout),
        (libc::SIGQUIT, Duration::from_secs(20))
    );
    assert_eq!((u.run_as.uid, u.run_as.gid), (Some(33), Some(4)));
    assert_eq!(u.working_dir, Some(PathBuf::from("/var/www")));
    let env: Vec<_> = u.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(env, ["Z=last", "A=1", "DEBUG=true", "PATH=/usr/bin:/bin"]);
    assert_eq!(
        u.limits[&Resource::Nofile],
        Limit {
            soft: 65536,
            hard: 65536
        }
    );
    assert_eq!(
        u.limits[&Resource::Core],
        Limit {
            soft: INFINITY,
            hard: INFINITY
        }
    );
    assert_eq!(u.limits[&Resource::Nproc], Limit { soft: 100, hard: 200 });
    assert_eq!(u.stdout, Stdio::Inherit);
    assert_eq!(u.stderr, Stdio::File("/var/log/web.err".into()));
    assert!(u.service.main && !u.service.enabled);
    let c = u.service.clone();
    assert!(c.has_ready_check && c.main && !c.enabled);
    assert_eq!(c.service_type, ServiceType::Simple);
    assert_eq!(c.on_failure, Some(crate::supervisor::OnFailure::Shutdown));
    let health = crate::supervisor::HealthPolicy {
        interval: Duration::from_secs(15),
        timeout: Duration::from_secs(2),
        retries: 4,
        start_period: Duration::from_secs(60),
        on_unhealthy: crate::supervisor::OnUnhealthy::Shutdown,
    };
    assert_eq!(c.health.as_deref(), Some(&health));
    let check = crate::unit::HealthCheck::Http {
        addr: ([127, 0, 0, 1], 8080).into(),
        host: "127.0.0.1:8080".into(),
        path: "/healthz".into(),
    };
    assert_eq!(u.health.as_deref(), Some(&check));
    assert_eq!(u.log_buffer_lines, 50);

    let tables: Vec<_> = [FULL, supervision::FULL_NOTIFY, supervision::FULL_SCHEDULED]
        .iter()
        .filter_map(|text| toml::de::DeTable::parse(text).map(|t| t.into_inner()).ok())
        .collect();
    let mut written: Vec<&str> = tables
        .iter()
        .flat_map(|t| t.keys())
        .map(|k| k.get_ref().as_ref())
        .filter(|k| !["command", "type"].contains(k))
        .collect();
    written.extend(["command", "type"]);
    written.sort();
    let mut known: Vec<&str> = schema::UNIT_KEYS.0.iter().map(|(k, _)| *k).collect();
    known.sort();
    assert_eq!(written, known);
}

#[test]
fn unknown_keys_are_located_with_suggestions() {
    let text =
        "command = [\"sh\"]\nrestart_delay = \"1s\"\nready = { tcp = \"127.0.0.1:1\", tpc = 1 }\nfrobnicate = 1\n";
    assert_eq!(
        errors(text),
        [
            "units/web.toml:2:1: unknown key \"restart_delay\", did you mean \"restart-delay\"?",
            "units/web.toml:3:32: unknown key \"tpc\" in ready, did you mean \"tcp\"?",
            "units/web.toml:4:1: unknown key \"frobnicate\"",
        ]
    );
}

#[test]
fn every_type_error_is_gathered() {
    let text = "command = 3\nstart-limit-burst = \"x\"\nafter = [1]\nmain = \"yes\"\n";
    assert_eq!(
        errors(text),
        [
            "units/web.toml:1:11: command: expected an array of strings (exec form) or a string (shell form)",
            "units/web.toml:2:21: start-limit-burst: invalid type: string \"x\", expected u32",
            "units/web.toml:3:10: after: invalid type: integer `1`, expected a string",
            "units/web.toml:4:8: main: invalid type: string \"yes\", expected a boolean",
        ]
    );
}

#[test]
fn syntax_errors() {
    let e = errors("command = [\"sh\"]\nrestart = always\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("units/web.toml:2:11: "), "{e:?}");
    let e = errors("[env]\nA = \"1\"\n[env]\n");
    assert_eq!(e, ["units/web.toml:3:2: duplicate key"]);
}

#[test]
fn missing_and_empty_command() {
    assert_eq!(errors(""), ["units/web.toml:1:1: missing required key \"command\""]);
    assert_eq!(errors("command = []"), ["units/web.toml:1:11: command is empty"]);
    assert_eq!(errors("command = \"  \""), ["units/web.toml:1:11: command is empty"]);
    assert_eq!(errors("command = [\"\"]"), ["units/web.toml:1:11: command is empty"]);
}

#[test]
fn commands_are_found_or_reported() {
    assert_eq!(
        errors("command = [\"no-such-tend-program\"]"),
        [format!(
            "units/web.toml:1:11: command \"no-such-tend-program\" not found in PATH \"{DEFAULT_PATH}\" under /"
        )]
    );
    assert_eq!(
        errors("command = [\"/etc/passwd\"]"),
        ["units/web.toml:1:11: \"/etc/passwd\" is not an executable file"]
    );
    assert_eq!(
        errors("command = [\"/nonexistent/bin/x\"]"),
        ["units/web.toml:1:11: command \"/nonexistent/bin/x\" does not exist under /"]
    );
    // The unit's PATH is the one searched.
    assert_eq!(
        errors("command = [\"sh\"]\nenv = { PATH = \"/nonexistent\" }"),
        ["units/web.toml:1:11: command \"sh\" not found in PATH \"/nonexistent\" under /"]
    );
    let mut env = env();
    env.root = PathBuf::from("/nonexistent-root");
    env.entries.clear();
    let (_, e) = check_text("web", Path::new("w.toml"), "command = \"true\"", &env, Path::new("."));
    assert_eq!(
        e[0].to_string(),
        "w.toml:1:11: shell \"/bin/sh\" does not exist under /nonexistent-root"
    );
}

#[test]
fn choices_durations_and_signals() {
    let text = "command = [\"sh\"]\ntype = \"simpel\"\nrestart = \"sometimes\"\nstop-timeout = \"10 parsecs\"\nstop-signal = \"SIGFOO\"\nstdout = \"nul\"\n";
    assert_eq!(
        errors(text),
        [
            "units/web.toml:2:8: unknown type \"simpel\", did you mean \"simple\"?",
            "units/web.toml:3:11: unknown restart \"sometimes\", expected one of \"no\", \"on-failure\", \"always\"",
            "units/web.toml:4:16: invalid duration \"10 parsecs\" for stop-timeout: unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)",
            "units/web.toml:5:15: unknown signal \"SIGFOO\"",
            "units/web.toml:6:10: unknown stdout \"nul\", did you mean \"null\"?",
        ]
    );
    assert_eq!(unit("command = [\"sh\"]\nstop-signal = 9").service.stop_signal, 9);
    assert_eq!(
        unit("command = [\"sh\"]\nstop-signal = \"RTMIN+3\"")
            .service
            .stop_signal,
        crate::signal::halt()
    );
}

#[test]
fn restart_timing() {
    assert_eq!(
        errors("command = [\"sh\"]\nrestart-delay = \"1m\"\nstart-limit-burst = 0\n"),
        [
            "units/web.toml:2:17: restart-delay (1m) is above restart-delay-max (30s)",
            "units/web.toml:3:21: start-limit-burst must be at least 1",
        ]
    );
}

#[test]
fn users_and_groups() {
    let u = unit("command = [\"sh\"]\nuser = \"app\"");
    assert_eq!((u.run_as.uid, u.run_as.gid), (Some(1000), Some(1000)));
    // The groups that list it as a member, and its login, as services get them.
    assert_eq!(u.run_as.groups, [4]);
    assert_eq!(u.run_as.entry.map(|e| e.home), Some("/home/app".into()));
    let u = unit("command = [\"sh\"]\nuser = 4242");
    assert!(u.run_as.groups.is_empty() && u.run_as.entry.is_none());
    let u = unit("command = [\"sh\"]\nuser = 4242");
    assert_eq!((u.run_as.uid, u.run_as.gid), (Some(4242), None));
    let u = unit("command = [\"sh\"]\nuser = \"33\"\ngroup = 0");
    assert_eq!((u.run_as.uid, u.run_as.gid), (Some(33), Some(0)));
    assert_eq!(
        errors("command = [\"sh\"]\nuser = \"www\"\ngroup = \"wheel\"\n"),
        [
            "units/web.toml:2:8: unknown user \"www\"",
            "units/web.toml:3:9: unknown group \"wheel\"",
        ]
    );
    assert_eq!(
        errors("command = [\"sh\"]\nuser = \"ap\"\ngroup = 4294967295\n"),
        [
            "units/web.toml:2:8: unknown user \"ap\", did you mean \"app\"?",
            "units/web.toml:3:9: group id 4294967295 is out of range",
        ]
    );
}

#[test]
fn ready_rules() {
    let u = unit("command = [\"sh\"]\nready = { exec = [\"true\"] }");
    assert!(matches!(u.ready.as_deref(), Some(Ready::Exec { .. })));
    assert_eq!(u.service.ready_timeout, Some(Duration::from_secs(90)));
    assert_eq!(
        unit("command = [\"sh\"]\ntype = \"notify\"").service.ready_timeout,
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        unit("command = [\"sh\"]\ntype = \"oneshot\"").service.ready_timeout,
        None
    );
    let oneshot = unit("command = [\"sh\"]\ntype = \"oneshot\"\nready-timeout = \"1h\"");
    assert_eq!(oneshot.service.ready_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(
        errors("command = [\"sh\"]\ntype = \"notify\"\nready = { tcp = \"localhost:80\" }\n"),
        [
            "units/web.toml:3:9: \"ready\" applies to simple services only, this one is notify",
            "units/web.toml:3:17: invalid tcp address \"localhost:80\": expected IP:PORT like \"127.0.0.1:8080\"",
        ]
    );
    assert_eq!(
        errors("command = [\"sh\"]\nready = { tcp = \"127.0.0.1:1\", exec = \"true\" }\n"),
        ["units/web.toml:2:9: ready needs exactly one of \"tcp\" or \"exec\""]
    );
    assert_eq!(
        errors("command = [\"sh\"]\nready-timeout = \"1s\"\n"),
        ["units/web.toml:2:17: \"ready-timeout\" on a simple service needs a \"ready\" check"]
    );
}

#[test]
fn limits() {
    let text = "command = [\"sh\"]\n[limits]\nnofiles = 10\nnofile = 2000000\ncore = { soft = 10, hard = 5 }\nstack = \"lots\"\nas = { soft = \"unlimited\", hard = \"infinity\" }\n";
    assert_eq!(
        errors(text),
        [
            "units/web.toml:3:1: unknown key \"nofiles\" in limits, did you mean \"nofile\"?",
            "units/web.toml:4:10: cannot raise the hard limit of nofile to 2000000 above the current 1048576: tend lacks CAP_SYS_RESOURCE",
            "units/web.toml:5:8: soft limit of core (10) is above its hard limit (5)",
            "units/web.toml:6:9: invalid limit \"lots\" for stack: expected a number or \"infinity\"",
        ]
    );
    // A value of the wrong type makes the whole table wrong.
    assert_eq!(
        errors("command = [\"sh\"]\nlimits = { nofile = 1, cpu = -1 }\n"),
        ["units/web.toml:2:30: limits: expected a number, \"infinity\" or { soft = N, hard = M }"]
    );
}

#[test]
fn a_nul_byte_no_program_can_be_given_is_refused_where_it_is_written() {
    // TOML lets a string hold one (`\u0000`); execve and open cannot.
    assert_eq!(
        errors(
            "command = [\"sh\", \"a\\u0000b\"]\nenv = { X = \"1\\u00002\" }\nworking-dir = \"/srv\\u0000\"\nready = { exec = \"true\\u0000\" }\n"
        ),
        [
            "units/web.toml:1:11: command holds a NUL byte, which no program can be given",
            "units/web.toml:2:13: env X holds a NUL byte, which no program can be given",
            "units/web.toml:3:15: working-dir holds a NUL byte, which no program can be given",
            "units/web.toml:4:18: ready command holds a NUL byte, which no program can be given",
        ]
    );
}

#[test]
fn paths_must_be_absolute() {
    assert_eq!(
        errors("command = [\"sh\"]\nworking-dir = \"srv\"\nstderr = { file = \"err.log\" }\n"),
        [
            "units/web.toml:2:15: working-dir must be an absolute path, got \"srv\"",
            "units/web.toml:3:10: stderr must be an absolute path, got \"err.log\"",
        ]
    );
}

#[test]
fn env_names_and_values() {
    assert_eq!(
        errors("command = [\"sh\"]\nenv = { \"A-B\" = \"1\", C = \"\" }\n"),
        ["units/web.toml:2:9: invalid environment variable name \"A-B\""]
    );
    assert_eq!(
        errors("command = [\"sh\"]\nenv = { C = 1.5 }\n"),
        ["units/web.toml:2:13: env: expected a string, an integer or a boolean"]
    );
}

#[test]
fn never_panics_on_odd_input() {
    for text in [
        "\u{0}",
        "=",
        "[[command]]",
        "command = [[]]",
        "x.y.z = 1",
        "limits = 5",
        "ready = []",
        "\u{feff}command = \"x\"",
        "command = \"é\"\nuser = \"é\"",
    ] {
        let _ = errors(text);
    }
}

#[test]
fn one_syntax_error_per_line() {
    assert_eq!(
        errors("command = [\"sh\"\nuser = 1\n"),
        ["units/web.toml:2:1: missing comma between array elements, expected `,`"]
    );
}

#[test]
fn a_reload_ignores_where_the_program_was_found_and_the_description() {
    use crate::supervisor::Definition;
    let u = unit("command = [\"sleep\", \"10\"]\n");
    let moved = Unit {
        program: PathBuf::from("/usr/local/bin/sleep"),
        description: Some("now described".into()),
        ..u.clone()
    };
    assert!(u.unchanged(&moved));
    let other = Unit {
        argv: vec!["sleep".into(), "11".into()],
        ..u.clone()
    };
    assert!(!u.unchanged(&other));
}

#[test]
fn health_keys_are_checked_with_positions() {
    let text = r#"command = ["sh"]
health = { http = "https://127.0.0.1/" }
health-interval = "1ms"
health-timeout = "soon"
health-retries = 0
on-unhealthy = "reboot"
"#;
    assert_eq!(
        errors(text),
        [
            "units/web.toml:2:19: invalid http url \"https://127.0.0.1/\": expected http://IP:PORT/PATH (no https)",
            "units/web.toml:3:19: health-interval must be at least 100ms",
            "units/web.toml:4:18: invalid duration \"soon\" for health-timeout: expected number at 0",
            "units/web.toml:5:18: health-retries must be at least 1",
            "units/web.toml:6:16: unknown on-unhealthy \"reboot\", expected one of \"restart\", \"none\", \"shutdown\"",
        ]
    );
    let text = "command = [\"sh\"]\nhealth = { tcp = \"127.0.0.1:1\", exec = \"true\" }\nhealth-retries = 2\n";
    assert_eq!(
        errors(text),
        ["units/web.toml:2:10: health needs exactly one of \"tcp\", \"http\" or \"exec\""]
    );
    let text = "command = [\"sh\"]\nhealth-interval = \"1s\"\non-unhealthy = \"none\"\n";
    assert_eq!(
        errors(text),
        [
            "units/web.toml:2:19: \"health-interval\" needs a \"health\" check",
            "units/web.toml:3:16: \"on-unhealthy\" needs a \"health\" check",
        ]
    );
    let text = "command = [\"sh\"]\ntype = \"oneshot\"\nhealth = { tcp = \"127.0.0.1:1\" }\n";
    assert_eq!(
        errors(text),
        ["units/web.toml:3:10: \"health\" applies to long-running services, this one is oneshot"]
    );
    let text = "command = [\"sh\"]\nhealth = { tcp = \"127.0.0.1:1\", htpp = \"x\" }\n";
    assert_eq!(
        errors(text),
        ["units/web.toml:2:33: unknown key \"htpp\" in health, did you mean \"http\"?"]
    );
    let u = unit("command = [\"sh\"]\nhealth = { exec = \"true\" }\n");
    assert_eq!(
        u.service.health.as_deref(),
        Some(&crate::supervisor::HealthPolicy::DEFAULT)
    );
}

#[test]
fn rotated_log_files() {
    use crate::unit::FileLog;
    let u = unit("command = [\"sh\"]\nstdout = { file = \"/var/log/a\", max-size = \"10M\" }\nstderr = { file = \"/var/log/b\", tee = true }\n");
    let a = FileLog {
        path: "/var/log/a".into(),
        max_size: Some(10 << 20),
        max_files: 5,
        tee: false,
    };
    assert_eq!(u.stdout, Stdio::Rotated(a));
    let b = FileLog {
        path: "/var/log/b".into(),
        max_size: None,
        max_files: 5,
        tee: true,
    };
    assert_eq!(u.stderr, Stdio::Rotated(b));
    assert_eq!(u.log_buffer_lines, 1000);
    let text = "command = [\"sh\"]\nstdout = { file = \"/a\", max-size = \"10X\" }\nstderr = { file = \"/b\", max-files = 2 }\nlog-buffer-lines = 2000000\n";
    assert_eq!(
        errors(text),
        [
            "units/web.toml:2:10: invalid size \"10X\" for stdout: expected bytes or a number with K, M or G, like \"10M\"",
            "units/web.toml:3:10: stderr: max-files needs max-size",
            "units/web.toml:4:20: log-buffer-lines must be at most 1000000",
        ]
    );
    let text = "command = [\"sh\"]\nstdout = { file = \"/a\", max-sise = \"1M\" }\n";
    assert_eq!(
        errors(text),
        ["units/web.toml:2:25: unknown key \"max-sise\" in stdout, did you mean \"max-size\"?"]
    );
}

#[test]
fn cgroup_limits() {
    let text = "command = [\"sh\"]\nmemory-max = \"64M\"\nmemory-high = \"1.5G\"\nmemory-swap-max = 0\ncpus = 0.25\ncpu-weight = 200\npids-max = \"infinity\"\nio-weight = 10\n";
    let u = unit(&text.replace("1.5G", "48M").replace("memory-swap-max = 0\n", ""));
    let expected = crate::unit::Resources {
        memory_max: Some(64 << 20),
        memory_high: Some(48 << 20),
        memory_swap_max: None,
        cpu_quota: Some(25_000),
        cpu_weight: Some(200),
        pids_max: Some(crate::unit::resources::MAX),
        io_weight: Some(10),
    };
    assert_eq!(u.resources, expected);
    assert_eq!(
        errors(text),
        [
            "units/web.toml:3:15: memory-high (1536M) is above memory-max (64M)",
            "units/web.toml:4:19: invalid memory-swap-max 0: expected bytes, a size like \"512M\" or \"1.5G\", or \"infinity\"",
        ]
    );
    let bad =
        "command = [\"sh\"]\nmemory-max = \"lots\"\ncpus = 0\npids-max = -1\ncpu-weight = 10001\nio-weight = \"x\"\n";
    assert_eq!(
        errors(bad),
        [
            "units/web.toml:2:14: invalid memory-max \"lots\": expected bytes, a size like \"512M\" or \"1.5G\", or \"infinity\"",
            "units/web.toml:3:8: invalid cpus 0: expected a number of CPUs from 0.01 to 10000",
            "units/web.toml:4:12: invalid pids-max -1: expected a positive number of tasks or \"infinity\"",
            "units/web.toml:5:14: invalid cpu-weight 10001: expected a whole number from 1 to 10000",
            "units/web.toml:6:13: invalid io-weight \"x\": expected a whole number from 1 to 10000",
        ]
    );
    // A typo gets a suggestion, as every key.
    assert_eq!(
        errors("command = [\"sh\"]\nmemory-maxx = \"1G\"\n"),
        ["units/web.toml:2:1: unknown key \"memory-maxx\", did you mean \"memory-max\"?"]
    );
}

#[test]
fn sizes() {
    use crate::unit::schema::Size;
    let t = |s: &str| super::validate::parse_size(&Size::Text(s.into()));
    assert_eq!(t("10M"), Some(10 << 20));
    assert_eq!(t("512K"), Some(512 << 10));
    assert_eq!(t("1GiB"), Some(1 << 30));
    assert_eq!(t("100"), Some(100));
    assert_eq!(t("2MB"), Some(2 << 20));
    for bad in ["", "M", "0", "10X", "-1K", "99999999999999G"] {
        assert_eq!(t(bad), None, "{bad}");
    }
    assert_eq!(super::validate::parse_size(&Size::Bytes(4096)), Some(4096));
}

#[test]
fn cgroup_limits_need_their_controller() {
    use crate::unit::resources::{Controller, Support};
    let mut host = env();
    host.cgroups = Support::Only([Controller::Memory, Controller::Pids].into());
    let text = "command = [\"sh\"]\nmemory-max = \"64M\"\nio-weight = 10\n";
    let file = Path::new("units/web.toml");
    let (_, errors) = check_text("web", file, text, &host, Path::new("units"));
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        ["units/web.toml:3:13: io-weight needs the io cgroup controller, which this host does not offer"]
    );
    // A read-only cgroup is no error: the unit runs without its limits.
    host.cgroups = Support::ReadOnly;
    let (checked, errors) = check_text("web", file, text, &host, Path::new("units"));
    assert!(errors.is_empty() && checked.is_some());
}

#[test]
fn limit_changes_alone_leave_a_unit_unchanged() {
    use crate::supervisor::Definition;
    let a = unit("command = [\"sh\"]\nmemory-max = \"32M\"\n");
    let b = unit("command = [\"sh\"]\nmemory-max = \"64M\"\n");
    let c = unit("command = [\"sh\", \"-x\"]\nmemory-max = \"64M\"\n");
    assert!(a.unchanged(&b));
    assert!(!a.unchanged(&c));
}
