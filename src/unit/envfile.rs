//! Env files: `KEY=VALUE` lines, as in `docker --env-file` and systemd's
//! `EnvironmentFile=`. Pure: the loader reads the file, this parses its text.
//!
//! Accepted: blank lines, `#` comment lines, an optional `export ` prefix,
//! and a value in matching single or double quotes (taken literally, no
//! escapes). Unquoted values are trimmed; there are no inline comments.

use super::error::Problem;

/// Environment variables in order, names unique.
pub type Vars = Vec<(String, String)>;

/// The variables in file order (a later duplicate replaces the earlier
/// value in place), and the problems with the 1-based line of each.
pub fn parse_env_file(text: &str) -> (Vars, Vec<(usize, Problem)>) {
    let mut vars = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some((k, v))) => set(&mut vars, k, v),
            Ok(None) => {}
            Err(p) => problems.push((i + 1, p)),
        }
    }
    (vars, problems)
}

/// Sets `key` in an ordered environment: replaced in place if present.
pub fn set(vars: &mut Vec<(String, String)>, key: String, value: String) {
    match vars.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => vars.push((key, value)),
    }
}

/// Whether `name` is a portable environment variable name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_line(line: &str) -> Result<Option<(String, String)>, Problem> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .unwrap_or(line);
    let (key, value) = line.split_once('=').ok_or(Problem::EnvLine)?;
    let key = key.trim();
    if !valid_name(key) {
        return Err(Problem::EnvName { name: key.into() });
    }
    let value = unquote(value.trim())?;
    if value.contains('\0') {
        return Err(Problem::Nul { key: key.into() });
    }
    Ok(Some((key.to_string(), value.to_string())))
}

fn unquote(value: &str) -> Result<&str, Problem> {
    for quote in ['"', '\''] {
        if let Some(rest) = value.strip_prefix(quote) {
            return rest.strip_suffix(quote).ok_or(Problem::EnvQuote);
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        let (vars, problems) = parse_env_file(text);
        assert!(problems.is_empty(), "{problems:?}");
        vars
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn plain_comments_export_quotes() {
        let text =
            "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\"\nD='single'\nE=\nexportF=x\nG=a=b\n";
        assert_eq!(
            vars(text),
            [
                pair("A", "1"),
                pair("B", "two words"),
                pair("C", "quoted # not a comment"),
                pair("D", "single"),
                pair("E", ""),
                pair("exportF", "x"),
                pair("G", "a=b"),
            ]
        );
    }

    #[test]
    fn later_duplicates_replace_in_place() {
        assert_eq!(vars("A=1\nB=2\nA=3\r\n"), [pair("A", "3"), pair("B", "2")]);
    }

    #[test]
    fn problems_name_their_line() {
        let (vars, problems) = parse_env_file("OK=1\nnot a pair\n1X=2\nQ=\"open\nR='mixed\"\nZ=a\0b\n");
        assert_eq!(vars, [pair("OK", "1")]);
        assert_eq!(
            problems,
            [
                (2, Problem::EnvLine),
                (3, Problem::EnvName { name: "1X".into() }),
                (4, Problem::EnvQuote),
                (5, Problem::EnvQuote),
                (6, Problem::Nul { key: "Z".into() }),
            ]
        );
        assert_eq!(problems[1].1.to_string(), "invalid environment variable name \"1X\"");
    }

    #[test]
    fn names() {
        assert!(valid_name("_A1"));
        assert!(!valid_name(""));
        assert!(!valid_name("A-B"));
        assert!(!valid_name("1A"));
    }
}
