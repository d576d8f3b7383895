//! `health` and its `health-*` and `on-unhealthy` keys: the check (tcp,
//! http or exec) for the runtime, the policy for the supervisor.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::exec::{argv, resolve};
use super::Ctx;
use crate::supervisor::{HealthPolicy, OnUnhealthy, ServiceType};
use crate::unit::error::Problem;
use crate::unit::schema::{RawHealth, RawUnit};
use crate::unit::HealthCheck;

const ON_UNHEALTHY_NAMES: &[&str] = &["restart", "none", "shutdown"];
const ON_UNHEALTHY: &[OnUnhealthy] = &[OnUnhealthy::Restart, OnUnhealthy::None, OnUnhealthy::Shutdown];

/// The keys of a raw unit this module reads, taken out of it.
pub struct RawKeys {
    pub health: Option<Spanned<RawHealth>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<Spanned<u32>>,
    pub start_period: Option<Spanned<String>>,
    pub on_unhealthy: Option<Spanned<String>>,
}

impl RawKeys {
    pub fn take(raw: &mut RawUnit) -> RawKeys {
        RawKeys {
            health: raw.health.take(),
            interval: raw.health_interval.take(),
            timeout: raw.health_timeout.take(),
            retries: raw.health_retries.take(),
            start_period: raw.health_start_period.take(),
            on_unhealthy: raw.on_unhealthy.take(),
        }
    }
}

/// The check and its policy; `None` without a `health` key (then any
/// `health-*` key is an error).
pub fn health(
    cx: &mut Ctx,
    raw: RawKeys,
    service_type: ServiceType,
    env: &[(String, String)],
    cwd: Option<&Path>,
) -> (Option<HealthCheck>, Option<HealthPolicy>) {
    let d = HealthPolicy::DEFAULT;
    let Some(check) = raw.health else {
        alone(cx, &raw);
        return (None, None);
    };
    if service_type == ServiceType::Oneshot {
        cx.err(check.span(), Problem::HealthOneshot);
    }
    let timeout = cx.duration("health-timeout", raw.timeout.clone(), d.timeout);
    if let Some(t) = raw.timeout.as_ref().filter(|_| timeout.is_zero()) {
        let (key, min) = ("health-timeout", "1ms");
        cx.err(t.span(), Problem::TooSmall { key, min });
    }
    let interval = cx.duration("health-interval", raw.interval.clone(), d.interval);
    if let Some(i) = raw.interval.as_ref().filter(|_| interval < Duration::from_millis(100)) {
        let (key, min) = ("health-interval", "100ms");
        cx.err(i.span(), Problem::TooSmall { key, min });
    }
    let retries = match raw.retries {
        Some(r) if *r.get_ref() == 0 => {
            let (key, min) = ("health-retries", "1");
            cx.err(r.span(), Problem::TooSmall { key, min });
            1
        }
        Some(r) => r.into_inner(),
        None => d.retries,
    };
    let policy = HealthPolicy {
        interval,
        timeout,
        retries,
        start_period: cx.duration("health-start-period", raw.start_period, d.start_period),
        on_unhealthy: cx.choice(
            "on-unhealthy",
            raw.on_unhealthy,
            ON_UNHEALTHY_NAMES,
            ON_UNHEALTHY,
            d.on_unhealthy,
        ),
    };
    (check_of(cx, check, env, cwd), Some(policy))
}

/// `health-*` keys without a check.
fn alone(cx: &mut Ctx, raw: &RawKeys) {
    let spans = [
        ("health-interval", raw.interval.as_ref().map(Spanned::span)),
        ("health-timeout", raw.timeout.as_ref().map(Spanned::span)),
        ("health-retries", raw.retries.as_ref().map(Spanned::span)),
        ("health-start-period", raw.start_period.as_ref().map(Spanned::span)),
        ("on-unhealthy", raw.on_unhealthy.as_ref().map(Spanned::span)),
    ];
    for (key, span) in spans {
        if let Some(span) = span {
            cx.err(span, Problem::HealthKeyAlone { key });
        }
    }
}

fn check_of(
    cx: &mut Ctx,
    check: Spanned<RawHealth>,
    env: &[(String, String)],
    cwd: Option<&Path>,
) -> Option<HealthCheck> {
    let span = check.span();
    match check.into_inner() {
        RawHealth {
            tcp: Some(addr),
            http: None,
            exec: None,
        } => match addr.get_ref().trim().parse::<SocketAddr>() {
            Ok(a) => Some(HealthCheck::Tcp(a)),
            Err(_) => {
                let value = addr.get_ref().clone();
                cx.err(addr.span(), Problem::TcpAddress { value });
                None
            }
        },
        RawHealth {
            tcp: None,
            http: Some(url),
            exec: None,
        } => match parse_http_url(url.get_ref()) {
            Ok(check) => Some(check),
            Err(reason) => {
                let value = url.get_ref().clone();
                cx.err(url.span(), Problem::HttpUrl { value, reason });
                None
            }
        },
        RawHealth {
            tcp: None,
            http: None,
            exec: Some(cmd),
        } => {
            let span = cmd.span();
            let (argv, form) = argv(cmd.into_inner());
            let program = resolve(cx, span, &argv, form, env, cwd, "health command")?;
            Some(HealthCheck::Exec {
                argv: argv.into_iter().map(std::ffi::OsString::from).collect(),
                program,
            })
        }
        _ => {
            cx.err(span, Problem::HealthOne);
            None
        }
    }
}

/// `http://HOST[:PORT][/PATH]` where HOST is an IP address (IPv6 in
/// brackets) or `localhost`: PID 1 resolves no names (a lookup would block
/// its loop). No TLS.
pub fn parse_http_url(url: &str) -> Result<HealthCheck, &'static str> {
    let rest = url
        .trim()
        .strip_prefix("http://")
        .ok_or("expected http://IP:PORT/PATH (no https)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if path.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return Err("the path has spaces or control characters");
    }
    if authority.contains('@') {
        return Err("user info is not supported");
    }
    let (host, port) = split_port(authority)?;
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| "the host must be an IP address or localhost")?,
    };
    Ok(HealthCheck::Http {
        addr: SocketAddr::new(ip, port),
        host: authority.to_string(),
        path: path.to_string(),
    })
}

/// `host:port`, `[v6]:port`, or a host alone (port 80).
fn split_port(authority: &str) -> Result<(&str, u16), &'static str> {
    let colon = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return Ok((authority, 80)),
    };
    let (host, port) = (&authority[..colon], &authority[colon.saturating_add(1)..]);
    let port = port.parse().map_err(|_| "invalid port")?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(addr: &str, host: &str, path: &str) -> HealthCheck {
        HealthCheck::Http {
            addr: addr.parse().unwrap(),
            host: host.into(),
            path: path.into(),
        }
    }

    #[test]
    fn urls() {
        let ok = |u| parse_http_url(u).unwrap();
        assert_eq!(
            ok("http://127.0.0.1:8080/healthz"),
            http("127.0.0.1:8080", "127.0.0.1:8080", "/healthz")
        );
        assert_eq!(ok("http://localhost"), http("127.0.0.1:80", "localhost", "/"));
        assert_eq!(ok("http://[::1]:81/a?b=c"), http("[::1]:81", "[::1]:81", "/a?b=c"));
        assert_eq!(ok("http://[::1]/"), http("[::1]:80", "[::1]", "/"));
        for bad in [
            "https://127.0.0.1/",
            "http://example.com/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1/a b",
            "127.0.0.1:80",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }
}
