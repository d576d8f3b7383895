//! The meaning of a [`RawUnit`]: defaults, choices, durations, signals,
//! users, limits and paths checked, every problem gathered. What it needs of
//! the environment (programs, env files, users, limits) it asks a
//! [`Host`]; all else is pure.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::error::{Position, Problem, UnitError};
use super::host::Host;
use super::limits::{self, Limit, Resource};
use super::parse::Source;
use super::schema::{LimitValue, NameOrNumber, RawLimit, RawStdio, RawUnit, Size};
use super::suggest::{position, suggest};
use super::{FileLog, Stdio, Unit};
use crate::supervisor::{RestartPolicy, ServiceConfig, ServiceType};

mod env;
mod exec;
mod health;
mod resources;
mod supervision;

/// A dependency as written, located for messages on the dependent.
#[derive(Debug, Clone)]
pub struct Dep {
    pub name: String,
    /// `after` or `requires`.
    pub kind: &'static str,
    pub at: Position,
}

/// A unit as validated, with what the cross-unit checks need.
#[derive(Debug, Clone)]
pub struct Checked {
    pub unit: Unit,
    pub file: PathBuf,
    pub deps: Vec<Dep>,
    pub main_at: Option<Position>,
}

const TYPE_NAMES: &[&str] = &["simple", "oneshot", "notify"];
const TYPES: &[ServiceType] = &[ServiceType::Simple, ServiceType::Oneshot, ServiceType::Notify];
const RESTART_NAMES: &[&str] = &["no", "on-failure", "always"];
const RESTARTS: &[RestartPolicy] = &[RestartPolicy::No, RestartPolicy::OnFailure, RestartPolicy::Always];
const STDIO_NAMES: &[&str] = &["log", "inherit", "null"];
/// How long a notify service or a ready check may take by default (systemd's).
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The longest duration tend accepts anywhere (command line, unit files,
/// control socket): 100 years. Longer ones are refused with an error, so
/// that no deadline (`now + duration`) can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// Parses a duration (`90s`, `1m 30s`, `500ms`) of at most [`MAX_DURATION`];
/// the error says why, without naming the option or key (the caller does).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| e.to_string())?;
    if duration > MAX_DURATION {
        return Err(format!(
            "longer than {}, the longest duration tend accepts",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(duration)
}

/// [`parse_duration`] for a command-line value: the error quotes the text
/// (clap names the option).
pub fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| format!("bad duration {text:?}: {e}"))
}

/// Collects problems while the unit is built.
pub struct Ctx<'a> {
    pub src: &'a Source<'a>,
    pub env: &'a dyn Host,
    pub unit_dir: &'a Path,
    pub errors: Vec<UnitError>,
}

impl Ctx<'_> {
    pub fn err(&mut self, span: Range<usize>, problem: Problem) {
        self.errors.push(self.src.error(span, problem));
    }

    fn duration(&mut self, key: &str, value: Option<Spanned<String>>, default: Duration) -> Duration {
        let Some(v) = value else { return default };
        parse_duration(v.get_ref()).unwrap_or_else(|reason| {
            let value = v.get_ref().clone();
            self.err(
                v.span(),
                Problem::Duration {
                    key: key.into(),
                    value,
                    reason,
                },
            );
            default
        })
    }

    fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<Spanned<String>>,
        names: &'static [&'static str],
        values: &[T],
        default: T,
    ) -> T {
        let Some(v) = value else { return default };
        match names.iter().position(|n| n == v.get_ref()) {
            Some(i) => values.get(i).copied().unwrap_or(default),
            None => {
                let hint = suggest(v.get_ref(), names.iter().copied());
                let (key, value) = (key.to_string(), v.get_ref().clone());
                let problem = Problem::UnknownChoice {
                    key,
                    value,
                    expected: names,
                    hint,
                };
                self.err(v.span(), problem);
                default
            }
        }
    }
}

/// Builds the unit named `name` from its raw form. `bad` lists keys already
/// reported as wrong, so that they are not also reported missing.
pub fn validate(name: &str, mut raw: RawUnit, bad: &[String], cx: &mut Ctx) -> Checked {
    let health_keys = health::RawKeys::take(&mut raw);
    let cgroup_limits = resources::Raw::take(&mut raw);
    // The supervisor's defaults are the unit's defaults.
    let d = ServiceConfig::default();
    let service_type = cx.choice("type", raw.service_type, TYPE_NAMES, TYPES, d.service_type);
    let working_dir = absolute(cx, "working-dir", raw.working_dir);
    let env = env::environment(cx, raw.env_file, raw.env);
    let has_ready = raw.ready.is_some();
    let (argv, form, program) = exec::command(cx, raw.command, bad, &env, working_dir.as_deref());
    let ready = exec::ready(cx, raw.ready, service_type, &env, working_dir.as_deref());
    let ready_timeout = ready_timeout(cx, raw.ready_timeout, service_type, has_ready);
    let (health, health_policy) = health::health(cx, health_keys, service_type, &env, working_dir.as_deref());
    let run_as = env::run_as(cx, raw.user, raw.group);
    let restart_delay = cx.duration("restart-delay", raw.restart_delay.clone(), d.restart_delay);
    let restart_delay_max = cx.duration("restart-delay-max", raw.restart_delay_max, d.restart_delay_max);
    if restart_delay > restart_delay_max {
        delay_above_max(cx, raw.restart_delay, restart_delay, restart_delay_max);
    }
    let mut deps = dependencies(cx, &raw.after, "after");
    deps.extend(dependencies(cx, &raw.requires, "requires"));
    let service = ServiceConfig {
        service_type,
        has_ready_check: ready.is_some(),
        ready_timeout,
        restart: cx.choice("restart", raw.restart, RESTART_NAMES, RESTARTS, d.restart),
        restart_delay,
        restart_delay_max,
        start_limit_burst: burst(cx, raw.start_limit_burst, d.start_limit_burst),
        start_limit_interval: cx.duration("start-limit-interval", raw.start_limit_interval, d.start_limit_interval),
        after: names(&raw.after),
        requires: names(&raw.requires),
        stop_signal: signal(cx, raw.stop_signal, d.stop_signal),
        stop_timeout: cx.duration("stop-timeout", raw.stop_timeout, d.stop_timeout),
        main: raw.main.as_ref().map_or(d.main, |m| *m.get_ref()),
        enabled: raw.enabled.map_or(d.enabled, Spanned::into_inner),
        on_failure: supervision::on_failure(cx, raw.on_failure),
        watchdog: supervision::watchdog(cx, raw.watchdog, service_type, raw.watchdog_signal.as_ref()),
        watchdog_signal: signal(cx, raw.watchdog_signal, d.watchdog_signal),
        schedule: supervision::schedule(cx, raw.schedule, raw.schedule_timezone, service_type).map(Box::new),
        health: health_policy.map(Box::new),
    };
    let unit = Unit {
        name: name.to_string(),
        description: raw.description.map(Spanned::into_inner),
        argv: argv.into_iter().map(OsString::from).collect(),
        form,
        program,
        ready: ready.map(Box::new),
        health: health.map(Box::new),
        run_as,
        working_dir,
        env,
        limits: limits(cx, raw.limits),
        resources: resources::resources(cx, cgroup_limits),
        stdout: stdio(cx, "stdout", raw.stdout),
        stderr: stdio(cx, "stderr", raw.stderr),
        log_buffer_lines: buffer_lines(cx, raw.log_buffer_lines),
        service,
    };
    Checked {
        unit,
        file: cx.src.file.to_path_buf(),
        deps,
        main_at: raw
            .main
            .filter(|m| *m.get_ref())
            .map(|m| position(cx.src.text, m.span().start)),
    }
}

/// How a type is written, for messages.
pub(super) fn type_name(t: ServiceType) -> &'static str {
    let i = TYPES.iter().position(|x| *x == t).unwrap_or(0);
    TYPE_NAMES.get(i).copied().unwrap_or("simple")
}

fn ready_timeout(cx: &mut Ctx, value: Option<Spanned<String>>, t: ServiceType, has_ready: bool) -> Option<Duration> {
    let span = value.as_ref().map(Spanned::span);
    let given = value.is_some();
    let timeout = cx.duration("ready-timeout", value, DEFAULT_READY_TIMEOUT);
    match (t, has_ready, span) {
        (ServiceType::Simple, false, Some(span)) => {
            cx.err(span, Problem::ReadyTimeoutAlone);
            None
        }
        (ServiceType::Simple, false, None) => None,
        (ServiceType::Oneshot, _, _) => given.then_some(timeout),
        _ => Some(timeout),
    }
}

fn delay_above_max(cx: &mut Ctx, at: Option<Spanned<String>>, delay: Duration, max: Duration) {
    let span = at.map_or(0..0, |s| s.span());
    let show = |d| humantime::format_duration(d).to_string();
    cx.err(
        span,
        Problem::DelayAboveMax {
            delay: show(delay),
            max: show(max),
        },
    );
}

fn burst(cx: &mut Ctx, value: Option<Spanned<u32>>, default: u32) -> u32 {
    match value {
        Some(v) if *v.get_ref() == 0 => {
            cx.err(v.span(), Problem::BurstZero);
            1
        }
        Some(v) => v.into_inner(),
        None => default,
    }
}

fn names(deps: &Option<Vec<Spanned<String>>>) -> Vec<String> {
    deps.iter().flatten().map(|d| d.get_ref().clone()).collect()
}

fn dependencies(cx: &Ctx, deps: &Option<Vec<Spanned<String>>>, kind: &'static str) -> Vec<Dep> {
    let dep = |d: &Spanned<String>| Dep {
        name: d.get_ref().clone(),
        kind,
        at: position(cx.src.text, d.span().start),
    };
    deps.iter().flatten().map(dep).collect()
}

fn signal(cx: &mut Ctx, value: Option<Spanned<NameOrNumber>>, default: i32) -> i32 {
    let Some(v) = value else { return default };
    let text = match v.get_ref() {
        NameOrNumber::Number(n) => n.to_string(),
        NameOrNumber::Name(s) => s.clone(),
    };
    crate::signal::parse(&text).unwrap_or_else(|| {
        cx.err(v.span(), Problem::Signal { value: text });
        default
    })
}

/// An optional path that must be absolute.
pub fn absolute(cx: &mut Ctx, key: &str, value: Option<Spanned<String>>) -> Option<PathBuf> {
    let v = value?;
    if !v.get_ref().starts_with('/') {
        let path = v.get_ref().clone();
        cx.err(v.span(), Problem::NotAbsolute { key: key.into(), path });
    } else if v.get_ref().contains('\0') {
        cx.err(v.span(), Problem::Nul { key: key.into() });
    }
    Some(PathBuf::from(v.into_inner()))
}

fn stdio(cx: &mut Ctx, key: &str, value: Option<Spanned<RawStdio>>) -> Stdio {
    let Some(v) = value else { return Stdio::Log };
    let span = v.span();
    match v.into_inner() {
        RawStdio::File(f) => {
            let path = absolute(cx, key, Some(Spanned::new(span.clone(), f.file)));
            let path = path.unwrap_or_default();
            if f.max_size.is_none() && f.max_files.is_none() && f.tee.is_none() {
                return Stdio::File(path);
            }
            let max_size = f.max_size.and_then(|size| {
                parse_size(&size).or_else(|| {
                    let value = match size {
                        Size::Bytes(n) => n.to_string(),
                        Size::Text(t) => t,
                    };
                    cx.err(span.clone(), Problem::Size { key: key.into(), value });
                    None
                })
            });
            if f.max_files.is_some() && max_size.is_none() {
                cx.err(span.clone(), Problem::MaxFilesAlone { key: key.into() });
            }
            let max_files = f.max_files.unwrap_or(DEFAULT_MAX_FILES);
            if max_files > MAX_FILES {
                cx.err(
                    span,
                    Problem::TooLarge {
                        key: "max-files",
                        max: "1000",
                    },
                );
            }
            let tee = f.tee.unwrap_or(false);
            Stdio::Rotated(FileLog {
                path,
                max_size,
                max_files,
                tee,
            })
        }
        RawStdio::Word(w) => {
            let word = Some(Spanned::new(span, w));
            let values = [Stdio::Log, Stdio::Inherit, Stdio::Null];
            let i = cx.choice(key, word, STDIO_NAMES, &[0, 1, 2], 0);
            values.into_iter().nth(i).unwrap_or(Stdio::Log)
        }
    }
}

/// Rotated files kept when `max-size` is given without `max-files`.
const DEFAULT_MAX_FILES: u32 = 5;
const MAX_FILES: u32 = 1000;

/// `1048576`, `"512K"`, `"10M"`, `"1G"` (powers of 1024; an optional
/// trailing `B` or `iB`); at least one byte.
pub fn parse_size(size: &Size) -> Option<u64> {
    let text = match size {
        Size::Bytes(n) => return (*n > 0).then_some(*n),
        Size::Text(t) => t.trim(),
    };
    let text = text
        .strip_suffix("iB")
        .or_else(|| text.strip_suffix('B'))
        .unwrap_or(text);
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let factor: u64 = match unit.trim() {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return None,
    };
    let bytes = digits.parse::<u64>().ok()?.checked_mul(factor)?;
    (bytes > 0).then_some(bytes)
}

/// `log-buffer-lines`: at most a million lines.
fn buffer_lines(cx: &mut Ctx, value: Option<Spanned<u32>>) -> usize {
    match value {
        Some(v) if *v.get_ref() > 1_000_000 => {
            cx.err(
                v.span(),
                Problem::TooLarge {
                    key: "log-buffer-lines",
                    max: "1000000",
                },
            );
            super::DEFAULT_LOG_BUFFER_LINES
        }
        Some(v) => v.into_inner() as usize,
        None => super::DEFAULT_LOG_BUFFER_LINES,
    }
}

fn limits(cx: &mut Ctx, value: Option<BTreeMap<Spanned<String>, Spanned<RawLimit>>>) -> BTreeMap<Resource, Limit> {
    let mut out = BTreeMap::new();
    for (key, value) in value.into_iter().flatten() {
        let Some(resource) = Resource::parse(key.get_ref()) else {
            let hint = suggest(key.get_ref(), Resource::ALL.map(Resource::name));
            let (key_name, table) = (key.get_ref().clone(), Some("limits".to_string()));
            cx.err(
                key.span(),
                Problem::UnknownKey {
                    key: key_name,
                    table,
                    hint,
                },
            );
            continue;
        };
        if let Some(limit) = limit(cx, resource, value) {
            out.insert(resource, limit);
        }
    }
    out
}

fn limit(cx: &mut Ctx, resource: Resource, value: Spanned<RawLimit>) -> Option<Limit> {
    let span = value.span();
    let mut number = |v: &LimitValue| match v {
        LimitValue::Number(n) => Some(*n),
        LimitValue::Word(w) => limits::parse_value(w).or_else(|| {
            let problem = Problem::LimitValue {
                resource: resource.name().into(),
                value: w.clone(),
            };
            cx.err(span.clone(), problem);
            None
        }),
    };
    let (soft, hard) = match value.get_ref() {
        RawLimit::Both(v) => number(v).map(|n| (n, n))?,
        RawLimit::Pair(p) => (number(&p.soft)?, number(&p.hard)?),
    };
    if soft > hard {
        let (soft, hard) = (limits::show(soft), limits::show(hard));
        cx.err(
            span.clone(),
            Problem::SoftAboveHard {
                resource: resource.name(),
                soft,
                hard,
            },
        );
    }
    if let Some(ceiling) = cx.env.ceilings().exceeded(resource, hard) {
        let hard = limits::show(hard);
        cx.err(
            span,
            Problem::HardAboveCeiling {
                resource: resource.name(),
                hard,
                ceiling,
            },
        );
    }
    Some(Limit { soft, hard })
}
