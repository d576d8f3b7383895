//! The one error type of unit loading: a [`Problem`] found in a file, at a
//! line and column when it has one. Every problem of every file is gathered;
//! none stops the loading of the others.

use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column (in characters) in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One problem, located: printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {problem}", file.display(), At(*at))]
pub struct UnitError {
    pub file: PathBuf,
    /// `None` for problems of the whole file or directory.
    pub at: Option<Position>,
    pub problem: Problem,
}

/// Renders `:LINE:COL` when there is a position.
struct At(Option<Position>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, ":{}:{}", p.line, p.column),
            None => Ok(()),
        }
    }
}

/// `, did you mean "x"?` when there is a suggestion.
pub(crate) struct Hint<'a>(pub &'a Option<String>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, ", did you mean \"{s}\"?"),
            None => Ok(()),
        }
    }
}

/// What is wrong. Messages are lowercase, without a trailing period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("cannot read unit directory: {reason}")]
    NoDir { reason: String },
    #[error("cannot read unit file: {reason}")]
    Read { reason: String },
    #[error("invalid unit name {name:?}: use letters, digits and _ . @ - (not starting with .)")]
    InvalidName { name: String },
    #[error("{message}")]
    Syntax { message: String },
    #[error("unknown key {key:?}{}{}", In(table), Hint(hint))]
    UnknownKey {
        key: String,
        table: Option<String>,
        hint: Option<String>,
    },
    #[error("{key}: {message}")]
    Type { key: String, message: String },
    #[error("missing required key \"command\"")]
    MissingCommand,
    #[error("{key} is empty")]
    Empty { key: String },
    #[error("{key} holds a NUL byte, which no program can be given")]
    Nul { key: String },
    #[error("unknown {key} {value:?}{}", Choices(expected, hint))]
    UnknownChoice {
        key: String,
        value: String,
        expected: &'static [&'static str],
        hint: Option<String>,
    },
    #[error("invalid duration {value:?} for {key}: {reason}")]
    Duration { key: String, value: String, reason: String },
    #[error("unknown signal {value:?}")]
    Signal { value: String },
    #[error("unknown {kind} {name:?}{}", Hint(hint))]
    UnknownId {
        kind: &'static str,
        name: String,
        hint: Option<String>,
    },
    #[error("{kind} id {value} is out of range")]
    IdRange { kind: &'static str, value: u64 },
    #[error("\"ready\" applies to simple services only, this one is {service_type}")]
    ReadyNotSimple { service_type: &'static str },
    #[error("\"ready-timeout\" on a simple service needs a \"ready\" check")]
    ReadyTimeoutAlone,
    #[error("\"watchdog\" applies to notify services only, this one is {service_type}")]
    WatchdogNotNotify { service_type: &'static str },
    #[error("watchdog must be above 0")]
    WatchdogZero,
    #[error("\"watchdog-signal\" needs a \"watchdog\"")]
    WatchdogSignalAlone,
    #[error("invalid {key} \"{value}\": {reason}")]
    Schedule {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("\"schedule\" applies to oneshot services only, this one is {service_type}")]
    ScheduleNotOneshot { service_type: &'static str },
    #[error("\"schedule-timezone\" needs a \"schedule\"")]
    TimezoneAlone,
    #[error("ready needs exactly one of \"tcp\" or \"exec\"")]
    ReadyOne,
    #[error("invalid tcp address {value:?}: expected IP:PORT like \"127.0.0.1:8080\"")]
    TcpAddress { value: String },
    #[error("health needs exactly one of \"tcp\", \"http\" or \"exec\"")]
    HealthOne,
    #[error("invalid http url \"{value}\": {reason}")]
    HttpUrl { value: String, reason: &'static str },
    #[error("\"health\" applies to long-running services, this one is oneshot")]
    HealthOneshot,
    #[error("\"{key}\" needs a \"health\" check")]
    HealthKeyAlone { key: &'static str },
    #[error("{key} must be at least {min}")]
    TooSmall { key: &'static str, min: &'static str },
    #[error("{key} must be at most {max}")]
    TooLarge { key: &'static str, max: &'static str },
    #[error("invalid size \"{value}\" for {key}: expected bytes or a number with K, M or G, like \"10M\"")]
    Size { key: String, value: String },
    #[error("{key}: max-files needs max-size")]
    MaxFilesAlone { key: String },
    #[error("restart-delay ({delay}) is above restart-delay-max ({max})")]
    DelayAboveMax { delay: String, max: String },
    #[error("start-limit-burst must be at least 1")]
    BurstZero,
    #[error("invalid limit {value:?} for {resource}: expected a number or \"infinity\"")]
    LimitValue { resource: String, value: String },
    #[error("soft limit of {resource} ({soft}) is above its hard limit ({hard})")]
    SoftAboveHard {
        resource: &'static str,
        soft: String,
        hard: String,
    },
    #[error(
        "cannot raise the hard limit of {resource} to {hard} above the current {ceiling}: tend lacks CAP_SYS_RESOURCE"
    )]
    HardAboveCeiling {
        resource: &'static str,
        hard: String,
        ceiling: u64,
    },
    #[error("invalid {key} {value}: {reason}")]
    Resource {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("memory-high ({high}) is above memory-max ({max})")]
    HighAboveMax { high: String, max: String },
    #[error("{key} needs the {controller} cgroup controller, which this host does not offer")]
    NoController {
        key: &'static str,
        controller: &'static str,
    },
    #[error("{key} must be an absolute path, got {path:?}")]
    NotAbsolute { key: String, path: String },
    #[error("invalid environment variable name {name:?}")]
    EnvName { name: String },
    #[error("cannot read env-file {path:?}: {reason}")]
    EnvFile { path: String, reason: String },
    #[error("expected KEY=VALUE")]
    EnvLine,
    #[error("unterminated quote")]
    EnvQuote,
    #[error("command {program:?} not found in PATH {path:?} under {root}")]
    NotInPath {
        program: String,
        path: String,
        root: String,
    },
    #[error("{what} {program:?} does not exist under {root}")]
    NoProgram {
        what: &'static str,
        program: String,
        root: String,
    },
    #[error("{program:?} is not an executable file")]
    NotExecutable { program: String },
    #[error("{kind} names unknown unit {name:?}{}", Hint(hint))]
    UnknownDependency {
        kind: &'static str,
        name: String,
        hint: Option<String>,
    },
    #[error("requires {name:?}, which is invalid")]
    RequiresInvalid { name: String },
    #[error("dependency cycle: {path}")]
    Cycle { path: String },
    #[error("main = true on more than one unit: {units}")]
    ManyMains { units: String },
}

/// ` in TABLE` for keys of nested tables.
struct In<'a>(&'a Option<String>);

impl fmt::Display for In<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, " in {t}"),
            None => Ok(()),
        }
    }
}

/// A did-you-mean when there is one, else the list of accepted values.
struct Choices<'a>(&'a [&'a str], &'a Option<String>);

impl fmt::Display for Choices<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1.is_some() {
            return Hint(self.1).fmt(f);
        }
        let quoted: Vec<String> = self.0.iter().map(|c| format!("\"{c}\"")).collect();
        write!(f, ", expected one of {}", quoted.join(", "))
    }
}
