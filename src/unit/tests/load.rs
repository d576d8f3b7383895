//! Loading directories: checks across units, the report, the examples.

use std::fs;
use std::path::{Path, PathBuf};

use super::env;
use crate::unit::*;

/// A fresh directory with these files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("tend-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            fs::write(dir.join(file), text).unwrap();
        }
        Dir(dir)
    }

    /// The test environment, with the texts of this directory's files.
    fn env(&self) -> Fixture {
        with_texts(env(), &self.0)
    }

    /// The report with the directory replaced by `units`.
    fn check(&self) -> (String, bool) {
        let (report, ok) = check(&self.0, &self.env());
        (report.replace(&self.0.display().to_string(), "units"), ok)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `env` with the texts of the files in `dir` (the unit files' env files).
fn with_texts(mut env: Fixture, dir: &Path) -> Fixture {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if let Ok(text) = fs::read_to_string(&path) {
            env.texts.insert(path, text);
        }
    }
    env
}

const SH: &str = "command = [\"sh\"]\n";

#[test]
fn dependencies_across_units() {
    let dir = Dir::new(
        "deps",
        &[
            ("a.toml", "command = [\"sh\"]\nafter = [\"b\"]\n"),
            ("b.toml", "command = [\"sh\"]\nrequires = [\"a\"]\n"),
            (
                "web.toml",
                "command = [\"sh\"]\nafter = [\"bd\"]\nrequires = [\"broken\"]\n",
            ),
            ("broken.toml", "command = 1\n"),
            ("uses-web.toml", "command = [\"sh\"]\nrequires = [\"web\"]\n"),
            ("orders.toml", "command = [\"sh\"]\nafter = [\"broken\", \"ok\"]\n"),
            ("ok.toml", SH),
            ("self.toml", "command = [\"sh\"]\nafter = [\"self\"]\n"),
        ],
    );
    let (report, ok) = dir.check();
    assert!(!ok);
    assert_eq!(
        report,
        "units/a.toml:2:10: dependency cycle: a -> b -> a\n\
         units/b.toml:2:13: dependency cycle: b -> a -> b\n\
         units/broken.toml:1:11: command: expected an array of strings (exec form) or a string (shell form)\n\
         units/self.toml:2:10: dependency cycle: self -> self\n\
         units/uses-web.toml:2:13: requires \"web\", which is invalid\n\
         units/web.toml:2:10: after names unknown unit \"bd\", did you mean \"b\"?\n\
         units/web.toml:3:13: requires \"broken\", which is invalid\n\
         2 units valid, 6 invalid\n"
    );
    let loaded = load_dir(&dir.0, &dir.env());
    assert_eq!(loaded.units.keys().collect::<Vec<_>>(), ["ok", "orders"]);
    assert_eq!(loaded.invalid["web"].len(), 2);
}

#[test]
fn one_main_only() {
    let main = "command = [\"sh\"]\nmain = true\n";
    let dir = Dir::new("mains", &[("a.toml", main), ("b.toml", main), ("c.toml", SH)]);
    let (report, _) = dir.check();
    assert_eq!(
        report,
        "units/a.toml:2:8: main = true on more than one unit: a, b\n\
         units/b.toml:2:8: main = true on more than one unit: a, b\n\
         1 unit valid, 2 invalid\n"
    );
}

#[test]
fn names_hidden_and_other_files() {
    let dir = Dir::new(
        "names",
        &[
            ("my web.toml", SH),
            (".hidden.toml", "garbage"),
            ("README.md", "garbage"),
            ("web@1.toml", SH),
            ("web.env", "garbage"),
        ],
    );
    let (report, ok) = dir.check();
    assert!(!ok);
    assert_eq!(
        report,
        "units/my web.toml: invalid unit name \"my web\": use letters, digits and _ . @ - (not starting with .)\n\
         1 unit valid, 1 invalid\n"
    );
}

#[test]
fn missing_directory() {
    let (report, ok) = check(Path::new("/nonexistent/units"), &env());
    assert!(!ok);
    assert!(
        report.starts_with("/nonexistent/units: cannot read unit directory: "),
        "{report}"
    );
    assert!(report.ends_with("0 units valid, 0 invalid\n"));
}

#[test]
fn env_files_are_read_relative_to_the_units() {
    let dir = Dir::new(
        "envfile",
        &[
            (
                "web.toml",
                "command = [\"sh\"]\nenv-file = \"web.env\"\nenv = { B = \"toml\" }\n",
            ),
            ("web.env", "# comment\nexport A=1\nB=file\nC='x y'\n"),
            ("bad.toml", "command = [\"sh\"]\nenv-file = \"bad.env\"\n"),
            ("bad.env", "A=1\nnonsense\n"),
            ("gone.toml", "command = [\"sh\"]\nenv-file = \"/nonexistent.env\"\n"),
        ],
    );
    let loaded = load_dir(&dir.0, &dir.env());
    let env: Vec<_> = loaded.units["web"]
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(env, ["A=1", "B=toml", "C=x y"]);
    let (report, _) = dir.check();
    assert_eq!(
        report,
        "units/bad.env:2:1: expected KEY=VALUE\n\
         units/gone.toml:2:12: cannot read env-file \"/nonexistent.env\": No such file or directory\n\
         1 unit valid, 2 invalid\n"
    );
}

/// The real host reads an env file up to 1 MiB, without blocking: a unit
/// naming a huge file (or `/dev/zero`) made PID 1 read it all into memory at
/// every load, and a FIFO without a writer stalled loading.
#[test]
fn env_files_are_read_up_to_a_bound() {
    let big = "A=1\n".repeat(300_000);
    let dir = Dir::new("envfile-big", &[("big.env", &big)]);
    nix::unistd::mkfifo(&dir.0.join("fifo.env"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let host = CheckEnv::for_root(Path::new("/"));
    let too_large = |path: &Path| host.read(path).unwrap_err().to_string();
    assert_eq!(too_large(&dir.0.join("big.env")), "larger than 1 MiB");
    assert_eq!(too_large(Path::new("/dev/zero")), "larger than 1 MiB");
    assert_eq!(host.read(&dir.0.join("fifo.env")).unwrap(), "");
}

/// Every example in `units/` is valid, against a root where the programs
/// they name exist and a passwd with the users they use.
#[test]
fn examples_are_valid() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    let mut env = with_texts(env().with_programs(EXAMPLE_PROGRAMS), &units);
    let paris = "TZif2 table\n\nCET-1CEST,M3.5.0,M10.5.0/3\n".to_string();
    env.texts.insert("/usr/share/zoneinfo/Europe/Paris".into(), paris);
    let loaded = load_dir(&units, &env);
    let errors: Vec<String> = loaded.all_errors().iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        loaded.units.len() >= 6 && loaded.invalid.is_empty(),
        "{:?}",
        loaded.units.keys()
    );
}

/// The programs the examples run, created in the test root.
const EXAMPLE_PROGRAMS: &[&str] = &[
    "/bin/sh",
    "/usr/bin/curl",
    "/usr/sbin/nginx",
    "/usr/bin/redis-server",
    "/usr/local/bin/app",
    "/usr/local/bin/worker",
    "/usr/sbin/crond",
    "/usr/local/bin/payments-api",
];

/// `units/README.md` documents every key of the schema.
#[test]
fn readme_documents_every_key() {
    let readme = include_str!("../../../units/README.md");
    for (key, _) in crate::unit::schema::UNIT_KEYS.0 {
        assert!(readme.contains(&format!("`{key}`")), "{key} is not documented");
    }
    for resource in Resource::ALL {
        assert!(readme.contains(&format!("`{}`", resource.name())), "{resource:?}");
    }
}
