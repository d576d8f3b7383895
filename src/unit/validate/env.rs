//! The environment (`env-file`, then `env`) and the user and group of a unit.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Ctx;
use crate::unit::envfile::{parse_env_file, set, valid_name};
use crate::unit::error::{Problem, UnitError};
use crate::unit::host::read_env_file;
use crate::unit::schema::{EnvValue, NameOrNumber};
use crate::unit::suggest::suggest;
use crate::unit::users::{Id, IdError, RunAs};

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
    crate::sorted::sort_by_key(&mut table, |(k, _)| k.span().start);
    for (key, value) in table {
        if !valid_name(key.get_ref()) {
            let name = key.get_ref().clone();
            cx.err(key.span(), Problem::EnvName { name });
        }
        let text = value.get_ref().text();
        if text.contains('\0') {
            let key = format!("env {}", key.get_ref());
            cx.err(value.span(), Problem::Nul { key });
        }
        set(&mut vars, key.into_inner(), text);
    }
    vars
}

fn from_file(cx: &mut Ctx, path: Spanned<String>) -> Vec<(String, String)> {
    let (host, text) = match read_env_file(cx.env, cx.unit_dir, path.get_ref()) {
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

/// Who to run as, through the environment's user database. A user's
/// primary group is the default group.
pub fn run_as(cx: &mut Ctx, user: Option<Spanned<NameOrNumber>>, group: Option<Spanned<NameOrNumber>>) -> RunAs {
    let host = cx.env;
    let db = host.users();
    let account = user.and_then(|u| {
        let found = db.user(id(u.get_ref()));
        let names = db.users.iter().map(|u| u.name.as_str());
        found.map_err(|e| cx.err(u.span(), problem(e, names))).ok()
    });
    let gid = group.and_then(|g| {
        let found = db.group(id(g.get_ref()));
        let names = db.groups.iter().map(|g| g.name.as_str());
        found.map_err(|e| cx.err(g.span(), problem(e, names))).ok()
    });
    db.run_as(account.as_ref(), gid)
}

fn id(value: &NameOrNumber) -> Id<'_> {
    match value {
        NameOrNumber::Name(name) => Id::Name(name),
        NameOrNumber::Number(n) => Id::Number(*n),
    }
}

/// The resolver's error as a unit problem, with a did-you-mean.
fn problem<'a>(error: IdError, names: impl Iterator<Item = &'a str>) -> Problem {
    match error {
        IdError::Unknown { kind, name } => {
            let hint = suggest(&name, names);
            Problem::UnknownId { kind, name, hint }
        }
        IdError::Range { kind, value } => Problem::IdRange { kind, value },
    }
}
