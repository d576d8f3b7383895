//! packaging/kubernetes/*.yaml are valid against the Kubernetes API schema
//! (`kubernetes-validate --strict`, from PyPI, installed once into a
//! virtualenv under cargo's target directory), and say what the README
//! promises: probes through `tend ctl`, a grace period above tend's shutdown
//! timeout, a non-root user.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The validator's version: the schemas it ships are those of Kubernetes 1.37.
const VALIDATE: &str = "kubernetes-validate==1.37.0";

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// `kubernetes-validate` from a virtualenv kept in the target directory.
fn validator() -> PathBuf {
    // The tests run in parallel: one installs, the others wait.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubernetes-validate");
    let bin = venv.join("bin/kubernetes-validate");
    if !bin.exists() {
        let status = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "python3 -m venv failed (apt-get install python3-venv)"
        );
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", VALIDATE])
            .status()
            .unwrap();
        assert!(status.success(), "pip install {VALIDATE} failed");
    }
    bin
}

#[test]
fn manifests_are_valid_against_the_kubernetes_schema() {
    let files = manifests();
    assert_eq!(files.len(), 3, "{files:?}");
    let out = Command::new(validator()).arg("--strict").args(&files).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(" passed ").count(), 3, "{text}");
}

#[test]
fn the_validator_rejects_an_unknown_field() {
    // Shows the check above would catch a typo.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kube-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pod = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/kubernetes/pod.yaml"))
        .unwrap()
        .replace("terminationGracePeriodSeconds:", "terminationGracePeriodSecond:");
    let bad = dir.join("pod.yaml");
    std::fs::write(&bad, pod).unwrap();
    let out = Command::new(validator()).arg("--strict").arg(&bad).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
}

/// The pod's numbers that matter: grace period above --shutdown-timeout,
/// probes through tend ctl, non-root.
#[test]
fn the_pod_keeps_the_kubelet_contract() {
    for file in manifests().iter().filter(|f| !f.ends_with("configmap.yaml")) {
        let text = std::fs::read_to_string(file).unwrap();
        let grace: u64 = value(&text, "terminationGracePeriodSeconds:").parse().unwrap();
        let shutdown: u64 = value(&text, "- --shutdown-timeout=")
            .trim_end_matches('s')
            .parse()
            .unwrap();
        assert!(
            grace > shutdown,
            "{}: grace {grace} <= shutdown {shutdown}",
            file.display()
        );
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert!(text.contains(probe), "{} lacks {probe}", file.display());
        }
        assert!(
            text.contains("\"health\"]") && text.contains("\"wait\""),
            "{}",
            file.display()
        );
        assert_eq!(value(&text, "runAsUser:"), "1000");
        assert!(text.contains("name: TEND_SOCKET"), "{}", file.display());
    }
}

/// What follows `key` on its line.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key}"))
}
