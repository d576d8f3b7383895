//! Time zones of schedules: a fixed offset from UTC, or the daylight-saving
//! rule of a POSIX `TZ` string such as `CET-1CEST,M3.5.0,M10.5.0/3`, which
//! is what the last line of a TZif file (`/etc/localtime`,
//! `/usr/share/zoneinfo/NAME`) holds for every time after its table: all a
//! scheduler needs, since it only looks ahead. Pure: the unit module reads
//! the file and hands its bytes to [`Zone::from_tzif`].
// Offsets and rule times are bounded by the parser (a week at most); times
// are bounded by the caller (years 0 to 9999).
#![allow(clippy::arithmetic_side_effects)]

use super::schedule::{civil_from_days, days_from_civil};

/// Seconds east of UTC, at any time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    Fixed(i32),
    Rules(Box<Rules>),
}

/// Standard time, and daylight-saving time between two yearly instants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    std_east: i64,
    dst_east: i64,
    /// DST starts at this local standard time...
    start: (Day, i64),
    /// ...and ends at this local daylight time.
    end: (Day, i64),
}

/// A day of the year, as `TZ` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Day {
    /// `Jn`: 1..=365, February 29 never counted.
    Julian(i64),
    /// `n`: 0..=365, February 29 counted.
    Zero(i64),
    /// `Mm.w.d`: day `d` (0 Sunday) of week `w` (5: the last) of month `m`.
    Month { month: i64, week: i64, weekday: i64 },
}

/// Why a zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("not a TZif file")]
    NotTzif,
    #[error("a TZif file without a rule for times after its table (version 1)")]
    NoRule,
    #[error("invalid TZ rule \"{0}\"")]
    Rule(String),
}

impl Zone {
    /// The zone of a TZif file: the `TZ` rule on its last line.
    pub fn from_tzif(bytes: &[u8]) -> Result<Zone, ZoneError> {
        if !bytes.starts_with(b"TZif") {
            return Err(ZoneError::NotTzif);
        }
        let body = bytes.strip_suffix(b"\n").ok_or(ZoneError::NoRule)?;
        let start = body.iter().rposition(|b| *b == b'\n').ok_or(ZoneError::NoRule)?;
        let rule = body.get(start + 1..).unwrap_or_default();
        let rule = std::str::from_utf8(rule).map_err(|_| ZoneError::NoRule)?;
        if rule.is_empty() || !matches!(bytes.get(4), Some(v) if *v >= b'2') {
            return Err(ZoneError::NoRule);
        }
        Zone::from_tz(rule)
    }

    /// A POSIX `TZ` value: `STD OFFSET [DST [OFFSET] [,START[/TIME],END[/TIME]]]`
    /// (offsets counted west, as POSIX does).
    pub fn from_tz(text: &str) -> Result<Zone, ZoneError> {
        let bad = || ZoneError::Rule(text.to_string());
        let mut p = Parser { rest: text };
        p.name().ok_or_else(bad)?;
        let std_east = -p.offset(24).ok_or_else(bad)?;
        if p.rest.is_empty() {
            return i32::try_from(std_east).map(Zone::Fixed).map_err(|_| bad());
        }
        p.name().ok_or_else(bad)?;
        let dst_east = match p.rest.starts_with(',') || p.rest.is_empty() {
            true => std_east + 3600,
            false => -p.offset(24).ok_or_else(bad)?,
        };
        // POSIX leaves the default rule to the implementation: the US one, as glibc.
        let rules = if p.rest.is_empty() { ",M3.2.0,M11.1.0" } else { p.rest };
        let mut p = Parser { rest: rules };
        let start = p.transition().ok_or_else(bad)?;
        let end = p.transition().ok_or_else(bad)?;
        if !p.rest.is_empty() {
            return Err(bad());
        }
        let rules = Rules {
            std_east,
            dst_east,
            start,
            end,
        };
        Ok(Zone::Rules(Box::new(rules)))
    }

    /// Seconds east of UTC at Unix time `t`.
    pub fn offset_at(&self, t: i64) -> i64 {
        match self {
            Zone::Fixed(east) => i64::from(*east),
            Zone::Rules(r) => match r.in_dst(t) {
                true => r.dst_east,
                false => r.std_east,
            },
        }
    }

    /// The first change of offset strictly after `t`.
    pub fn next_change(&self, t: i64) -> Option<i64> {
        let Zone::Rules(r) = self else { return None };
        let year = r.year_of(t);
        (year - 1..=year + 1)
            .flat_map(|y| [r.starts(y), r.ends(y)])
            .filter(|at| *at > t)
            .min()
    }
}

impl Rules {
    fn year_of(&self, t: i64) -> i64 {
        civil_from_days((t + self.std_east).div_euclid(86_400)).0
    }

    /// When DST starts in `year`, in Unix seconds.
    fn starts(&self, year: i64) -> i64 {
        let (day, time) = self.start;
        day.in_year(year) * 86_400 + time - self.std_east
    }

    fn ends(&self, year: i64) -> i64 {
        let (day, time) = self.end;
        day.in_year(year) * 86_400 + time - self.dst_east
    }

    fn in_dst(&self, t: i64) -> bool {
        let year = self.year_of(t);
        let (start, end) = (self.starts(year), self.ends(year));
        match start < end {
            true => start <= t && t < end,
            // southern hemisphere: DST spans the new year
            false => t < end || start <= t,
        }
    }
}

impl Day {
    /// Days since the epoch of this day in `year`.
    fn in_year(self, year: i64) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        let leap = days_from_civil(year, 3, 1) - days_from_civil(year, 2, 28) == 2;
        match self {
            Day::Julian(n) => jan1 + n - 1 + i64::from(leap && n >= 60),
            Day::Zero(n) => jan1 + n,
            Day::Month { month, week, weekday } => {
                let first = days_from_civil(year, month, 1);
                let next = match month {
                    12 => days_from_civil(year + 1, 1, 1),
                    _ => days_from_civil(year, month + 1, 1),
                };
                let first_weekday = (first + 4).rem_euclid(7);
                let mut day = first + (weekday - first_weekday).rem_euclid(7) + (week - 1) * 7;
                while day >= next {
                    day -= 7;
                }
                day
            }
        }
    }
}

/// Reads a `TZ` value from the left.
struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    /// `ABC` (three letters or more) or `<+03>`.
    fn name(&mut self) -> Option<()> {
        let len = match self.rest.strip_prefix('<') {
            Some(inner) => inner.find('>')? + 2,
            None => self
                .rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(self.rest.len()),
        };
        (len >= 3).then(|| self.rest = self.rest.get(len..).unwrap_or_default())
    }

    /// `[+-]h[h][:mm[:ss]]` in seconds, hours at most `max_hours`.
    fn offset(&mut self, max_hours: i64) -> Option<i64> {
        let sign = match self.rest.as_bytes().first() {
            Some(b'-') => -1,
            _ => 1,
        };
        self.rest = self.rest.trim_start_matches(['+', '-']);
        let hours = self.number(3)?;
        let minutes = if self.rest.starts_with(':') {
            self.after_colon()?
        } else {
            0
        };
        let seconds = if self.rest.starts_with(':') {
            self.after_colon()?
        } else {
            0
        };
        let ok = hours <= max_hours && minutes < 60 && seconds < 60;
        ok.then_some(sign * (hours * 3600 + minutes * 60 + seconds))
    }

    fn after_colon(&mut self) -> Option<i64> {
        self.rest = self.rest.get(1..)?;
        self.number(2)
    }

    /// Up to `digits` decimal digits, at least one.
    fn number(&mut self, digits: usize) -> Option<i64> {
        let len = self.rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(self.rest.len());
        if len == 0 || len > digits {
            return None;
        }
        let (n, rest) = self.rest.split_at(len);
        self.rest = rest;
        n.parse().ok()
    }

    /// `,DAY[/TIME]`; the time defaults to 02:00.
    fn transition(&mut self) -> Option<(Day, i64)> {
        self.rest = self.rest.strip_prefix(',')?;
        let day = self.day()?;
        let time = match self.rest.strip_prefix('/') {
            Some(rest) => {
                self.rest = rest;
                self.offset(167)?
            }
            None => 7200,
        };
        Some((day, time))
    }

    fn day(&mut self) -> Option<Day> {
        if let Some(rest) = self.rest.strip_prefix('J') {
            self.rest = rest;
            let n = self.number(3)?;
            return (1..=365).contains(&n).then_some(Day::Julian(n));
        }
        if let Some(rest) = self.rest.strip_prefix('M') {
            self.rest = rest;
            let month = self.number(2)?;
            self.rest = self.rest.strip_prefix('.')?;
            let week = self.number(1)?;
            self.rest = self.rest.strip_prefix('.')?;
            let weekday = self.number(1)?;
            let ok = (1..=12).contains(&month) && (1..=5).contains(&week) && weekday <= 6;
            return ok.then_some(Day::Month { month, week, weekday });
        }
        let n = self.number(3)?;
        (n <= 365).then_some(Day::Zero(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    const PARIS: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

    #[test]
    fn paris_switches_on_the_last_sundays_of_march_and_october() {
        let z = Zone::from_tz(PARIS).unwrap();
        assert_eq!(z.offset_at(utc(2026, 1, 15, 12, 0)), 3600);
        assert_eq!(z.offset_at(utc(2026, 7, 15, 12, 0)), 7200);
        // 2026-03-29 01:00 UTC (02:00 CET) and 2026-10-25 01:00 UTC (03:00 CEST)
        let spring = utc(2026, 3, 29, 1, 0);
        let autumn = utc(2026, 10, 25, 1, 0);
        assert_eq!((z.offset_at(spring - 1), z.offset_at(spring)), (3600, 7200));
        assert_eq!((z.offset_at(autumn - 1), z.offset_at(autumn)), (7200, 3600));
        assert_eq!(z.next_change(utc(2026, 1, 1, 0, 0)), Some(spring));
        assert_eq!(z.next_change(spring), Some(autumn));
        assert_eq!(z.next_change(autumn), Some(utc(2027, 3, 28, 1, 0)));
    }

    #[test]
    fn southern_and_odd_rules() {
        // Sydney: DST from the first Sunday of October to the first of April
        let z = Zone::from_tz("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(z.offset_at(utc(2026, 1, 15, 0, 0)), 11 * 3600);
        assert_eq!(z.offset_at(utc(2026, 6, 15, 0, 0)), 10 * 3600);
        assert_eq!(z.offset_at(utc(2026, 12, 15, 0, 0)), 11 * 3600);
        // New York by the default rule, and with Julian days
        let ny = Zone::from_tz("EST5EDT").unwrap();
        assert_eq!(ny.offset_at(utc(2026, 3, 8, 7, 0)), -4 * 3600);
        assert_eq!(ny.offset_at(utc(2026, 3, 8, 6, 59)), -5 * 3600);
        let j = Zone::from_tz("XST3XDT,J60/0,J300").unwrap();
        // J60 is March 1 even in a leap year
        assert_eq!(j.next_change(utc(2028, 1, 1, 0, 0)), Some(utc(2028, 3, 1, 3, 0)));
    }

    #[test]
    fn zones_without_dst_are_fixed() {
        assert_eq!(Zone::from_tz("UTC0"), Ok(Zone::Fixed(0)));
        assert_eq!(Zone::from_tz("<+0530>-5:30"), Ok(Zone::Fixed(19_800)));
        assert_eq!(Zone::from_tz("JST-9"), Ok(Zone::Fixed(9 * 3600)));
        for bad in [
            "",
            "CET",
            "C-1",
            "CET-1CEST,M3.5.0",
            "CET-1CEST,M13.5.0,M10.5.0",
            "CET-1CEST,M3.5.0,M10.5.0/3x",
        ] {
            assert!(Zone::from_tz(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tzif_files_give_their_last_line() {
        let mut file = b"TZif2\0\0\x01\x02 binary table \n".to_vec();
        file.extend_from_slice(b"\n");
        file.extend_from_slice(PARIS.as_bytes());
        file.extend_from_slice(b"\n");
        assert_eq!(Zone::from_tzif(&file), Zone::from_tz(PARIS));
        assert_eq!(Zone::from_tzif(b"TZif2 table\n\n"), Err(ZoneError::NoRule));
        assert_eq!(Zone::from_tzif(b"TZif\0 table"), Err(ZoneError::NoRule));
        assert_eq!(Zone::from_tzif(b"#!/bin/sh\n"), Err(ZoneError::NotTzif));
    }

    #[test]
    fn the_systems_own_files_parse() {
        // Where the machine has a time zone database: each file's rule.
        for name in [
            "Europe/Paris",
            "America/New_York",
            "Australia/Sydney",
            "Etc/UTC",
            "Asia/Kolkata",
        ] {
            if let Ok(bytes) = std::fs::read(format!("/usr/share/zoneinfo/{name}")) {
                assert!(Zone::from_tzif(&bytes).is_ok(), "{name}");
            }
        }
    }
}
