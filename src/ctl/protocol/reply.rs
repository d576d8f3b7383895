//! A reply line read into [`Reply`] by hand.
//!
//! Why not serde's derived code: `Reply` flattens `Body`, a tagged enum, so
//! serde buffered every field and held one deserializer per variant (about
//! 30 KiB of the static binary). This keeps what it did: `ok` read where it
//! stands, the other fields kept as they came (duplicates too), then the
//! body read from them with the same messages, which serde_json places at
//! the end of the object.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::{Body, Reply, ServiceInfo, ServiceState};
use crate::supervisor::Health;

/// A JSON value as serde buffered it: objects keep their order and their
/// duplicate keys.
#[derive(Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Json, E> {
        // JSON has no other floats than finite ones.
        Ok(Number::from_f64(x).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reply, D::Error> {
        d.deserialize_map(ReplyVisitor)
    }
}

struct ReplyVisitor;

impl<'de> Visitor<'de> for ReplyVisitor {
    type Value = Reply;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Reply")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reply, A::Error> {
        let mut ok = None;
        let mut rest = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key != "ok" {
                rest.push((key, map.next_value()?));
            } else if ok.is_some() {
                return Err(de::Error::duplicate_field("ok"));
            } else {
                ok = Some(map.next_value()?);
            }
        }
        let ok = ok.ok_or_else(|| de::Error::missing_field("ok"))?;
        let body = body(rest).map_err(de::Error::custom)?;
        Ok(Reply { ok, body })
    }
}

type Fields = Vec<(String, Json)>;

const KINDS: &[&str] = &[
    "error", "done", "pong", "version", "status", "health", "log", "end", "event", "started", "exited",
];

/// Checks a field's value where it stands; read again once all are there.
type Check = fn(&Json) -> Result<(), String>;

fn body(fields: Fields) -> Result<Body, String> {
    let mut kind = None;
    let mut rest = Vec::new();
    for (key, value) in fields {
        if key != "kind" {
            rest.push((key, value));
        } else if kind.is_some() {
            return Err(duplicate("kind"));
        } else {
            kind = Some(variant(&value, KINDS, "variant identifier")?);
        }
    }
    let f = rest;
    Ok(match kind.ok_or_else(|| missing("kind"))? {
        0 => {
            let [error, code] = record(f, ["error", "code"], [|v| string(v).map(drop), |v| int32(v).map(drop)])?;
            Body::Error {
                error: required(error, "error", string)?,
                code: required(code, "code", int32)?,
            }
        }
        1 => {
            let [message] = record(f, ["message"], [|v| maybe(v, string).map(drop)])?;
            Body::Done {
                message: maybe_field(message, string)?,
            }
        }
        2 => Body::Pong,
        3 => {
            let [version, protocol] = record(
                f,
                ["version", "protocol"],
                [|v| string(v).map(drop), |v| uint32(v).map(drop)],
            )?;
            Body::Version {
                version: required(version, "version", string)?,
                protocol: required(protocol, "protocol", uint32)?,
            }
        }
        4 => {
            let [list, more] = record(
                f,
                ["services", "more"],
                [|v| services(v).map(drop), |v| boolean(v).map(drop)],
            )?;
            Body::Status {
                services: required(list, "services", services)?,
                more: more.as_ref().map(boolean).transpose()?.unwrap_or(false),
            }
        }
        5 => {
            let [healthy, reasons] = record(
                f,
                ["healthy", "reasons"],
                [|v| boolean(v).map(drop), |v| strings(v).map(drop)],
            )?;
            Body::Health {
                healthy: required(healthy, "healthy", boolean)?,
                reasons: required(reasons, "reasons", strings)?,
            }
        }
        6 => {
            let [line] = record(f, ["line"], [|v| string(v).map(drop)])?;
            Body::Log {
                line: required(line, "line", string)?,
            }
        }
        7 => Body::End,
        8 => {
            let checks: [Check; 4] = [
                |v| service(v).map(drop),
                |v| maybe(v, state).map(drop),
                |v| uint64(v).map(drop),
                |v| boolean(v).map(drop),
            ];
            let [service_, from, at_ms, removed] = record(f, ["service", "from", "at_ms", "removed"], checks)?;
            Body::Event {
                service: required(service_, "service", service)?,
                from: maybe_field(from, state)?,
                at_ms: at_ms.as_ref().map(uint64).transpose()?.unwrap_or(0),
                removed: removed.as_ref().map(boolean).transpose()?.unwrap_or(false),
            }
        }
        9 => {
            let [pid] = record(f, ["pid"], [|v| int32(v).map(drop)])?;
            Body::Started {
                pid: required(pid, "pid", int32)?,
            }
        }
        _ => {
            let [code] = record(f, ["code"], [|v| int32(v).map(drop)])?;
            Body::Exited {
                code: required(code, "code", int32)?,
            }
        }
    })
}

/// The fields `names` of a struct among `fields`, each checked in the order
/// they came; others are ignored, a name given twice is refused.
fn record<const N: usize>(fields: Fields, names: [&str; N], checks: [Check; N]) -> Result<[Option<Json>; N], String> {
    let mut found: [Option<Json>; N] = std::array::from_fn(|_| None);
    for (key, value) in fields {
        if let Some(i) = names.iter().position(|n| *n == key) {
            if found[i].is_some() {
                return Err(duplicate(names[i]));
            }
            checks[i](&value)?;
            found[i] = Some(value);
        }
    }
    Ok(found)
}

fn duplicate(name: &str) -> String {
    format!("duplicate field `{name}`")
}

fn missing(name: &str) -> String {
    format!("missing field `{name}`")
}

fn required<T>(value: Option<Json>, name: &str, read: fn(&Json) -> Result<T, String>) -> Result<T, String> {
    read(&value.ok_or_else(|| missing(name))?)
}

/// `null` is absent.
fn maybe<T>(v: &Json, read: fn(&Json) -> Result<T, String>) -> Result<Option<T>, String> {
    match v {
        Json::Null => Ok(None),
        v => read(v).map(Some),
    }
}

/// A field that may be absent or `null`.
fn maybe_field<T>(value: Option<Json>, read: fn(&Json) -> Result<T, String>) -> Result<Option<T>, String> {
    value.map_or(Ok(None), |v| maybe(&v, read))
}

/// serde_json's words for a value in a type error.
fn describe(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("boolean `{b}`"),
        Json::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Json::Number(n) => format!("integer `{n}`"),
        Json::String(s) => format!("string {s:?}"),
        Json::Array(_) => "sequence".into(),
        Json::Object(_) => "map".into(),
    }
}

fn invalid_type(v: &Json, expected: &str) -> String {
    format!("invalid type: {}, expected {expected}", describe(v))
}

fn string(v: &Json) -> Result<String, String> {
    match v {
        Json::String(s) => Ok(s.clone()),
        other => Err(invalid_type(other, "a string")),
    }
}

fn boolean(v: &Json) -> Result<bool, String> {
    match v {
        Json::Bool(b) => Ok(*b),
        other => Err(invalid_type(other, "a boolean")),
    }
}

fn array<T>(v: &Json, read: fn(&Json) -> Result<T, String>) -> Result<Vec<T>, String> {
    match v {
        Json::Array(items) => items.iter().map(read).collect(),
        other => Err(invalid_type(other, "a sequence")),
    }
}

fn strings(v: &Json) -> Result<Vec<String>, String> {
    array(v, string)
}

fn services(v: &Json) -> Result<Vec<ServiceInfo>, String> {
    array(v, service)
}

/// A whole number from 0 to `max`.
fn unsigned(v: &Json, name: &str, max: u64) -> Result<u64, String> {
    let out_of_range = || format!("invalid value: {}, expected {name}", describe(v));
    match v {
        Json::Number(n) if n.is_u64() => n.as_u64().filter(|n| *n <= max).ok_or_else(out_of_range),
        Json::Number(n) if n.is_i64() => Err(out_of_range()),
        _ => Err(invalid_type(v, name)),
    }
}

fn uint64(v: &Json) -> Result<u64, String> {
    unsigned(v, "u64", u64::MAX)
}

fn uint32(v: &Json) -> Result<u32, String> {
    unsigned(v, "u32", u32::MAX.into()).map(|n| n as u32)
}

fn int32(v: &Json) -> Result<i32, String> {
    match v {
        Json::Number(n) if !n.is_f64() => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("invalid value: {}, expected i32", describe(v))),
        _ => Err(invalid_type(v, "i32")),
    }
}

/// The index of a variant named by a string or, as serde allows, by its
/// index.
fn variant(v: &Json, names: &[&str], expected: &str) -> Result<usize, String> {
    match v {
        Json::String(s) => names.iter().position(|n| n == s).ok_or_else(|| {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("unknown variant `{s}`, expected one of {}", quoted.join(", "))
        }),
        Json::Number(n) if n.is_u64() => n
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < names.len())
            .ok_or_else(|| {
                format!(
                    "invalid value: {}, expected variant index 0 <= i < {}",
                    describe(v),
                    names.len()
                )
            }),
        _ => Err(invalid_type(v, expected)),
    }
}

/// A unit variant of an enum as serde reads one: `"word"`, `{"word": null}`
/// or `{"word": {}}`.
fn unit_variant(v: &Json, names: &[&str]) -> Result<usize, String> {
    match v {
        Json::String(_) => variant(v, names, ""),
        Json::Object(entries) => match entries.as_slice() {
            [(name, value)] => {
                let i = variant(&Json::String(name.clone()), names, "")?;
                match value {
                    // serde takes an empty object for a unit too.
                    Json::Null => Ok(i),
                    Json::Object(entries) if entries.is_empty() => Ok(i),
                    other => Err(invalid_type(other, "unit")),
                }
            }
            _ => Err("invalid value: map, expected map with a single key".into()),
        },
        other => Err(invalid_type(other, "string or map")),
    }
}

fn state(v: &Json) -> Result<ServiceState, String> {
    let names: Vec<String> = ServiceState::ALL.iter().map(ToString::to_string).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let i = unit_variant(v, &names)?;
    ServiceState::ALL.get(i).copied().ok_or_else(|| missing("state"))
}

fn health(v: &Json) -> Result<Health, String> {
    const HEALTH: [Health; 3] = [Health::Starting, Health::Healthy, Health::Unhealthy];
    let i = unit_variant(v, &["starting", "healthy", "unhealthy"])?;
    HEALTH.get(i).copied().ok_or_else(|| missing("health"))
}

const SERVICE: [&str; 14] = [
    "name",
    "state",
    "pid",
    "since_ms",
    "restarts",
    "last_exit",
    "status_text",
    "detail",
    "next_run_ms",
    "health",
    "oom_kills",
    "memory_bytes",
    "cpu_usec",
    "tasks",
];

/// Each field of a service, by its place in [`SERVICE`].
const SERVICE_CHECKS: [Check; 14] = [
    |v| string(v).map(drop),
    |v| state(v).map(drop),
    |v| maybe(v, int32).map(drop),
    |v| uint64(v).map(drop),
    |v| uint32(v).map(drop),
    |v| maybe(v, string).map(drop),
    |v| maybe(v, string).map(drop),
    |v| maybe(v, string).map(drop),
    |v| maybe(v, uint64).map(drop),
    |v| maybe(v, health).map(drop),
    |v| uint32(v).map(drop),
    |v| maybe(v, uint64).map(drop),
    |v| maybe(v, uint64).map(drop),
    |v| maybe(v, uint64).map(drop),
];

/// A service: an object, or (as serde reads a struct) an array of its
/// fields in order.
fn service(v: &Json) -> Result<ServiceInfo, String> {
    let f: [Option<Json>; 14] = match v {
        Json::Object(entries) => record(entries.clone(), SERVICE, SERVICE_CHECKS)?,
        Json::Array(items) => {
            let mut f: [Option<Json>; 14] = std::array::from_fn(|_| None);
            for (i, slot) in f.iter_mut().enumerate() {
                match items.get(i) {
                    Some(item) => {
                        SERVICE_CHECKS[i](item)?;
                        *slot = Some(item.clone());
                    }
                    // Fields without a default must be there.
                    None if [0, 1, 3, 4].contains(&i) => {
                        return Err(format!(
                            "invalid length {i}, expected struct ServiceInfo with 14 elements"
                        ));
                    }
                    None => {}
                }
            }
            if items.len() > 14 {
                return Err(format!(
                    "invalid length {}, expected 14 elements in sequence",
                    items.len()
                ));
            }
            f
        }
        other => return Err(invalid_type(other, "struct ServiceInfo")),
    };
    let [name, st, pid, since_ms, restarts, last_exit, status_text, detail, next_run_ms, health_, oom_kills, memory_bytes, cpu_usec, tasks] =
        f;
    Ok(ServiceInfo {
        name: required(name, "name", string)?,
        state: required(st, "state", state)?,
        pid: maybe_field(pid, int32)?,
        since_ms: required(since_ms, "since_ms", uint64)?,
        restarts: required(restarts, "restarts", uint32)?,
        last_exit: maybe_field(last_exit, string)?,
        status_text: maybe_field(status_text, string)?,
        detail: maybe_field(detail, string)?,
        next_run_ms: maybe_field(next_run_ms, uint64)?,
        health: maybe_field(health_, health)?,
        oom_kills: oom_kills.as_ref().map(uint32).transpose()?.unwrap_or(0),
        memory_bytes: maybe_field(memory_bytes, uint64)?,
        cpu_usec: maybe_field(cpu_usec, uint64)?,
        tasks: maybe_field(tasks, uint64)?,
    })
}
