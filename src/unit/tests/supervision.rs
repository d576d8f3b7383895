//! The keys of issue 12's supervision rules: `on-failure`, `watchdog`,
//! `watchdog-signal`, `schedule`, `schedule-timezone`.

use super::*;
use crate::supervisor::{OnFailure, Schedule};

/// Every key that a simple service cannot have, on a notify service.
pub const FULL_NOTIFY: &str = r#"
command = ["sh"]
type = "notify"
watchdog = "30s"
watchdog-signal = "SIGKILL"
"#;

/// Every key that a simple service cannot have, on a oneshot.
pub const FULL_SCHEDULED: &str = r#"
command = ["sh"]
type = "oneshot"
schedule = "30 2 * * mon-fri"
schedule-timezone = "+02:00"
"#;

#[test]
fn on_failure_is_unset_none_or_shutdown() {
    assert_eq!(unit("command = [\"sh\"]").service.on_failure, None);
    let u = unit("command = [\"sh\"]\non-failure = \"none\"");
    assert_eq!(u.service.on_failure, Some(OnFailure::None));
    assert_eq!(
        errors("command = [\"sh\"]\non-failure = \"shutdwn\""),
        ["units/web.toml:2:14: unknown on-failure \"shutdwn\", did you mean \"shutdown\"?"]
    );
    assert_eq!(
        errors("command = [\"sh\"]\non-failure = \"exit\""),
        ["units/web.toml:2:14: unknown on-failure \"exit\", expected one of \"none\", \"shutdown\""]
    );
}

#[test]
fn watchdog_and_its_signal() {
    let u = unit(FULL_NOTIFY);
    assert_eq!(u.service.watchdog, Some(Duration::from_secs(30)));
    assert_eq!(u.service.watchdog_signal, libc::SIGKILL);
    let plain = unit("command = [\"sh\"]\ntype = \"notify\"\nwatchdog = \"1s\"");
    assert_eq!(plain.service.watchdog_signal, libc::SIGABRT);
    assert_eq!(unit("command = [\"sh\"]").service.watchdog, None);
}

#[test]
fn bad_watchdogs_are_located() {
    assert_eq!(
        errors("command = [\"sh\"]\nwatchdog = \"30s\""),
        ["units/web.toml:2:12: \"watchdog\" applies to notify services only, this one is simple"]
    );
    assert_eq!(
        errors("command = [\"sh\"]\ntype = \"notify\"\nwatchdog = \"0s\""),
        ["units/web.toml:3:12: watchdog must be above 0"]
    );
    assert_eq!(
        errors("command = [\"sh\"]\ntype = \"notify\"\nwatchdog = \"soon\""),
        ["units/web.toml:3:12: invalid duration \"soon\" for watchdog: expected number at 0"]
    );
    assert_eq!(
        errors("command = [\"sh\"]\ntype = \"notify\"\nwatchdog-signal = \"ABRT\""),
        ["units/web.toml:3:19: \"watchdog-signal\" needs a \"watchdog\""]
    );
    assert_eq!(
        errors("command = [\"sh\"]\ntype = \"notify\"\nwatchdog = \"1s\"\nwatchdog-signal = \"SIGNOPE\""),
        ["units/web.toml:4:19: unknown signal \"SIGNOPE\""]
    );
    assert_eq!(
        errors("command = [\"sh\"]\nwatchdgo = \"1s\""),
        ["units/web.toml:2:1: unknown key \"watchdgo\", did you mean \"watchdog\"?"]
    );
}

#[test]
fn schedule_and_its_timezone() {
    let u = unit(FULL_SCHEDULED);
    let expected = Schedule::parse("30 2 * * 1-5").unwrap().at_offset(7200);
    assert_eq!(u.service.schedule.as_deref(), Some(&expected));
    let utc = unit("command = [\"sh\"]\ntype = \"oneshot\"\nschedule = \"@daily\"");
    assert_eq!(utc.service.schedule.map(|s| *s), Schedule::parse("0 0 * * *").ok());
}

#[test]
fn bad_schedules_are_located() {
    let oneshot = "command = [\"sh\"]\ntype = \"oneshot\"\n";
    assert_eq!(
        errors(&format!("{oneshot}schedule = \"*/5 * * *\"")),
        ["units/web.toml:3:12: invalid schedule \"*/5 * * *\": expected 5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly, got 4"]
    );
    assert_eq!(
        errors(&format!("{oneshot}schedule = \"0 0 30 feb *\"")),
        ["units/web.toml:3:12: invalid schedule \"0 0 30 feb *\": this schedule never runs: no month has such a day"]
    );
    assert_eq!(
        errors(&format!("{oneshot}schedule = \"0 25 * * *\"")),
        ["units/web.toml:3:12: invalid schedule \"0 25 * * *\": invalid hour \"25\": expected a number from 0 to 23"]
    );
    assert_eq!(
        errors(&format!("{oneshot}schedule = \"@daily\"\nschedule-timezone = \"CEST\"")),
        ["units/web.toml:4:21: invalid schedule-timezone \"CEST\": cannot read /usr/share/zoneinfo/CEST: No such file or directory"]
    );
    assert_eq!(
        errors(&format!("{oneshot}schedule = \"@daily\"\nschedule-timezone = \"../../etc/passwd\"")),
        ["units/web.toml:4:21: invalid schedule-timezone \"../../etc/passwd\": unknown time zone \"../../etc/passwd\": expected \"UTC\", an offset like \"+02:00\", \"local\" or a name like \"Europe/Paris\""]
    );
    assert_eq!(
        errors(&format!("{oneshot}schedule-timezone = \"UTC\"")),
        ["units/web.toml:3:21: \"schedule-timezone\" needs a \"schedule\""]
    );
    assert_eq!(
        errors("command = [\"sh\"]\nschedule = \"@hourly\""),
        ["units/web.toml:2:12: \"schedule\" applies to oneshot services only, this one is simple"]
    );
    assert_eq!(
        errors(&format!("{oneshot}schedul = \"@hourly\"")),
        ["units/web.toml:3:1: unknown key \"schedul\", did you mean \"schedule\"?"]
    );
}

/// The test environment with a time zone database of one zone, which is
/// also the local one.
fn zoned(text: &str) -> (Option<Unit>, Vec<String>) {
    let mut env = env();
    let paris = "TZif2 binary table\n\nCET-1CEST,M3.5.0,M10.5.0/3\n".to_string();
    env.texts
        .insert("/usr/share/zoneinfo/Europe/Paris".into(), paris.clone());
    env.texts.insert("/etc/localtime".into(), paris);
    env.texts
        .insert("/usr/share/zoneinfo/Old".into(), "TZif\0 version 1 table".into());
    let file = Path::new("units/web.toml");
    let (checked, errors) = check_text("web", file, text, &env, Path::new("units"));
    (
        checked.map(|c| c.unit),
        errors.iter().map(ToString::to_string).collect(),
    )
}

#[test]
fn time_zones_come_from_the_environments_database() {
    let oneshot = "command = [\"sh\"]\ntype = \"oneshot\"\nschedule = \"0 3 * * *\"\n";
    let paris = crate::supervisor::zone::Zone::from_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
    let expected = Schedule::parse("0 3 * * *").unwrap().in_zone(paris);
    for zone in ["Europe/Paris", "local"] {
        let (unit, errors) = zoned(&format!("{oneshot}schedule-timezone = \"{zone}\""));
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(unit.unwrap().service.schedule.as_deref(), Some(&expected), "{zone}");
    }
    let (_, errors) = zoned(&format!("{oneshot}schedule-timezone = \"Old\""));
    assert_eq!(
        errors,
        ["units/web.toml:4:21: invalid schedule-timezone \"Old\": /usr/share/zoneinfo/Old: a TZif file without a rule for times after its table (version 1)"]
    );
}
