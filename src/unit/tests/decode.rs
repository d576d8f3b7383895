//! The unit file's values as serde's derived code read them before
//! `decode` replaced it (found by comparing both on some 23,000 texts):
//! the same messages at the same positions, and the same odd forms taken.

use std::path::Path;

use crate::unit::parse::{parse, Source};

/// The one error of `text`, or the Debug form of what it gave.
fn decoded(text: &str) -> String {
    let src = Source {
        file: Path::new("u.toml"),
        text,
    };
    let (raw, errors, _) = parse(&src);
    match errors.as_slice() {
        [] => format!("{raw:?}"),
        _ => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "),
    }
}

#[test]
fn type_errors_read_as_serde_wrote_them() {
    let any = "expected an array of strings (exec form) or a string (shell form)";
    let stdio = "expected \"log\", \"inherit\", \"null\" or { file = \"/path\", max-size = \"10M\", max-files = 5, tee = true }";
    let cases = [
        (
            "start-limit-burst = -1",
            "1:21: start-limit-burst: invalid value: integer `-1`, expected u32",
        ),
        (
            "start-limit-burst = 4294967296",
            "1:21: start-limit-burst: invalid value: integer `4294967296`, expected u32",
        ),
        (
            "health-retries = 1.0",
            "1:18: health-retries: invalid type: floating point `1.0`, expected u32",
        ),
        (
            "log-buffer-lines = nan",
            "1:20: log-buffer-lines: invalid type: floating point `NaN`, expected u32",
        ),
        (
            "description = 99999999999999999999",
            "1:15: description: invalid type: integer `99999999999999999999` as i128, expected a string",
        ),
        (
            "description = 340282366920938463463374607431768211456",
            "1:15: description: integer number overflowed",
        ),
        ("restart = 1e999", "1:11: restart: floating-point number overflowed"),
        ("main = 1979-05-27", "1:8: main: invalid type: map, expected a boolean"),
        (
            "after = \"web\"",
            "1:9: after: invalid type: string \"web\", expected a sequence",
        ),
        (
            "requires = [\"a\", [\"b\"]]",
            "1:18: requires: invalid type: sequence, expected a string",
        ),
        ("env = [1]", "1:7: env: invalid type: sequence, expected a map"),
        (
            "env = 1979-05-27",
            "1:7: env: invalid type: string \"$__toml_private_datetime\", expected a spanned value",
        ),
        (
            "env = { A = 1.5 }",
            "1:13: env: expected a string, an integer or a boolean",
        ),
        (
            "limits = { nofile = -1 }",
            "1:21: limits: expected a number, \"infinity\" or { soft = N, hard = M }",
        ),
        (
            "limits = { core = { soft = 1 } }",
            "1:19: limits: expected a number, \"infinity\" or { soft = N, hard = M }",
        ),
        (
            "ready = 1979-05-27",
            "1:9: ready: unknown field `$__toml_private_datetime`, expected `tcp` or `exec`",
        ),
        (
            "ready = [\"127.0.0.1:80\"]",
            "1:9: ready: invalid length 1, expected struct RawReady with 2 elements",
        ),
        ("ready = [\"127.0.0.1:80\", 5]", &format!("1:26: ready: {any}")),
        (
            "ready = { tcp = 1 }",
            "1:17: ready: invalid type: integer `1`, expected a string",
        ),
        (
            "health = \"x\"",
            "1:10: health: invalid type: string \"x\", expected struct RawHealth",
        ),
        ("health = { exec = [1] }", &format!("1:19: health: {any}")),
        ("user = -1", "1:8: user: expected a name or a number"),
        ("stop-signal = 1.5", "1:15: stop-signal: expected a name or a number"),
        (
            "command = [\"a\", 99999999999999999999]",
            "1:17: command: invalid type: integer `99999999999999999999` as i128, expected any value",
        ),
        (
            "command = [\"a\", 1e999]",
            "1:17: command: floating-point number overflowed",
        ),
        (
            "stdout = { file = \"/x\", max-files = 4294967296 }",
            &format!("1:10: stdout: {stdio}"),
        ),
        ("stdout = [\"/x\", \"1M\", 2]", &format!("1:10: stdout: {stdio}")),
        ("memory-max = true", "1:14: memory-max: expected a number or a string"),
    ];
    for (text, want) in cases {
        assert_eq!(decoded(text), format!("u.toml:{want}"), "{text}");
    }
}

#[test]
fn odd_forms_serde_took_are_taken() {
    // A struct from an array of its fields in order; a number past i64 as a float.
    let limits = decoded("limits = { nofile = [1, \"infinity\"] }");
    assert!(
        limits.contains("Pair(SoftHard { soft: Number(1), hard: Word(\"infinity\") })"),
        "{limits}"
    );
    let ready = decoded("ready = [\"127.0.0.1:80\", [\"true\"], 3]");
    assert!(ready.contains("tcp: Some(Spanned { span: 9..23, value: \"127.0.0.1:80\" }), exec: Some(Spanned { span: 25..33, value: Exec([\"true\"]) })"), "{ready}");
    let cpus = decoded("cpus = 18446744073709551615");
    assert!(
        cpus.contains("cpus: Some(Spanned { span: 7..27, value: Float(1.8446744073709552e19) })"),
        "{cpus}"
    );
    let stdout = decoded("stdout = [\"/x\", \"1M\", 2, true]");
    assert!(
        stdout.contains(
            "File(StdioFile { file: \"/x\", max_size: Some(Text(\"1M\")), max_files: Some(2), tee: Some(true) })"
        ),
        "{stdout}"
    );
}
