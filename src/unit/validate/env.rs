//! The environment (`env-file`, then `env`) and the user and group of a unit.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Ctx;
use crate::unit::envfile::{parse_env_file, set, valid_name};
use crate::unit::error::{Problem, UnitError};
use crate::unit::host::read_env_file;
use crate::unit::schema::{EnvValue, NameOrNumber};
use crate::unit::suggest::suggest;

/// The unit's variables: the env file's in file order, then `env`'s in the
/// order written, a later one replacing an earlier one of the same name.
pub fn environment(
    cx: &mut Ctx,
    env_file: Option<Spanned<String>>,
    env: Option<BTreeMap<Spanned<String>, Spanned<EnvValue>>>,
) -> Vec<(String, String)> {
    let mut vars = env_file.map(|f| from_file(cx, f)).unwrap_or_default();
    let mut table: Vec<_> = env.into_iter().flatten().collect();
    // The table comes sorted by name; its spans give back the written order.
    table.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in table {
        if !valid_name(key.get_ref()) {
            let name = key.get_ref().clone();
            cx.err(key.span(), Problem::EnvName { name });
        }
        set(&mut vars, key.into_inner(), value.get_ref().text());
    }
    vars
}

fn from_file(cx: &mut Ctx, path: Spanned<String>) -> Vec<(String, String)> {
    let (host, text) = match read_env_file(&cx.env.root, cx.unit_dir, path.get_ref()) {
        Ok(found) => found,
        Err(problem) => {
            cx.err(path.span(), problem);
            return Vec::new();
        }
    };
    let (vars, problems) = parse_env_file(&text);
    for (line, problem) in problems {
        let at = Some(crate::unit::Position { line, column: 1 });
        cx.errors.push(UnitError {
            file: host.clone(),
            at,
            problem,
        });
    }
    vars
}

/// The uid and gid to run as. A user's primary group is the default group.
pub fn ids(
    cx: &mut Ctx,
    user: Option<Spanned<NameOrNumber>>,
    group: Option<Spanned<NameOrNumber>>,
) -> (Option<u32>, Option<u32>) {
    let user = user.and_then(|u| find_user(cx, u));
    let gid = group.and_then(|g| find_group(cx, g));
    (user.map(|(uid, _)| uid), gid.or(user.and_then(|(_, gid)| gid)))
}

/// The uid, and the primary gid when the user has a passwd entry.
fn find_user(cx: &mut Ctx, user: Spanned<NameOrNumber>) -> Option<(u32, Option<u32>)> {
    let users = &cx.env.users;
    let found = match user.get_ref() {
        NameOrNumber::Name(name) => match users.iter().find(|u| u.name == *name) {
            Some(u) => Ok((u.uid, Some(u.gid))),
            None => numeric(name, "user"),
        },
        NameOrNumber::Number(n) => id(*n, "user"),
    };
    let found = found.map(|(uid, gid)| {
        let entry = users.iter().find(|u| u.uid == uid);
        (uid, gid.or(entry.map(|u| u.gid)))
    });
    found
        .map_err(|p| with_hint(p, users.iter().map(|u| u.name.as_str())))
        .map_err(|p| cx.err(user.span(), p))
        .ok()
}

fn find_group(cx: &mut Ctx, group: Spanned<NameOrNumber>) -> Option<u32> {
    let groups = &cx.env.groups;
    let found = match group.get_ref() {
        NameOrNumber::Name(name) => match groups.iter().find(|g| g.name == *name) {
            Some(g) => Ok(g.gid),
            None => numeric(name, "group").map(|(gid, _)| gid),
        },
        NameOrNumber::Number(n) => id(*n, "group").map(|(gid, _)| gid),
    };
    found
        .map_err(|p| with_hint(p, groups.iter().map(|g| g.name.as_str())))
        .map_err(|p| cx.err(group.span(), p))
        .ok()
}

/// A name that is all digits is an id (`user = "1000"`), else it is unknown.
fn numeric(name: &str, kind: &'static str) -> Result<(u32, Option<u32>), Problem> {
    match name.parse::<u64>() {
        Ok(n) => id(n, kind),
        Err(_) => Err(Problem::UnknownId {
            kind,
            name: name.into(),
            hint: None,
        }),
    }
}

fn id(n: u64, kind: &'static str) -> Result<(u32, Option<u32>), Problem> {
    // (uid_t)-1 means "unchanged" to setuid and friends: not an id.
    match u32::try_from(n) {
        Ok(id) if id != u32::MAX => Ok((id, None)),
        _ => Err(Problem::IdRange { kind, value: n }),
    }
}

fn with_hint<'a>(problem: Problem, names: impl Iterator<Item = &'a str>) -> Problem {
    match problem {
        Problem::UnknownId { kind, name, .. } => {
            let hint = suggest(&name, names);
            Problem::UnknownId { kind, name, hint }
        }
        other => other,
    }
}
