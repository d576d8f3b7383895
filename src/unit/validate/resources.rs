//! The cgroup limit keys: sizes, `cpus`, weights and `pids-max`, each
//! range-checked, `memory-high` against `memory-max`, and each against the
//! controllers the host offers.

use toml::Spanned;

use super::Ctx;
use crate::unit::error::Problem;
use crate::unit::resources::{self, Resources, Support, MAX, TABLE};
use crate::unit::schema::{RawAmount, RawUnit};

/// The raw keys, taken out of the unit.
pub struct Raw {
    memory_max: Option<Spanned<RawAmount>>,
    memory_high: Option<Spanned<RawAmount>>,
    memory_swap_max: Option<Spanned<RawAmount>>,
    cpus: Option<Spanned<RawAmount>>,
    cpu_weight: Option<Spanned<RawAmount>>,
    pids_max: Option<Spanned<RawAmount>>,
    io_weight: Option<Spanned<RawAmount>>,
}

impl Raw {
    pub fn take(raw: &mut RawUnit) -> Raw {
        Raw {
            memory_max: raw.memory_max.take(),
            memory_high: raw.memory_high.take(),
            memory_swap_max: raw.memory_swap_max.take(),
            cpus: raw.cpus.take(),
            cpu_weight: raw.cpu_weight.take(),
            pids_max: raw.pids_max.take(),
            io_weight: raw.io_weight.take(),
        }
    }
}

pub fn resources(cx: &mut Ctx, raw: Raw) -> Resources {
    let high_at = raw.memory_high.as_ref().map(Spanned::span);
    let r = Resources {
        memory_max: one(cx, "memory-max", raw.memory_max.as_ref(), size),
        memory_high: one(cx, "memory-high", raw.memory_high.as_ref(), size),
        memory_swap_max: one(cx, "memory-swap-max", raw.memory_swap_max.as_ref(), size),
        cpu_quota: one(cx, "cpus", raw.cpus.as_ref(), cpus),
        cpu_weight: one(cx, "cpu-weight", raw.cpu_weight.as_ref(), weight),
        pids_max: one(cx, "pids-max", raw.pids_max.as_ref(), pids),
        io_weight: one(cx, "io-weight", raw.io_weight.as_ref(), weight),
    };
    if let (Some(high), Some(max), Some(span)) = (r.memory_high, r.memory_max, high_at) {
        if high > max && high != MAX {
            let (high, max) = (resources::show_size(high), resources::show_size(max));
            cx.err(span, Problem::HighAboveMax { high, max });
        }
    }
    controllers(cx, &r, &raw_spans(&raw));
    r
}

/// Each key's span, in [`TABLE`] order.
fn raw_spans(raw: &Raw) -> [Option<std::ops::Range<usize>>; 7] {
    [
        &raw.memory_max,
        &raw.memory_high,
        &raw.memory_swap_max,
        &raw.cpus,
        &raw.cpu_weight,
        &raw.pids_max,
        &raw.io_weight,
    ]
    .map(|v| v.as_ref().map(Spanned::span))
}

/// A limit of a controller the host lacks is an error; a read-only cgroup
/// is not (the unit runs without limits, and says so).
fn controllers(cx: &mut Ctx, r: &Resources, spans: &[Option<std::ops::Range<usize>>; 7]) {
    let Support::Only(offered) = cx.env.cgroups().clone() else {
        return;
    };
    for (row, span) in TABLE.iter().zip(spans) {
        if let (Some(_), Some(span)) = (r.get(row.key), span) {
            if !offered.contains(&row.controller) {
                let controller = row.controller.v2_name();
                cx.err(
                    span.clone(),
                    Problem::NoController {
                        key: row.name,
                        controller,
                    },
                );
            }
        }
    }
}

/// Checks one key with `parse`, which says why a value is wrong.
fn one(
    cx: &mut Ctx,
    key: &'static str,
    value: Option<&Spanned<RawAmount>>,
    parse: fn(&RawAmount) -> Result<u64, String>,
) -> Option<u64> {
    let v = value?;
    parse(v.get_ref())
        .inspect_err(|reason| {
            let problem = Problem::Resource {
                key,
                value: shown(v.get_ref()),
                reason: reason.clone(),
            };
            cx.err(v.span(), problem);
        })
        .ok()
}

fn shown(v: &RawAmount) -> String {
    match v {
        RawAmount::Integer(n) => n.to_string(),
        RawAmount::Float(f) => f.to_string(),
        RawAmount::Text(t) => format!("\"{t}\""),
    }
}

fn size(v: &RawAmount) -> Result<u64, String> {
    match v {
        RawAmount::Integer(n) if *n > 0 => Ok(*n as u64),
        RawAmount::Text(t) => resources::parse_size(t),
        _ => Err("expected bytes, a size like \"512M\" or \"1.5G\", or \"infinity\"".into()),
    }
}

/// `cpus`: a fraction of CPUs, as a quota per period (at least 1 ms, the
/// kernel's smallest).
fn cpus(v: &RawAmount) -> Result<u64, String> {
    let n = match v {
        RawAmount::Integer(n) => *n as f64,
        RawAmount::Float(f) => *f,
        RawAmount::Text(t) if matches!(t.as_str(), "infinity" | "max") => return Ok(MAX),
        RawAmount::Text(_) => return Err("expected a number of CPUs like 0.5 or 2".into()),
    };
    resources::cpus_quota(n)
}

fn weight(v: &RawAmount) -> Result<u64, String> {
    match v {
        RawAmount::Integer(n) if (1..=10_000).contains(n) => Ok(*n as u64),
        _ => Err("expected a whole number from 1 to 10000".into()),
    }
}

fn pids(v: &RawAmount) -> Result<u64, String> {
    match v {
        RawAmount::Integer(n) if *n > 0 => Ok(*n as u64),
        RawAmount::Text(t) if matches!(t.as_str(), "infinity" | "max") => Ok(MAX),
        _ => Err("expected a positive number of tasks or \"infinity\"".into()),
    }
}
