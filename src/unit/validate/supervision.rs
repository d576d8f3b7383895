//! The keys of issue 12's supervision rules: `on-failure`, `watchdog` and
//! `watchdog-signal` (notify services), `schedule` and `schedule-timezone`
//! (oneshots; a named zone is read from the environment's time zone
//! database).

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::{type_name, Ctx};
use crate::supervisor::schedule::{self, Schedule, ScheduleError};
use crate::supervisor::zone::Zone;
use crate::supervisor::{OnFailure, ServiceType};
use crate::unit::error::Problem;
use crate::unit::host::{below, Host};
use crate::unit::schema::NameOrNumber;

const ON_FAILURE_NAMES: &[&str] = &["none", "shutdown"];
const ON_FAILURES: &[OnFailure] = &[OnFailure::None, OnFailure::Shutdown];

/// Unset stays `None`: `tend init --on-failure` decides then.
pub fn on_failure(cx: &mut Ctx, value: Option<Spanned<String>>) -> Option<OnFailure> {
    value
        .is_some()
        .then(|| cx.choice("on-failure", value, ON_FAILURE_NAMES, ON_FAILURES, OnFailure::None))
}

/// `watchdog` applies to notify services, and must be above zero;
/// `watchdog-signal` needs it.
pub fn watchdog(
    cx: &mut Ctx,
    value: Option<Spanned<String>>,
    t: ServiceType,
    signal: Option<&Spanned<NameOrNumber>>,
) -> Option<Duration> {
    let Some(v) = value else {
        if let Some(signal) = signal {
            cx.err(signal.span(), Problem::WatchdogSignalAlone);
        }
        return None;
    };
    let span = v.span();
    // A bad duration is reported once: its stand-in is not zero.
    let every = cx.duration("watchdog", Some(v), Duration::from_secs(1));
    if t != ServiceType::Notify {
        cx.err(
            span,
            Problem::WatchdogNotNotify {
                service_type: type_name(t),
            },
        );
        return None;
    }
    if every.is_zero() {
        cx.err(span, Problem::WatchdogZero);
        return None;
    }
    Some(every)
}

/// `schedule` applies to oneshots; `schedule-timezone` needs it.
pub fn schedule(
    cx: &mut Ctx,
    value: Option<Spanned<String>>,
    zone: Option<Spanned<String>>,
    t: ServiceType,
) -> Option<Schedule> {
    let Some(v) = value else {
        if let Some(zone) = zone {
            cx.err(zone.span(), Problem::TimezoneAlone);
        }
        return None;
    };
    if t != ServiceType::Oneshot {
        cx.err(
            v.span(),
            Problem::ScheduleNotOneshot {
                service_type: type_name(t),
            },
        );
    }
    let found = zone.as_ref().map(|z| (z, time_zone(cx.env, z.get_ref().trim())));
    let mut bad = |key, v: &Spanned<String>, reason: String| {
        let value = v.get_ref().clone();
        cx.err(v.span(), Problem::Schedule { key, value, reason });
    };
    let zone = match found {
        Some((z, Err(reason))) => {
            bad("schedule-timezone", z, reason);
            Zone::Fixed(0)
        }
        Some((_, Ok(zone))) => zone,
        None => Zone::Fixed(0),
    };
    match Schedule::parse(v.get_ref()) {
        Ok(s) => Some(s.in_zone(zone)),
        Err(e) => {
            bad("schedule", &v, e.to_string());
            None
        }
    }
}

/// `UTC`, a fixed offset, `local` (the environment's `/etc/localtime`) or
/// a name of the environment's time zone database (`Europe/Paris`).
fn time_zone(host: &dyn Host, name: &str) -> Result<Zone, String> {
    if let Ok(offset) = schedule::parse_offset(name) {
        return Ok(Zone::Fixed(offset));
    }
    let path = match name {
        "local" => "/etc/localtime".to_string(),
        _ if zone_name(name) => format!("/usr/share/zoneinfo/{name}"),
        _ => return Err(ScheduleError::Zone(name.to_string()).to_string()),
    };
    let bytes = host
        .read_bytes(&below(host.root(), Path::new(&path)))
        .map_err(|e| format!("cannot read {path}: {}", crate::sys::describe(&e)))?;
    Zone::from_tzif(&bytes).map_err(|e| format!("{path}: {e}"))
}

/// `Area/City`: letters, digits, `_+-` and `/` between names, no `..`.
fn zone_name(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
    };
    name.split('/').all(part)
}
