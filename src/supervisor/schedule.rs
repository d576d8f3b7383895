//! Cron schedules of oneshot units: the standard 5-field syntax (minute,
//! hour, day of month, month, day of week, with lists, ranges, steps and
//! the names `jan`..`dec`, `sun`..`sat`) and the `@hourly`, `@daily`,
//! `@weekly`, `@monthly`, `@yearly` shorthands, in UTC or at a fixed offset
//! from it. Pure: [`Schedule::next_after`] maps a Unix time to the next
//! matching minute.
//!
//! Our own parser rather than a crate: the syntax is small, and this keeps
//! PID 1 free of a date-time library. As Vixie cron: when both the day of
//! month and the day of week are restricted (neither starts with `*`), a
//! day matching either runs; otherwise a day must match both.
// Field values are small and checked; times are bounded to years 0..9999
// before any day arithmetic.
#![allow(clippy::arithmetic_side_effects)]

use std::fmt;

use super::zone::Zone;

/// A parsed `schedule`, with the offset from UTC its fields are read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Each restricted (the field does not start with `*`).
    days_restricted: bool,
    weekdays_restricted: bool,
    /// Where the fields are read.
    zone: Zone,
}

/// Why a schedule or time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("expected 5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly, got {0}")]
    Fields(usize),
    #[error("unknown shorthand \"{0}\" (@hourly, @daily, @weekly, @monthly, @yearly)")]
    Shorthand(String),
    #[error("invalid {field} \"{value}\": expected a number from {min} to {max}{names}")]
    Value {
        field: &'static str,
        value: String,
        min: u32,
        max: u32,
        names: &'static str,
    },
    #[error("invalid step \"{value}\" in the {field} field: expected a number from 1")]
    Step { field: &'static str, value: String },
    #[error("invalid range \"{value}\" in the {field} field: its start is after its end")]
    Range { field: &'static str, value: String },
    #[error("this schedule never runs: no month has such a day")]
    Never,
    #[error("unknown time zone \"{0}\": expected \"UTC\", an offset like \"+02:00\", \"local\" or a name like \"Europe/Paris\"")]
    Zone(String),
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`...
    names: &'static [&'static str],
    hint: &'static str,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    hint: "",
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    hint: "",
};
const DAY: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    hint: "",
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    hint: " or jan..dec",
};
/// 7 is Sunday too.
const WEEKDAY: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    hint: " or sun..sat",
};

/// Days searched for a match: 28 years, the Gregorian weekday-and-date
/// cycle (with leap days) within a century.
const SEARCH_DAYS: i64 = 366 * 28;

impl Schedule {
    /// Parses a schedule read in UTC.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        let expanded = match text.strip_prefix('@') {
            Some(word) => shorthand(word)?,
            None => text,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(ScheduleError::Fields(fields.len()));
        };
        let mut weekdays = parse_field(weekday, &WEEKDAY)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        let schedule = Schedule {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days: parse_field(day, &DAY)?,
            months: parse_field(month, &MONTH)?,
            weekdays,
            days_restricted: !day.starts_with('*'),
            weekdays_restricted: !weekday.starts_with('*'),
            zone: Zone::Fixed(0),
        };
        // 1970 to 1998 holds every kind of year: a schedule with no match
        // there (February 30) has none ever.
        match schedule.next_after(0) {
            Some(_) => Ok(schedule),
            None => Err(ScheduleError::Never),
        }
    }

    /// The same schedule read at `offset` seconds east of UTC.
    pub fn at_offset(self, offset: i32) -> Schedule {
        self.in_zone(Zone::Fixed(offset))
    }

    /// The same schedule read in `zone`.
    pub fn in_zone(self, zone: Zone) -> Schedule {
        Schedule { zone, ..self }
    }

    /// The first matching minute strictly after Unix time `t` (seconds),
    /// as Unix seconds; `None` if none within 28 years (never, for a
    /// schedule that [`Schedule::parse`] accepted, but for absurd times).
    ///
    /// Across a change of the zone's offset the local clock is followed as
    /// it reads: the minutes it skips (spring forward) have no run, the
    /// ones it shows twice (fall back) run once, the first time.
    pub fn next_after(&self, t: i64) -> Option<i64> {
        // Years 0 to 9999: far from any overflow below.
        if !(-62_167_219_200..=253_402_300_799).contains(&t) {
            return None;
        }
        let (mut at, mut local_from) = (t, None);
        // Two changes a year over the 28 years searched, with room.
        for _ in 0..128 {
            let offset = self.zone.offset_at(at);
            let from = local_from.unwrap_or(at + offset);
            let run = self.next_local(from)? - offset;
            match self.zone.next_change(at) {
                Some(change) if run >= change => {
                    // Go on from the change, never before a local time
                    // already passed.
                    let after = self.zone.offset_at(change);
                    local_from = Some((change + after - 1).max(change - 1 + offset));
                    at = change;
                }
                _ => return Some(run),
            }
        }
        None
    }

    /// The first matching local minute strictly after local time `local`
    /// (Unix seconds as if the zone were UTC).
    fn next_local(&self, local: i64) -> Option<i64> {
        let minute = local.div_euclid(60) + 1;
        let first = minute.div_euclid(1440);
        for day in first..first + SEARCH_DAYS {
            // the first day from the next minute on, the others whole
            let from = if day == first { minute.rem_euclid(1440) } else { 0 };
            if !self.runs_on(day) {
                continue;
            }
            if let Some(at) = self.first_minute(from) {
                return Some((day * 1440 + at) * 60);
            }
        }
        None
    }

    fn runs_on(&self, day: i64) -> bool {
        let (_, month, dom) = civil_from_days(day);
        let weekday = (day + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        let by_date = bit(self.days, dom);
        let by_weekday = bit(self.weekdays, weekday);
        let by_day = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_date || by_weekday,
            _ => by_date && by_weekday,
        };
        bit(self.months, month) && by_day
    }

    /// The first matching minute of a day at or after minute `from` of it.
    fn first_minute(&self, from: i64) -> Option<i64> {
        (from..1440).find(|m| bit(self.hours, m / 60) && bit(self.minutes, m % 60))
    }
}

fn bit(mask: u64, n: i64) -> bool {
    (0..64).contains(&n) && mask & (1 << n) != 0
}

fn shorthand(word: &str) -> Result<&'static str, ScheduleError> {
    Ok(match word.to_ascii_lowercase().as_str() {
        "hourly" => "0 * * * *",
        "daily" | "midnight" => "0 0 * * *",
        "weekly" => "0 0 * * 0",
        "monthly" => "0 0 1 * *",
        "yearly" | "annually" => "0 0 1 1 *",
        _ => return Err(ScheduleError::Shorthand(format!("@{word}"))),
    })
}

/// One field: comma-separated `*`, `N`, `A-B`, each with an optional `/STEP`.
fn parse_field(text: &str, field: &Field) -> Result<u64, ScheduleError> {
    let mut mask = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        let step = match step {
            None => 1,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    let value = s.to_string();
                    return Err(ScheduleError::Step {
                        field: field.name,
                        value,
                    });
                }
            },
        };
        let (first, last) = match range.split_once('-') {
            _ if range == "*" => (field.min, field.max),
            Some((a, b)) => (value(a, field)?, value(b, field)?),
            // `N/STEP` runs from N to the end, as in Vixie cron.
            None if step > 1 || part.contains('/') => (value(range, field)?, field.max),
            None => {
                let n = value(range, field)?;
                (n, n)
            }
        };
        if first > last {
            let value = range.to_string();
            return Err(ScheduleError::Range {
                field: field.name,
                value,
            });
        }
        for n in (first..=last).step_by(step as usize) {
            mask |= 1 << n;
        }
    }
    Ok(mask)
}

fn value(text: &str, field: &Field) -> Result<u32, ScheduleError> {
    let lower = text.to_ascii_lowercase();
    let named = field.names.iter().position(|n| *n == lower);
    let number = named.map(|i| i as u32 + field.min).or_else(|| text.parse().ok());
    match number {
        Some(n) if (field.min..=field.max).contains(&n) => Ok(n),
        _ => Err(ScheduleError::Value {
            field: field.name,
            value: text.to_string(),
            min: field.min,
            max: field.max,
            names: field.hint,
        }),
    }
}

/// `schedule-timezone`: `UTC` (or `Z`), or a fixed offset `+HH:MM`,
/// `-HH:MM`, `+HH`; seconds east of UTC.
pub fn parse_offset(text: &str) -> Result<i32, ScheduleError> {
    let bad = || ScheduleError::Zone(text.to_string());
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "00"));
    let two_digits = |s: &str| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i32>().ok())
            .flatten()
    };
    match (two_digits(hours), two_digits(minutes)) {
        (Some(h), Some(m)) if h <= 14 && m < 60 => Ok(sign * (h * 3600 + m * 60)),
        _ => Err(bad()),
    }
}

/// (year, month 1..=12, day 1..=31) of days since 1970-01-01, by Howard
/// Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a date (month 1..=12), the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `2026-11-30T10:35:00Z`, for messages.
pub struct Utc(pub i64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = civil_from_days(self.0.div_euclid(86_400));
        let s = self.0.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time.
    fn at(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    fn next(text: &str, from: i64) -> String {
        let t = Schedule::parse(text).unwrap().next_after(from).unwrap();
        Utc(t).to_string()
    }

    #[test]
    fn civil_dates_round_trip() {
        for t in [
            0,
            at(2000, 2, 29, 0, 0),
            at(2024, 12, 31, 23, 59),
            at(1969, 12, 31, 0, 0),
        ] {
            let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
            assert_eq!(at(y, mo, d, 0, 0), t.div_euclid(86_400) * 86_400);
        }
        assert_eq!(Utc(at(2026, 11, 30, 10, 35) + 7).to_string(), "2026-11-30T10:35:07Z");
    }

    #[test]
    fn every_five_minutes_runs_strictly_after_now() {
        let now = at(2026, 11, 30, 10, 35);
        assert_eq!(next("*/5 * * * *", now), "2026-11-30T10:40:00Z");
        assert_eq!(next("*/5 * * * *", now - 1), "2026-11-30T10:35:00Z");
        assert_eq!(next("* * * * *", now + 59), "2026-11-30T10:36:00Z");
    }

    #[test]
    fn month_ends_roll_over() {
        let new_year = at(2026, 12, 31, 23, 59);
        assert_eq!(next("0 0 * * *", new_year), "2027-01-01T00:00:00Z");
        // the 31st skips months without one
        assert_eq!(next("0 12 31 * *", at(2026, 4, 1, 0, 0)), "2026-05-31T12:00:00Z");
        assert_eq!(next("@monthly", at(2026, 1, 31, 0, 0)), "2026-02-01T00:00:00Z");
        assert_eq!(next("0 0 30 * *", at(2026, 1, 30, 0, 0)), "2026-03-30T00:00:00Z");
    }

    #[test]
    fn february_29_waits_for_a_leap_year() {
        assert_eq!(next("0 0 29 2 *", at(2025, 3, 1, 0, 0)), "2028-02-29T00:00:00Z");
        assert_eq!(next("0 0 29 feb *", at(2096, 3, 1, 0, 0)), "2104-02-29T00:00:00Z");
        assert_eq!(next("59 23 28-29 2 *", at(2024, 2, 28, 23, 59)), "2024-02-29T23:59:00Z");
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert_eq!(Schedule::parse("0 0 30 2 *"), Err(ScheduleError::Never));
        assert_eq!(Schedule::parse("0 0 31 4,6,9,11 *"), Err(ScheduleError::Never));
        assert!(Schedule::parse("0 0 31 4,5 *").is_ok());
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_restricted() {
        // 2026-11-30 is a Monday
        let monday = at(2026, 11, 30, 0, 0);
        assert_eq!(next("0 0 * * mon", monday), "2026-12-07T00:00:00Z");
        assert_eq!(next("0 0 15 * 1", monday), "2026-12-07T00:00:00Z");
        assert_eq!(next("0 0 15 * sun", monday), "2026-12-06T00:00:00Z");
        // a starred day of month does not widen the day of week
        assert_eq!(next("0 0 */2 * 0", monday), "2026-12-13T00:00:00Z");
        // 7 is Sunday too
        assert_eq!(next("0 0 * * 7", monday), "2026-12-06T00:00:00Z");
        assert_eq!(next("0 0 * * 5-7", monday), "2026-12-04T00:00:00Z");
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let s = Schedule::parse("0,30 9-17/4 * JAN-mar,Dec *").unwrap();
        assert_eq!(s.minutes, 1 | 1 << 30);
        assert_eq!(s.hours, 1 << 9 | 1 << 13 | 1 << 17);
        assert_eq!(s.months, 0b1_0000_0000_1110);
        assert_eq!(
            Schedule::parse("5/20 * * * *").unwrap().minutes,
            1 << 5 | 1 << 25 | 1 << 45
        );
        assert_eq!(Schedule::parse("@hourly"), Schedule::parse("0 * * * *"));
        assert_eq!(Schedule::parse("@YEARLY"), Schedule::parse("0 0 1 1 *"));
        assert_eq!(Schedule::parse("@weekly"), Schedule::parse("0 0 * * sun"));
    }

    #[test]
    fn bad_fields_say_what_is_wrong() {
        let e = |text: &str| Schedule::parse(text).unwrap_err().to_string();
        assert!(e("* * * *").starts_with("expected 5 fields"), "{}", e("* * * *"));
        assert_eq!(e("60 * * * *"), "invalid minute \"60\": expected a number from 0 to 59");
        assert_eq!(
            e("* * 0 * *"),
            "invalid day of month \"0\": expected a number from 1 to 31"
        );
        assert_eq!(
            e("* * * foo *"),
            "invalid month \"foo\": expected a number from 1 to 12 or jan..dec"
        );
        assert_eq!(
            e("*/0 * * * *"),
            "invalid step \"0\" in the minute field: expected a number from 1"
        );
        assert_eq!(
            e("* 5-1 * * *"),
            "invalid range \"5-1\" in the hour field: its start is after its end"
        );
        assert_eq!(
            e("@reboot"),
            "unknown shorthand \"@reboot\" (@hourly, @daily, @weekly, @monthly, @yearly)"
        );
        assert_eq!(
            e("* * * * 8"),
            "invalid day of week \"8\": expected a number from 0 to 7 or sun..sat"
        );
        assert_eq!(e("1,,2 * * * *"), "invalid minute \"\": expected a number from 0 to 59");
    }

    #[test]
    fn fixed_offsets_shift_the_fields() {
        assert_eq!(parse_offset("UTC"), Ok(0));
        assert_eq!(parse_offset("+02:00"), Ok(7200));
        assert_eq!(parse_offset("-05:30"), Ok(-19_800));
        assert_eq!(parse_offset("+01"), Ok(3600));
        for bad in ["local", "Europe/Paris", "+2", "+15:00", "02:00", "+02:60", ""] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
        // daily at 02:00 at +02:00 is midnight UTC
        let s = Schedule::parse("0 2 * * *").unwrap().at_offset(7200);
        assert_eq!(
            Utc(s.next_after(at(2026, 3, 1, 12, 0)).unwrap()).to_string(),
            "2026-03-02T00:00:00Z"
        );
        // the day boundary is the offset's: Monday 01:00 at +02:00 is Sunday 23:00 UTC
        let s = Schedule::parse("0 1 * * mon").unwrap().at_offset(7200);
        assert_eq!(
            Utc(s.next_after(at(2026, 11, 29, 0, 0)).unwrap()).to_string(),
            "2026-11-29T23:00:00Z"
        );
    }

    #[test]
    fn daylight_saving_skips_missing_minutes_and_runs_repeated_ones_once() {
        let paris = Zone::from_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let daily = |text: &str| Schedule::parse(text).unwrap().in_zone(paris.clone());
        // 02:30 does not exist on 2026-03-29 in Paris: no run that day
        let s = daily("30 2 * * *");
        let t = s.next_after(at(2026, 3, 28, 12, 0)).unwrap();
        assert_eq!(Utc(t).to_string(), "2026-03-30T00:30:00Z");
        // 03:00 CEST right after the jump runs, at 01:00 UTC
        let s = daily("0 3 * * *");
        assert_eq!(
            Utc(s.next_after(at(2026, 3, 28, 12, 0)).unwrap()).to_string(),
            "2026-03-29T01:00:00Z"
        );
        // 02:30 happens twice on 2026-10-25: one run, the first (CEST)
        let s = daily("30 2 * * *");
        let first = s.next_after(at(2026, 10, 24, 12, 0)).unwrap();
        assert_eq!(Utc(first).to_string(), "2026-10-25T00:30:00Z");
        assert_eq!(Utc(s.next_after(first).unwrap()).to_string(), "2026-10-26T01:30:00Z");
        // every 30 minutes through the repeated hour: each local time once
        let s = daily("*/30 * * * *");
        let mut t = at(2026, 10, 25, 0, 0);
        let mut runs = Vec::new();
        for _ in 0..4 {
            t = s.next_after(t).unwrap();
            runs.push(Utc(t).to_string());
        }
        assert_eq!(
            runs,
            [
                "2026-10-25T00:30:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T02:30:00Z",
                "2026-10-25T03:00:00Z"
            ]
        );
        // noon every day stays at local noon across the year
        let s = daily("0 12 * * *");
        assert_eq!(
            Utc(s.next_after(at(2026, 1, 1, 0, 0)).unwrap()).to_string(),
            "2026-01-01T11:00:00Z"
        );
        assert_eq!(
            Utc(s.next_after(at(2026, 7, 1, 0, 0)).unwrap()).to_string(),
            "2026-07-01T10:00:00Z"
        );
    }
}
