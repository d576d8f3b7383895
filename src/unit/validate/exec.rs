//! `command` and `ready`: argv, its form, and the program found below the
//! root in the unit's `PATH`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::Ctx;
use crate::supervisor::ServiceType;
use crate::unit::error::Problem;
use crate::unit::host::find_in;
use crate::unit::schema::{RawCommand, RawReady};
use crate::unit::{CommandForm, Ready};

/// argv, its form, and the program to exec. A missing command is reported
/// unless `bad` says it was given with the wrong type.
pub fn command(
    cx: &mut Ctx,
    raw: Option<Spanned<RawCommand>>,
    bad: &[String],
    env: &[(String, String)],
    cwd: Option<&Path>,
) -> (Vec<String>, CommandForm, PathBuf) {
    let Some(raw) = raw else {
        if !bad.iter().any(|k| k == "command") {
            cx.err(0..0, Problem::MissingCommand);
        }
        return (Vec::new(), CommandForm::Exec, PathBuf::new());
    };
    let span = raw.span();
    let (argv, form) = argv(raw.into_inner());
    let program = resolve(cx, span, &argv, form, env, cwd, "command");
    (argv, form, program.unwrap_or_default())
}

pub(super) fn argv(raw: RawCommand) -> (Vec<String>, CommandForm) {
    match raw {
        RawCommand::Exec(argv) => (argv, CommandForm::Exec),
        RawCommand::Shell(s) => (vec!["/bin/sh".into(), "-c".into(), s], CommandForm::Shell),
    }
}

/// Checks argv is not empty and finds its program.
pub(super) fn resolve(
    cx: &mut Ctx,
    span: std::ops::Range<usize>,
    argv: &[String],
    form: CommandForm,
    env: &[(String, String)],
    cwd: Option<&Path>,
    key: &'static str,
) -> Option<PathBuf> {
    let empty = match form {
        CommandForm::Exec => !argv.first().is_some_and(|a| !a.is_empty()),
        CommandForm::Shell => !argv.get(2).is_some_and(|s| !s.trim().is_empty()),
    };
    if empty {
        cx.err(span, Problem::Empty { key: key.into() });
        return None;
    }
    if argv.iter().any(|arg| arg.contains('\0')) {
        cx.err(span, Problem::Nul { key: key.into() });
        return None;
    }
    let path = env.iter().find(|(k, _)| k == "PATH").map_or(cx.env.path(), |(_, v)| v);
    let what = match form {
        CommandForm::Exec => key,
        CommandForm::Shell => "shell",
    };
    let argv0 = argv.first().map_or("", String::as_str);
    find_in(cx.env, argv0, path, cwd, what)
        .map_err(|p| cx.err(span, p))
        .ok()
}

/// The ready check of a simple service.
pub fn ready(
    cx: &mut Ctx,
    raw: Option<Spanned<RawReady>>,
    service_type: ServiceType,
    env: &[(String, String)],
    cwd: Option<&Path>,
) -> Option<Ready> {
    let raw = raw?;
    let span = raw.span();
    if let Some(kind) = not_simple(service_type) {
        cx.err(span.clone(), Problem::ReadyNotSimple { service_type: kind });
    }
    match raw.into_inner() {
        RawReady {
            tcp: Some(addr),
            exec: None,
        } => tcp(cx, addr),
        RawReady {
            tcp: None,
            exec: Some(cmd),
        } => {
            let span = cmd.span();
            let (argv, form) = argv(cmd.into_inner());
            let program = resolve(cx, span, &argv, form, env, cwd, "ready command")?;
            Some(Ready::Exec {
                argv: argv.into_iter().map(std::ffi::OsString::from).collect(),
                program,
            })
        }
        _ => {
            cx.err(span, Problem::ReadyOne);
            None
        }
    }
}

fn tcp(cx: &mut Ctx, addr: Spanned<String>) -> Option<Ready> {
    match addr.get_ref().trim().parse::<SocketAddr>() {
        Ok(a) => Some(Ready::Tcp(a)),
        Err(_) => {
            let value = addr.get_ref().clone();
            cx.err(addr.span(), Problem::TcpAddress { value });
            None
        }
    }
}

fn not_simple(t: ServiceType) -> Option<&'static str> {
    match t {
        ServiceType::Simple => None,
        ServiceType::Oneshot => Some("oneshot"),
        ServiceType::Notify => Some("notify"),
    }
}
