//! A parsed TOML value to the [`RawUnit`] types, walked by hand.
//!
//! Why not serde: its derived code took one copy of toml's deserializer per
//! field type, and its `untagged` enums buffer each value first (about
//! 175 KiB of the static binary). This walk accepts the same values and
//! gives the same messages at the same spans as that code did: a type error
//! reads `invalid type: VALUE, expected WHAT` at the innermost value, and a
//! value that fits no form of a key with several forms gets that key's one
//! line (`expected a name or a number`) at the value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use toml::de::DeValue;
use toml::Spanned;

use super::schema::{
    EnvValue, LimitValue, NameOrNumber, RawAmount, RawCommand, RawHealth, RawLimit, RawReady, RawStdio, RawUnit, Size,
    SoftHard, StdioFile,
};

/// Why a value does not fit, and where.
#[derive(Debug)]
pub struct Mismatch {
    pub message: String,
    pub span: Range<usize>,
}

type Value<'i> = Spanned<DeValue<'i>>;
type Result<T> = std::result::Result<T, Mismatch>;

fn mismatch<T>(at: &Spanned<T>, message: String) -> Mismatch {
    Mismatch {
        message,
        span: at.span(),
    }
}

/// The key under which toml hands a date-time to serde.
const DATETIME: &str = "$__toml_private_datetime";

/// Decodes `key = value` into `raw`. Keys unknown here were reported and
/// removed before (see `parse::unknown_keys`); they are ignored.
pub fn field(raw: &mut RawUnit, key: &str, v: &Value) -> Result<()> {
    let r = raw;
    match key {
        "description" => r.description = Some(string(v)?),
        "command" => r.command = Some(command(v)?),
        "type" => r.service_type = Some(string(v)?),
        "ready" => r.ready = Some(ready(v)?),
        "ready-timeout" => r.ready_timeout = Some(string(v)?),
        "restart" => r.restart = Some(string(v)?),
        "restart-delay" => r.restart_delay = Some(string(v)?),
        "restart-delay-max" => r.restart_delay_max = Some(string(v)?),
        "start-limit-burst" => r.start_limit_burst = Some(uint32(v)?),
        "start-limit-interval" => r.start_limit_interval = Some(string(v)?),
        "after" => r.after = Some(strings(v)?),
        "requires" => r.requires = Some(strings(v)?),
        "stop-signal" => r.stop_signal = Some(name_or_number(v)?),
        "stop-timeout" => r.stop_timeout = Some(string(v)?),
        "user" => r.user = Some(name_or_number(v)?),
        "group" => r.group = Some(name_or_number(v)?),
        "working-dir" => r.working_dir = Some(string(v)?),
        "env" => r.env = Some(table(v, env_value)?),
        "env-file" => r.env_file = Some(string(v)?),
        "limits" => r.limits = Some(table(v, limit)?),
        "stdout" => r.stdout = Some(stdio(v)?),
        "stderr" => r.stderr = Some(stdio(v)?),
        "main" => r.main = Some(boolean(v)?),
        "enabled" => r.enabled = Some(boolean(v)?),
        "on-failure" => r.on_failure = Some(string(v)?),
        "watchdog" => r.watchdog = Some(string(v)?),
        "watchdog-signal" => r.watchdog_signal = Some(name_or_number(v)?),
        "schedule" => r.schedule = Some(string(v)?),
        "schedule-timezone" => r.schedule_timezone = Some(string(v)?),
        "health" => r.health = Some(health(v)?),
        "health-interval" => r.health_interval = Some(string(v)?),
        "health-timeout" => r.health_timeout = Some(string(v)?),
        "health-retries" => r.health_retries = Some(uint32(v)?),
        "health-start-period" => r.health_start_period = Some(string(v)?),
        "on-unhealthy" => r.on_unhealthy = Some(string(v)?),
        "log-buffer-lines" => r.log_buffer_lines = Some(uint32(v)?),
        "memory-max" => r.memory_max = Some(amount(v)?),
        "memory-high" => r.memory_high = Some(amount(v)?),
        "memory-swap-max" => r.memory_swap_max = Some(amount(v)?),
        "cpus" => r.cpus = Some(amount(v)?),
        "cpu-weight" => r.cpu_weight = Some(amount(v)?),
        "pids-max" => r.pids_max = Some(amount(v)?),
        "io-weight" => r.io_weight = Some(amount(v)?),
        _ => {}
    }
    Ok(())
}

/// A value as a type check sees it: numbers read as toml reads them.
enum Seen<'a> {
    Str(&'a str),
    Int(i64),
    Uint(u64),
    /// Beyond `u64`: toml hands it on as `i128`/`u128`, which no field takes.
    Wide(String),
    Float(f64),
    Bool(bool),
    Seq,
    Map,
}

/// What `v` is; toml's own error for a number it cannot read.
fn seen<'a>(v: &'a Value) -> Result<Seen<'a>> {
    Ok(match v.get_ref() {
        DeValue::String(s) => Seen::Str(s),
        DeValue::Integer(n) => {
            let (text, radix) = (n.as_str(), n.radix());
            if let Ok(n) = i64::from_str_radix(text, radix) {
                Seen::Int(n)
            } else if let Ok(n) = u64::from_str_radix(text, radix) {
                Seen::Uint(n)
            } else if let Ok(n) = i128::from_str_radix(text, radix) {
                Seen::Wide(format!("integer `{n}` as i128"))
            } else if let Ok(n) = u128::from_str_radix(text, radix) {
                Seen::Wide(format!("integer `{n}` as u128"))
            } else {
                return Err(mismatch(v, "integer number overflowed".into()));
            }
        }
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(x) if !x.is_infinite() || f.as_str().contains("inf") => Seen::Float(x),
            _ => return Err(mismatch(v, "floating-point number overflowed".into())),
        },
        DeValue::Boolean(b) => Seen::Bool(*b),
        DeValue::Array(_) => Seen::Seq,
        // A date-time reaches serde as a map with one private key.
        DeValue::Table(_) | DeValue::Datetime(_) => Seen::Map,
    })
}

/// serde's words for a value in a type error.
fn describe(seen: &Seen) -> String {
    match seen {
        Seen::Str(s) => format!("string {s:?}"),
        Seen::Int(n) => format!("integer `{n}`"),
        Seen::Uint(n) => format!("integer `{n}`"),
        Seen::Wide(text) => text.clone(),
        Seen::Float(x) => {
            let mut text = x.to_string();
            if x.is_finite() && !text.contains('.') {
                text.push_str(".0");
            }
            format!("floating point `{text}`")
        }
        Seen::Bool(b) => format!("boolean `{b}`"),
        Seen::Seq => "sequence".into(),
        Seen::Map => "map".into(),
    }
}

fn invalid_type(v: &Value, seen: &Seen, expected: &str) -> Mismatch {
    mismatch(v, format!("invalid type: {}, expected {expected}", describe(seen)))
}

fn string(v: &Value) -> Result<Spanned<String>> {
    match seen(v)? {
        Seen::Str(s) => Ok(Spanned::new(v.span(), s.to_string())),
        other => Err(invalid_type(v, &other, "a string")),
    }
}

fn boolean(v: &Value) -> Result<Spanned<bool>> {
    match seen(v)? {
        Seen::Bool(b) => Ok(Spanned::new(v.span(), b)),
        other => Err(invalid_type(v, &other, "a boolean")),
    }
}

fn uint32(v: &Value) -> Result<Spanned<u32>> {
    let seen = seen(v)?;
    let n = match seen {
        Seen::Int(n) => u32::try_from(n).ok(),
        Seen::Uint(n) => u32::try_from(n).ok(),
        ref other => return Err(invalid_type(v, other, "u32")),
    };
    n.map(|n| Spanned::new(v.span(), n))
        .ok_or_else(|| mismatch(v, format!("invalid value: {}, expected u32", describe(&seen))))
}

fn shrunk<T>(mut items: Vec<T>) -> Vec<T> {
    items.shrink_to_fit();
    items
}

fn strings(v: &Value) -> Result<Vec<Spanned<String>>> {
    match v.get_ref() {
        // Shrunk: a collect through `Result` cannot know the length, and
        // what a unit keeps lives as long as tend.
        DeValue::Array(items) => items.iter().map(string).collect::<Result<Vec<_>>>().map(shrunk),
        _ => Err(invalid_type(v, &seen(v)?, "a sequence")),
    }
}

/// `env` and `limits`: a table of values of several forms each.
fn table<T>(v: &Value, entry: fn(&Value) -> Result<Spanned<T>>) -> Result<BTreeMap<Spanned<String>, Spanned<T>>> {
    let t = match v.get_ref() {
        DeValue::Table(t) => t,
        // serde read the date-time's private key as a key of the table.
        DeValue::Datetime(_) => {
            let message = format!("invalid type: string {DATETIME:?}, expected a spanned value");
            return Err(mismatch(v, message));
        }
        _ => return Err(invalid_type(v, &seen(v)?, "a map")),
    };
    let mut map = BTreeMap::new();
    for (key, value) in t.iter() {
        map.insert(Spanned::new(key.span(), key.get_ref().to_string()), entry(value)?);
    }
    Ok(map)
}

/// `ready` and `health`: a table, or (as serde reads a struct) an array of
/// the fields in order.
fn record<T: Default>(
    v: &Value,
    name: &str,
    fields: &[&str],
    mut set: impl FnMut(&mut T, &str, &Value) -> Result<()>,
) -> Result<Spanned<T>> {
    let mut out = T::default();
    match v.get_ref() {
        DeValue::Table(t) => {
            for (key, value) in t.iter() {
                if !fields.contains(&key.get_ref().as_ref()) {
                    return Err(mismatch(key, unknown_field(key.get_ref(), fields)));
                }
                set(&mut out, key.get_ref(), value)?;
            }
        }
        // serde read a date-time as a table of one private key.
        DeValue::Datetime(_) => return Err(mismatch(v, unknown_field(DATETIME, fields))),
        DeValue::Array(items) => {
            for (i, field) in fields.iter().enumerate() {
                let Some(value) = items.get(i) else {
                    let n = fields.len();
                    return Err(mismatch(
                        v,
                        format!("invalid length {i}, expected struct {name} with {n} elements"),
                    ));
                };
                set(&mut out, field, value)?;
            }
        }
        _ => return Err(invalid_type(v, &seen(v)?, &format!("struct {name}"))),
    }
    Ok(Spanned::new(v.span(), out))
}

fn unknown_field(key: &str, fields: &[&str]) -> String {
    let mut message = format!("unknown field `{key}`, expected ");
    match fields {
        [a, b] => {
            let _ = write!(message, "`{a}` or `{b}`");
        }
        _ => {
            message.push_str("one of ");
            let quoted: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            message.push_str(&quoted.join(", "));
        }
    }
    message
}

fn ready(v: &Value) -> Result<Spanned<RawReady>> {
    record(v, "RawReady", &["tcp", "exec"], |r: &mut RawReady, key, value| {
        match key {
            "tcp" => r.tcp = Some(string(value)?),
            _ => r.exec = Some(command(value)?),
        }
        Ok(())
    })
}

fn health(v: &Value) -> Result<Spanned<RawHealth>> {
    record(
        v,
        "RawHealth",
        &["tcp", "http", "exec"],
        |h: &mut RawHealth, key, value| {
            match key {
                "tcp" => h.tcp = Some(string(value)?),
                "http" => h.http = Some(string(value)?),
                _ => h.exec = Some(command(value)?),
            }
            Ok(())
        },
    )
}

// Keys with several forms. serde tried each form on a copy of the whole
// value, so a number toml cannot read fails first, wherever it is inside;
// then the first form that fits wins, else the key's one message.

/// toml's error for the first unreadable number in `v`, depth first.
fn readable(v: &Value) -> Result<()> {
    match v.get_ref() {
        DeValue::Array(items) => items.iter().try_for_each(readable),
        DeValue::Table(t) => t.iter().try_for_each(|(_, value)| readable(value)),
        _ => match seen(v)? {
            Seen::Wide(text) => Err(mismatch(v, format!("invalid type: {text}, expected any value"))),
            _ => Ok(()),
        },
    }
}

fn forms<T>(v: &Value, expected: &str, fit: impl FnOnce(&Value) -> Option<T>) -> Result<Spanned<T>> {
    readable(v)?;
    fit(v)
        .map(|t| Spanned::new(v.span(), t))
        .ok_or_else(|| mismatch(v, expected.to_string()))
}

// What a form takes, on a value already known `readable`.

fn text(v: &Value) -> Option<String> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match seen(v).ok()? {
        Seen::Int(n) => Some(n),
        _ => None,
    }
}

fn unsigned(v: &Value) -> Option<u64> {
    match seen(v).ok()? {
        Seen::Int(n) => u64::try_from(n).ok(),
        Seen::Uint(n) => Some(n),
        _ => None,
    }
}

fn flag(v: &Value) -> Option<bool> {
    match v.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        _ => None,
    }
}

fn command(v: &Value) -> Result<Spanned<RawCommand>> {
    let expected = "expected an array of strings (exec form) or a string (shell form)";
    forms(v, expected, |v| match v.get_ref() {
        DeValue::Array(items) => items
            .iter()
            .map(text)
            .collect::<Option<Vec<_>>>()
            .map(|argv| RawCommand::Exec(shrunk(argv))),
        _ => text(v).map(RawCommand::Shell),
    })
}

fn name_or_number(v: &Value) -> Result<Spanned<NameOrNumber>> {
    forms(v, "expected a name or a number", |v| {
        unsigned(v)
            .map(NameOrNumber::Number)
            .or_else(|| text(v).map(NameOrNumber::Name))
    })
}

fn env_value(v: &Value) -> Result<Spanned<EnvValue>> {
    forms(v, "expected a string, an integer or a boolean", |v| {
        text(v)
            .map(EnvValue::String)
            .or_else(|| int(v).map(EnvValue::Integer))
            .or_else(|| flag(v).map(EnvValue::Boolean))
    })
}

fn amount(v: &Value) -> Result<Spanned<RawAmount>> {
    forms(v, "expected a number or a string", |v| {
        if let Some(n) = int(v) {
            return Some(RawAmount::Integer(n));
        }
        match seen(v).ok()? {
            Seen::Uint(n) => Some(RawAmount::Float(n as f64)),
            Seen::Float(x) => Some(RawAmount::Float(x)),
            Seen::Str(s) => Some(RawAmount::Text(s.to_string())),
            _ => None,
        }
    })
}

fn limit(v: &Value) -> Result<Spanned<RawLimit>> {
    let expected = "expected a number, \"infinity\" or { soft = N, hard = M }";
    forms(v, expected, |v| {
        if let Some(both) = limit_value(v) {
            return Some(RawLimit::Both(both));
        }
        let pair = fields(v, &["soft", "hard"])?;
        let [soft, hard] = [pair[0]?, pair[1]?].map(limit_value);
        Some(RawLimit::Pair(SoftHard {
            soft: soft?,
            hard: hard?,
        }))
    })
}

fn limit_value(v: &Value) -> Option<LimitValue> {
    unsigned(v)
        .map(LimitValue::Number)
        .or_else(|| text(v).map(LimitValue::Word))
}

fn stdio(v: &Value) -> Result<Spanned<RawStdio>> {
    let expected = "expected \"log\", \"inherit\", \"null\" or { file = \"/path\", max-size = \"10M\", max-files = 5, tee = true }";
    forms(v, expected, |v| {
        if let Some(word) = text(v) {
            return Some(RawStdio::Word(word));
        }
        let f = fields(v, &["file", "max-size", "max-files", "tee"])?;
        let size = |v: &Value| unsigned(v).map(Size::Bytes).or_else(|| text(v).map(Size::Text));
        let count = |v: &Value| unsigned(v).and_then(|n| u32::try_from(n).ok());
        Some(RawStdio::File(StdioFile {
            file: text(f[0]?)?,
            max_size: opt(f[1], size)?,
            max_files: opt(f[2], count)?,
            tee: opt(f[3], flag)?,
        }))
    })
}

/// An optional field: absent is `Some(None)`, present but wrong is `None`.
fn opt<T>(v: Option<&Value>, fit: impl FnOnce(&Value) -> Option<T>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(v) => fit(v).map(Some),
    }
}

/// The values of a struct within a form, by field: from a table with no
/// other key, or from an array of exactly that many values (as serde reads
/// a struct). `None` when neither.
fn fields<'v, 'i>(v: &'v Value<'i>, names: &[&str]) -> Option<Vec<Option<&'v Value<'i>>>> {
    match v.get_ref() {
        DeValue::Table(t) => {
            let mut found = vec![None; names.len()];
            for (key, value) in t.iter() {
                let i = names.iter().position(|n| *n == key.get_ref())?;
                found[i] = Some(value);
            }
            Some(found)
        }
        DeValue::Array(items) if items.len() == names.len() => Some(items.iter().map(Some).collect()),
        _ => None,
    }
}
