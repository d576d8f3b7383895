//! A request's `op` and its fields, read from the JSON object by hand.
//!
//! Why not serde: `Op` is an internally tagged enum, and serde's derived
//! code for it buffered the object and held one deserializer per variant
//! (about 35 KiB of the static binary). This reads the same requests and
//! refuses the others with the same message serde gave (`unknown field `x`,
//! expected `name` or `no_block``, `missing field `name``, `invalid type:
//! integer `1`, expected a string`): the fields in key order, the first
//! problem wins, then the first missing field in the order declared.

use serde_json::{Map, Value};

use super::{Exec, Group, Op, ServiceState, WaitFor};

/// The operation of a request object (its `v` already checked).
pub fn op(object: Map<String, Value>) -> Result<Op, String> {
    let tag = match object.get("op") {
        Some(Value::String(tag)) => tag.clone(),
        Some(other) => return Err(invalid_type(other, "variant identifier")),
        None => return Err(missing("op")),
    };
    // The op's own fields, in key order (not removed from the map: each
    // map type's `remove` is its own copy of the B-tree's rebalancing).
    let f: Fields = object.into_iter().filter(|(k, _)| k != "v" && k != "op").collect();
    Ok(match tag.as_str() {
        "ping" => none(f).map(|()| Op::Ping {})?,
        "version" => none(f).map(|()| Op::Version {})?,
        "reload" => none(f).map(|()| Op::Reload {})?,
        "shutdown" => none(f).map(|()| Op::Shutdown {})?,
        "health" => none(f).map(|()| Op::Health {})?,
        "events" => none(f).map(|()| Op::Events {})?,
        "status" => {
            let (mut names, mut batched) = (Vec::new(), false);
            fields(f, &["names", "batched"], |k, v| {
                match k {
                    "names" => names = strings(v)?,
                    _ => batched = boolean(v)?,
                }
                Ok(())
            })?;
            Op::Status { names, batched }
        }
        "start" | "stop" | "restart" => {
            let (mut name, mut no_block) = (None, false);
            fields(f, &["name", "no_block"], |k, v| {
                match k {
                    "name" => name = Some(string(v)?),
                    _ => no_block = boolean(v)?,
                }
                Ok(())
            })?;
            let name = required(name, "name")?;
            match tag.as_str() {
                "start" => Op::Start { name, no_block },
                "stop" => Op::Stop { name, no_block },
                _ => Op::Restart { name, no_block },
            }
        }
        "signal" => {
            let (mut name, mut signal) = (None, None);
            fields(f, &["name", "signal"], |k, v| {
                match k {
                    "name" => name = Some(string(v)?),
                    _ => signal = Some(string(v)?),
                }
                Ok(())
            })?;
            Op::Signal {
                name: required(name, "name")?,
                signal: required(signal, "signal")?,
            }
        }
        "logs" => {
            let (mut name, mut lines, mut follow) = (None, None, false);
            fields(f, &["name", "lines", "follow"], |k, v| {
                match k {
                    "name" => name = optional(v, string)?,
                    "lines" => lines = optional(v, |v| unsigned(v, "usize"))?.map(|n| n as usize),
                    _ => follow = boolean(v)?,
                }
                Ok(())
            })?;
            Op::Logs { name, lines, follow }
        }
        "wait" => {
            let (mut names, mut state, mut timeout_ms) = (None, None, None);
            fields(f, &["names", "for", "timeout_ms"], |k, v| {
                match k {
                    "names" => names = Some(strings(v)?),
                    "for" => state = Some(wait_for(&v)?),
                    _ => timeout_ms = optional(v, |v| unsigned(v, "u64"))?,
                }
                Ok(())
            })?;
            Op::Wait {
                names: required(names, "names")?,
                state: required(state, "for")?,
                timeout_ms,
            }
        }
        "exec" => Op::Exec(exec(f)?),
        "kill" => {
            let mut signal = None;
            fields(f, &["signal"], |_, v| {
                signal = Some(string(v)?);
                Ok(())
            })?;
            Op::Kill {
                signal: required(signal, "signal")?,
            }
        }
        _ => return Err(format!("unknown variant `{tag}`, expected one of {}", quoted(OPS))),
    })
}

type Fields = Vec<(String, Value)>;

const OPS: &[&str] = &[
    "ping", "version", "status", "start", "stop", "restart", "signal", "logs", "reload", "shutdown", "wait", "health",
    "events", "exec", "kill",
];

fn exec(f: Fields) -> Result<Exec, String> {
    let mut e = Exec::default();
    let mut argv = None;
    fields(f, &["argv", "user", "env", "cwd", "tty", "size"], |k, v| {
        match k {
            "argv" => argv = Some(strings(v)?),
            "user" => e.user = optional(v, string)?,
            "env" => e.env = strings(v)?,
            "cwd" => e.cwd = optional(v, string)?,
            "tty" => e.tty = boolean(v)?,
            _ => e.size = optional(v, size)?,
        }
        Ok(())
    })?;
    e.argv = required(argv, "argv")?;
    Ok(e)
}

/// Each field in key order through `take`; a key not in `names` is refused.
fn fields(
    object: Fields,
    names: &[&str],
    mut take: impl FnMut(&str, Value) -> Result<(), String>,
) -> Result<(), String> {
    for (key, value) in object {
        if !names.contains(&key.as_str()) {
            return Err(format!("unknown field `{key}`, expected {}", one_of(names)));
        }
        take(&key, value)?;
    }
    Ok(())
}

/// An op without fields.
fn none(object: Fields) -> Result<(), String> {
    match object.first() {
        Some((key, _)) => Err(format!("unknown field `{key}`, there are no fields")),
        None => Ok(()),
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        _ => format!("one of {}", quoted(names)),
    }
}

fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

fn missing(name: &str) -> String {
    format!("missing field `{name}`")
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| missing(name))
}

/// serde_json's words for a value in a type error.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

fn invalid_type(v: &Value, expected: &str) -> String {
    format!("invalid type: {}, expected {expected}", describe(v))
}

fn string(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(invalid_type(&other, "a string")),
    }
}

fn boolean(v: Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(invalid_type(&other, "a boolean")),
    }
}

fn strings(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items.into_iter().map(string).collect(),
        other => Err(invalid_type(&other, "a sequence")),
    }
}

/// `null` is absent.
fn optional<T>(v: Value, read: impl FnOnce(Value) -> Result<T, String>) -> Result<Option<T>, String> {
    match v {
        Value::Null => Ok(None),
        v => read(v).map(Some),
    }
}

/// A whole number of at most `u64::MAX` (`usize` and `u64` alike here).
fn unsigned(v: Value, name: &str) -> Result<u64, String> {
    match &v {
        Value::Number(n) if n.is_u64() => n.as_u64().ok_or_else(|| invalid_type(&v, name)),
        Value::Number(n) if n.is_i64() => Err(format!("invalid value: {}, expected {name}", describe(&v))),
        _ => Err(invalid_type(&v, name)),
    }
}

/// `size`: (rows, columns).
fn size(v: Value) -> Result<(u16, u16), String> {
    let expected = "a tuple of size 2";
    let Value::Array(items) = &v else {
        return Err(invalid_type(&v, expected));
    };
    let item = |i: usize| -> Result<u16, String> {
        let Some(n) = items.get(i) else {
            return Err(format!("invalid length {i}, expected {expected}"));
        };
        let n = unsigned(n.clone(), "u16")?;
        u16::try_from(n).map_err(|_| format!("invalid value: integer `{n}`, expected u16"))
    };
    let pair = (item(0)?, item(1)?);
    match items.len() {
        2 => Ok(pair),
        n => Err(format!("invalid length {n}, expected 2 elements in sequence")),
    }
}

/// `for`: a state word, or a group word; as serde read an enum, also
/// `{"WORD": null}`.
pub fn wait_for(v: &Value) -> Result<WaitFor, String> {
    let word = match v {
        Value::String(word) => Some(word.as_str()),
        Value::Object(o) if o.len() == 1 => o.iter().next().filter(|(_, v)| v.is_null()).map(|(k, _)| k.as_str()),
        _ => None,
    };
    let state = |w: &str| {
        ServiceState::ALL
            .into_iter()
            .find(|s| s.to_string() == w)
            .map(WaitFor::State)
    };
    let group = |w: &str| match w {
        "up" => Some(WaitFor::Group(Group::Up)),
        "down" => Some(WaitFor::Group(Group::Down)),
        "stopped" => Some(WaitFor::Group(Group::Stopped)),
        _ => None,
    };
    word.and_then(|w| state(w).or_else(|| group(w)))
        .ok_or_else(|| "data did not match any variant of untagged enum WaitFor".to_string())
}
