//! `node_systemd_*`: units and their states, from systemd over D-Bus, as node_exporter
//! 1.12's systemd collector reports them.
//!
//! Per cycle (node_exporter opens a connection per scrape; here one on the bus is
//! kept across cycles, see below):
//!
//! 1. `Properties.Get` of the manager's `Version` and `Virtualization`;
//! 2. `Manager.ListUnits`, counted by active state for `node_systemd_units`, then
//!    filtered: loaded units whose name matches `unit_include` and not
//!    `unit_exclude`, both anchored at both ends (`^(?:...)$`, unlike the other
//!    collectors' filters, as node_exporter anchors these);
//! 3. per kept unit, `Properties.Get` of what its type reports: a service's `Type`
//!    (and `NRestarts`, `TasksCurrent`, `TasksMax` when enabled), a mount's `Type`,
//!    an active unit's `ActiveEnterTimestamp` (when enabled), a timer's
//!    `LastTriggerUSec`, a socket's `NAccepted`, `NConnections`, `NRefused`. These
//!    are pipelined, [`WINDOW`] calls in flight, where node_exporter makes them one
//!    at a time from four goroutines;
//! 4. the manager's `SystemState`.
//!
//! Timers and `SystemState` are skipped below systemd 212, as node_exporter skips
//! them. A property that cannot be read (an older systemd without `NRefused`) leaves
//! its series out, as node_exporter does; so does one of an unexpected type (on which
//! node_exporter would panic). A failed `ListUnits` or `SystemState` fails the
//! collector. Series come sorted by label values, as node_exporter's
//! registry serves them.
//!
//! Quirks kept: `node_systemd_socket_refused_connections_total` is a gauge; a socket
//! whose `NAccepted` fails reports neither of the other two, one whose
//! `NConnections` fails does not report `NRefused`; the version label is the
//! `Version` property as Go quotes and trims it, the value its first
//! `[0-9]{3,}(\.[0-9]+)?`, and both are `0` and `""` when unreadable; the
//! virtualization label is `none` when empty and `unknown` when unreadable.
//!
//! Unlike node_exporter, a failed cycle reports none of its series (the registry
//! rolls back), where node_exporter keeps the version it read before failing.
//!
//! Connecting: the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else
//! `/run/dbus/system_bus_socket`) and, when that fails and the agent runs as root,
//! systemd's private socket, as go-systemd's `NewWithContext` does; with `private`
//! only the private socket. Without systemd (a container) every cycle fails with the
//! connect error, which the registry logs once. A connection to the bus is kept
//! across cycles: the bus routes it nothing it did not ask for. One to the private
//! socket is closed after each cycle, as node_exporter's: systemd sends every
//! private connection all its signals unasked (20 messages, 16 KB, for restarting a
//! timer and starting a service, seen with systemd 252), which PID 1 would queue
//! for an idle agent between cycles. When a kept connection breaks (the bus or
//! systemd restarted), the cycle reconnects and starts again, once. The whole
//! exchange of a cycle, connecting included, is bounded by `timeout`: a hung systemd
//! costs one cycle that long and a reconnect, never a stuck loop.

use super::{Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::Millis;
use crate::dbus::{self, connection, Connection, Endpoint, Property};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

/// node_exporter's `--collector.systemd.unit-include` default.
pub const UNIT_INCLUDE: &str = ".+";
/// node_exporter's `--collector.systemd.unit-exclude` default.
pub const UNIT_EXCLUDE: &str = ".+\\.(automount|device|mount|scope|slice)";

/// The most property reads in flight at once (topped up when half are answered),
/// well under dbus-daemon's limit of pending replies per connection (128 on the
/// system bus).
pub const WINDOW: usize = 32;

/// systemd's bus name, manager object and interfaces.
const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const MOUNT: &str = "org.freedesktop.systemd1.Mount";
const TIMER: &str = "org.freedesktop.systemd1.Timer";
const SOCKET: &str = "org.freedesktop.systemd1.Socket";

/// The first systemd with the `SystemState` property and timers' `LastTriggerUSec`.
const MIN_VERSION_SYSTEM_STATE: f64 = 212.0;

/// The active states node_exporter reports for every unit, sorted (node_exporter
/// lists them as active, activating, deactivating, inactive, failed).
const STATES: [&str; 5] = ["activating", "active", "deactivating", "failed", "inactive"];
const ACTIVE: usize = 1;

/// The `systemd` collector's options: node_exporter's `--collector.systemd.*` flags.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Units to report (anchored); `null` for all.
    pub unit_include: Option<UnitPattern>,
    /// Units to leave out (anchored); `null` for none.
    pub unit_exclude: Option<UnitPattern>,
    /// `node_systemd_unit_tasks_current` and `_max` for services.
    pub enable_task_metrics: bool,
    /// `node_systemd_service_restart_total`.
    pub enable_restarts_metrics: bool,
    /// `node_systemd_unit_start_time_seconds`.
    pub enable_start_time_metrics: bool,
    /// Talk to systemd's private socket only, not the system bus (needs root).
    pub private: bool,
    /// How long one cycle's exchange with systemd may take, connecting included
    /// (sc-agent's own; node_exporter waits as long as the scrape does).
    pub timeout: Millis,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // Constants, checked by the tests.
            unit_include: UnitPattern::new(UNIT_INCLUDE).ok(),
            unit_exclude: UnitPattern::new(UNIT_EXCLUDE).ok(),
            enable_task_metrics: false,
            enable_restarts_metrics: false,
            enable_start_time_metrics: false,
            private: false,
            timeout: Millis::from_millis(5_000),
        }
    }
}

/// A unit-name regex, matched against the whole name as node_exporter does.
#[derive(Clone)]
pub struct UnitPattern {
    source: String,
    regex: regex_lite::Regex,
}

impl UnitPattern {
    pub fn new(source: &str) -> Result<Self, String> {
        regex_lite::Regex::new(&format!("^(?:{source})$"))
            .map(|regex| UnitPattern {
                source: source.to_owned(),
                regex,
            })
            .map_err(|e| format!("invalid regular expression {source:?}: {e}"))
    }

    pub fn is_match(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

impl fmt::Debug for UnitPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for UnitPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for UnitPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::config::de::from_str_with(deserializer, "a regular expression", UnitPattern::new)
    }
}

impl Serialize for UnitPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// A property read per unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prop {
    ServiceType,
    MountType,
    Restarts,
    StartTime,
    TasksCurrent,
    TasksMax,
    LastTrigger,
    Accepted,
    Connections,
    Refused,
}

impl Prop {
    /// The interface and the property.
    fn name(self) -> (&'static str, &'static str) {
        match self {
            Prop::ServiceType => (SERVICE, "Type"),
            Prop::MountType => (MOUNT, "Type"),
            Prop::Restarts => (SERVICE, "NRestarts"),
            Prop::StartTime => (UNIT, "ActiveEnterTimestamp"),
            Prop::TasksCurrent => (SERVICE, "TasksCurrent"),
            Prop::TasksMax => (SERVICE, "TasksMax"),
            Prop::LastTrigger => (TIMER, "LastTriggerUSec"),
            Prop::Accepted => (SOCKET, "NAccepted"),
            Prop::Connections => (SOCKET, "NConnections"),
            Prop::Refused => (SOCKET, "NRefused"),
        }
    }

    /// Reads the answer, of the type systemd gives the property.
    fn read(self, property: Property<'_>, types: &mut String) -> Result<Answer, dbus::Error> {
        Ok(match self {
            Prop::ServiceType | Prop::MountType => Answer::Text(span(types, property.str()?)),
            Prop::Restarts | Prop::Accepted | Prop::Connections | Prop::Refused => {
                Answer::Number(u64::from(property.u32()?))
            }
            Prop::StartTime | Prop::TasksCurrent | Prop::TasksMax | Prop::LastTrigger => {
                Answer::Number(property.u64()?)
            }
        })
    }
}

/// A property read's answer.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Missing,
    Number(u64),
    /// A string, in [`Snapshot::types`].
    Text(Range<u32>),
}

/// One unit the filters kept.
#[derive(Clone, Debug)]
struct Unit {
    /// In [`Snapshot::text`].
    name: Range<u32>,
    path: Range<u32>,
    /// Its active state's index in [`STATES`]; `None` for another state.
    state: Option<usize>,
    /// Its property reads, in [`Snapshot::requests`] and [`Snapshot::answers`].
    requests: Range<u32>,
}

/// What one cycle read, in buffers kept across cycles.
#[derive(Default)]
struct Snapshot {
    version: f64,
    version_label: String,
    virtualization: String,
    /// Unit names and paths, and active-state names.
    text: String,
    /// Every active state seen (the five of [`STATES`] always) with its unit count.
    states: Vec<(Range<u32>, f64)>,
    units: Vec<Unit>,
    /// Per read: the unit's index in `units`, and what to read.
    requests: Vec<(u32, Prop)>,
    answers: Vec<Answer>,
    /// The strings answered (service and mount types).
    types: String,
    /// `None` below systemd 212.
    system_running: Option<bool>,
}

fn span(arena: &mut String, value: &str) -> Range<u32> {
    let start = arena.len() as u32;
    arena.push_str(value);
    start..arena.len() as u32
}

fn text<'a>(arena: &'a str, span: &Range<u32>) -> &'a str {
    arena
        .get(span.start as usize..span.end as usize)
        .unwrap_or_default()
}

impl Snapshot {
    fn clear(&mut self) {
        self.version = 0.0;
        self.version_label.clear();
        self.virtualization.clear();
        self.text.clear();
        self.states.clear();
        for state in STATES {
            let name = span(&mut self.text, state);
            self.states.push((name, 0.0));
        }
        self.units.clear();
        self.requests.clear();
        self.answers.clear();
        self.types.clear();
        self.system_running = None;
    }

    /// Counts a unit in its active state; returns the state's index in [`STATES`].
    fn count(&mut self, state: &str) -> Option<usize> {
        let arena = &self.text;
        match self
            .states
            .iter_mut()
            .find(|(name, _)| text(arena, name) == state)
        {
            Some((_, count)) => *count += 1.0,
            None => {
                let name = span(&mut self.text, state);
                self.states.push((name, 1.0));
            }
        }
        STATES.iter().position(|&known| known == state)
    }

    fn name(&self, unit: &Unit) -> &str {
        text(&self.text, &unit.name)
    }

    /// The answer to `unit`'s read of `prop`, if it was read.
    fn answer(&self, unit: &Unit, prop: Prop) -> &Answer {
        let (start, end) = (unit.requests.start as usize, unit.requests.end as usize);
        let at = self
            .requests
            .get(start..end)
            .and_then(|reads| reads.iter().position(|&(_, p)| p == prop));
        at.and_then(|at| self.answers.get(start + at))
            .unwrap_or(&Answer::Missing)
    }

    fn number(&self, unit: &Unit, prop: Prop) -> Option<u64> {
        match self.answer(unit, prop) {
            Answer::Number(n) => Some(*n),
            _ => None,
        }
    }

    fn type_label(&self, unit: &Unit) -> &str {
        for prop in [Prop::ServiceType, Prop::MountType] {
            if let Answer::Text(span) = self.answer(unit, prop) {
                return text(&self.types, span);
            }
        }
        ""
    }
}

/// Go's `strconv.Quote` of `value` without the surrounding quotes, appended to
/// `out`: go-systemd hands node_exporter string properties quoted, and node_exporter
/// trims only the quotes. Exact for ASCII; other characters are kept as they are
/// (Go escapes the few Unicode deems unprintable).
fn go_quote_inner(value: &str, out: &mut String) {
    use std::fmt::Write as _;
    for c in value.chars() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\x07' => "\\a",
            '\x08' => "\\b",
            '\x0c' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\x0b' => "\\v",
            c if c < ' ' || c == '\x7f' => {
                // Writing into a String cannot fail.
                let _ = write!(out, "\\x{:02x}", u32::from(c));
                continue;
            }
            c => {
                out.push(c);
                continue;
            }
        };
        out.push_str(escape);
    }
}

/// A D-Bus error, and what the collector was reading when it came.
struct Failure {
    doing: &'static str,
    error: dbus::Error,
}

impl Failure {
    fn during(doing: &'static str) -> impl FnOnce(dbus::Error) -> Failure {
        move |error| Failure { doing, error }
    }
}

/// A manager property, or `None` (logged) when systemd answers with an error; an
/// error only when the connection failed.
fn manager_property<'c>(
    conn: &'c mut Connection,
    property: &'static str,
    deadline: Instant,
) -> Result<Option<Property<'c>>, Failure> {
    soft(
        conn.get_property(SYSTEMD, MANAGER_PATH, MANAGER, property, deadline),
        property,
    )
    .map_err(Failure::during(property))
}

/// Turns an error that leaves the connection usable into `None`, logged at debug
/// level as node_exporter logs it.
fn soft<T>(result: Result<T, dbus::Error>, what: &str) -> Result<Option<T>, dbus::Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.keeps_connection() => {
            log::debug!("systemd: couldn't get {what}: {e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The filters' verdicts on the unit names of the last cycle. regex-lite takes some
/// 20 µs a name on node_exporter's default patterns (4 ms a cycle for 170 units),
/// and a machine's units rarely change: each name is matched once, then looked up.
/// Only the names of the last complete cycle are kept.
#[derive(Default)]
struct Verdicts {
    text: String,
    /// Sorted by name.
    kept: Vec<(Range<u32>, bool)>,
    next_text: String,
    next: Vec<(Range<u32>, bool)>,
}

impl Verdicts {
    fn begin(&mut self) {
        self.next_text.clear();
        self.next.clear();
    }

    /// The verdict on `name`: the last cycle's, else `decide`'s.
    fn get(&mut self, name: &str, decide: impl FnOnce() -> bool) -> bool {
        let found = self
            .kept
            .binary_search_by(|(known, _)| text(&self.text, known).cmp(name));
        let verdict = match found.ok().and_then(|at| self.kept.get(at)) {
            Some(&(_, verdict)) => verdict,
            None => decide(),
        };
        let name = span(&mut self.next_text, name);
        self.next.push((name, verdict));
        verdict
    }

    /// Keeps this cycle's verdicts for the next.
    fn end(&mut self) {
        let arena = &self.next_text;
        self.next
            .sort_unstable_by(|a, b| text(arena, &a.0).cmp(text(arena, &b.0)));
        std::mem::swap(&mut self.text, &mut self.next_text);
        std::mem::swap(&mut self.kept, &mut self.next);
    }
}

/// The systemd collector.
pub struct Systemd {
    options: Options,
    /// Where to connect, in order, or why there is nowhere.
    endpoints: Result<Vec<Endpoint>, String>,
    connection: Option<Connection>,
    version_pattern: Option<regex_lite::Regex>,
    snapshot: Snapshot,
    verdicts: Verdicts,
}

impl Systemd {
    /// A collector that finds systemd as node_exporter does (see the module doc).
    pub fn new(options: &Options) -> Self {
        let endpoints = if options.private {
            Ok(vec![Endpoint::systemd_private()])
        } else {
            Endpoint::system_bus().map(|mut endpoints| {
                if nix::unistd::geteuid().is_root() {
                    endpoints.push(Endpoint::systemd_private());
                }
                endpoints
            })
        };
        Systemd::with_endpoints(options, endpoints)
    }

    /// A collector that connects to `endpoints`, in order (tests: a fake systemd).
    pub fn with_endpoints(
        options: &Options,
        endpoints: Result<Vec<Endpoint>, String>,
    ) -> Self {
        Systemd {
            options: options.clone(),
            endpoints,
            connection: None,
            // node_exporter's systemdVersionRE; a constant, checked by the tests.
            version_pattern: regex_lite::Regex::new(r"[0-9]{3,}(\.[0-9]+)?").ok(),
            snapshot: Snapshot::default(),
            verdicts: Verdicts::default(),
        }
    }

    /// Opens a connection if there is none.
    fn connect(&mut self, deadline: Instant) -> Result<(), CollectError> {
        if self.connection.is_some() {
            return Ok(());
        }
        let endpoints = self.endpoints.as_ref().map_err(|e| CollectError::new(e.clone()))?;
        let mut failures = Vec::new();
        let mut absent = true;
        for endpoint in endpoints {
            match Connection::open(endpoint, deadline) {
                Ok(connection) => {
                    log::debug!("systemd: connected to {}", connection.peer());
                    self.connection = Some(connection);
                    return Ok(());
                }
                Err(e) => {
                    absent &= matches!(
                        &e,
                        crate::dbus::Error::Connect { source, .. }
                            if matches!(source.kind(), std::io::ErrorKind::NotFound
                                | std::io::ErrorKind::ConnectionRefused)
                    );
                    failures.push(e.to_string());
                }
            }
        }
        let message = format!("couldn't get dbus connection: {}", failures.join("; "));
        if absent {
            // No bus socket and no systemd socket: not a systemd host (a container,
            // a minimal VM). node_exporter's scrape fails there too; here it is
            // "no data", logged at debug level, not a warning.
            return Err(CollectError::no_data(message));
        }
        Err(CollectError::new(message))
    }

    /// Reads this cycle's snapshot. On error, whether it broke an established
    /// connection (worth one retry on a new one).
    fn query(&mut self, deadline: Instant) -> Result<(), (CollectError, bool)> {
        self.snapshot.clear();
        self.connect(deadline).map_err(|e| (e, false))?;
        self.exchange(deadline).map_err(|Failure { doing, error }| {
            if !error.keeps_connection() {
                self.connection = None;
            }
            let disconnect = error.is_disconnect();
            (
                CollectError::new(format!("couldn't get {doing}: {error}")),
                disconnect,
            )
        })
    }

    fn exchange(&mut self, deadline: Instant) -> Result<(), Failure> {
        let options = &self.options;
        let snap = &mut self.snapshot;
        let verdicts = &mut self.verdicts;
        let Some(conn) = self.connection.as_mut() else {
            let error = dbus::Error::Unexpected("not connected".into());
            return Err(Failure::during("a connection")(error));
        };

        let version = manager_property(conn, "Version", deadline)?;
        let version = soft(version.map(Property::str).transpose(), "Version")
            .map_err(Failure::during("Version"))?;
        if let Some(version) = version.flatten() {
            go_quote_inner(version, &mut snap.version_label);
            let number = self
                .version_pattern
                .as_ref()
                .and_then(|re| re.find(&snap.version_label))
                .and_then(|m| m.as_str().parse::<f64>().ok())
                .filter(|v| v.is_finite());
            match number {
                Some(number) => snap.version = number,
                None => {
                    log::debug!("systemd: invalid version {version:?}");
                    snap.version_label.clear();
                }
            }
        }

        let virtualization = manager_property(conn, "Virtualization", deadline)?;
        let virtualization = soft(
            virtualization.map(Property::str).transpose(),
            "Virtualization",
        )
        .map_err(Failure::during("Virtualization"))?;
        match virtualization.flatten() {
            Some(value) => {
                go_quote_inner(value, &mut snap.virtualization);
                let kept = snap.virtualization.trim_end_matches('"').len();
                snap.virtualization.truncate(kept);
                if snap.virtualization.is_empty() {
                    snap.virtualization.push_str("none");
                }
            }
            None => snap.virtualization.push_str("unknown"),
        }

        verdicts.begin();
        list_units(conn, options, snap, verdicts, deadline).map_err(Failure::during("units"))?;
        verdicts.end();
        plan_reads(options, snap);
        read_properties(conn, snap, deadline).map_err(Failure::during("unit properties"))?;

        if snap.version >= MIN_VERSION_SYSTEM_STATE {
            let state = conn
                .get_property(SYSTEMD, MANAGER_PATH, MANAGER, "SystemState", deadline)
                .map_err(Failure::during("system state"))?;
            snap.system_running = Some(matches!(state.str(), Ok("running")));
        }
        Ok(())
    }

    fn write(&mut self, out: &mut Batch) {
        let options = &self.options;
        let snap = &mut self.snapshot;
        out.family(
            "node_systemd_version",
            "Detected systemd version",
            Kind::Gauge,
        )
        .series()
        .label("version", &snap.version_label)
        .value(snap.version);
        out.family(
            "node_systemd_virtualization_info",
            "Detected virtualization technology",
            Kind::Gauge,
        )
        .series()
        .label("virtualization_type", &snap.virtualization)
        .value(1.0);

        let arena = &snap.text;
        snap.states
            .sort_unstable_by(|a, b| text(arena, &a.0).cmp(text(arena, &b.0)));
        let snap = &self.snapshot;
        let mut family = out.family(
            "node_systemd_units",
            "Summary of systemd unit states",
            Kind::Gauge,
        );
        for (state, count) in &snap.states {
            family
                .series()
                .label("state", text(&snap.text, state))
                .value(*count);
        }

        let mut family = out.family("node_systemd_unit_state", "Systemd unit", Kind::Gauge);
        for unit in &snap.units {
            let kind = snap.type_label(unit);
            for (index, state) in STATES.into_iter().enumerate() {
                family
                    .series()
                    .label("name", snap.name(unit))
                    .label("state", state)
                    .label("type", kind)
                    .value(f64::from(u8::from(unit.state == Some(index))));
            }
        }

        let by_unit = |out: &mut Batch,
                       (name, help, kind): (&str, &str, Kind),
                       value: &dyn Fn(&Unit) -> Option<f64>| {
            let mut family = out.family(name, help, kind);
            for unit in &snap.units {
                if let Some(value) = value(unit) {
                    family.series().label("name", snap.name(unit)).value(value);
                }
            }
        };
        if options.enable_restarts_metrics {
            by_unit(
                out,
                (
                    "node_systemd_service_restart_total",
                    "Service unit count of Restart triggers",
                    Kind::Counter,
                ),
                &|unit| snap.number(unit, Prop::Restarts).map(|n| n as f64),
            );
        }
        if options.enable_start_time_metrics {
            by_unit(
                out,
                (
                    "node_systemd_unit_start_time_seconds",
                    "Start time of the unit since unix epoch in seconds.",
                    Kind::Gauge,
                ),
                // An inactive unit started at 0; an active one whose time cannot be
                // read is left out.
                &|unit| match unit.state {
                    Some(ACTIVE) => snap.number(unit, Prop::StartTime).map(|us| us as f64 / 1e6),
                    _ => Some(0.0),
                },
            );
        }
        if options.enable_task_metrics {
            let tasks = [
                (
                    "node_systemd_unit_tasks_current",
                    "Current number of tasks per Systemd unit",
                    Prop::TasksCurrent,
                ),
                (
                    "node_systemd_unit_tasks_max",
                    "Maximum number of tasks per Systemd unit",
                    Prop::TasksMax,
                ),
            ];
            for (name, help, prop) in tasks {
                // systemd says "not counted" and "no limit" with the largest u64.
                by_unit(out, (name, help, Kind::Gauge), &|unit| {
                    snap.number(unit, prop)
                        .filter(|&n| n != u64::MAX)
                        .map(|n| n as f64)
                });
            }
        }
        by_unit(
            out,
            (
                "node_systemd_timer_last_trigger_seconds",
                "Seconds since epoch of last trigger.",
                Kind::Gauge,
            ),
            &|unit| {
                snap.number(unit, Prop::LastTrigger)
                    .map(|us| us as f64 / 1e6)
            },
        );
        // A socket's count is reported only when the counts before it were read.
        let sockets = [
            (
                "node_systemd_socket_accepted_connections_total",
                "Total number of accepted socket connections",
                Kind::Counter,
            ),
            (
                "node_systemd_socket_current_connections",
                "Current number of socket connections",
                Kind::Gauge,
            ),
            (
                "node_systemd_socket_refused_connections_total",
                "Total number of refused socket connections",
                Kind::Gauge,
            ),
        ];
        let reads = [Prop::Accepted, Prop::Connections, Prop::Refused];
        for (n, family) in sockets.into_iter().enumerate() {
            by_unit(out, family, &|unit| {
                let mut value = None;
                for prop in reads.iter().take(n + 1) {
                    value = Some(snap.number(unit, *prop)? as f64);
                }
                value
            });
        }
        if let Some(running) = snap.system_running {
            out.family(
                "node_systemd_system_running",
                "Whether the system is operational (see 'systemctl is-system-running')",
                Kind::Gauge,
            )
            .sample(&[], f64::from(u8::from(running)));
        }
    }
}

/// `Manager.ListUnits`: counts every unit's active state and keeps the loaded units
/// the filters pass, sorted by name.
fn list_units(
    conn: &mut Connection,
    options: &Options,
    snap: &mut Snapshot,
    verdicts: &mut Verdicts,
    deadline: Instant,
) -> Result<(), dbus::Error> {
    let call = connection::Call {
        destination: Some(SYSTEMD),
        path: MANAGER_PATH,
        interface: MANAGER,
        member: "ListUnits",
        args: &[],
    };
    let reply = conn.call(&call, deadline)?;
    connection::expect_signature(&reply, "a(ssssssouso)")?;
    let mut body = reply.body();
    let array = body.begin_array(b'(')?;
    while body.more(array) {
        body.begin_struct()?;
        let name = body.str()?;
        let _description = body.str()?;
        let load_state = body.str()?;
        let active_state = body.str()?;
        let _sub_state = body.str()?;
        let _followed = body.str()?;
        let path = body.object_path()?;
        let _job_id = body.u32()?;
        let _job_type = body.str()?;
        let _job_path = body.object_path()?;
        let state = snap.count(active_state);
        let wanted = load_state == "loaded"
            && verdicts.get(name, || {
                options
                    .unit_include
                    .as_ref()
                    .is_none_or(|p| p.is_match(name))
                    && !options
                        .unit_exclude
                        .as_ref()
                        .is_some_and(|p| p.is_match(name))
            });
        if wanted {
            let name = span(&mut snap.text, name);
            let path = span(&mut snap.text, path);
            snap.units.push(Unit {
                name,
                path,
                state,
                requests: 0..0,
            });
        } else {
            log::trace!("systemd: ignoring unit {name}");
        }
    }
    body.end_array(array)?;
    let arena = &snap.text;
    snap.units
        .sort_unstable_by(|a, b| text(arena, &a.name).cmp(text(arena, &b.name)));
    Ok(())
}

/// Decides which properties to read for each unit, as node_exporter does.
fn plan_reads(options: &Options, snap: &mut Snapshot) {
    let modern = snap.version >= MIN_VERSION_SYSTEM_STATE;
    let Snapshot {
        text: arena,
        units,
        requests,
        ..
    } = snap;
    for (index, unit) in units.iter_mut().enumerate() {
        let name = text(arena, &unit.name);
        let first = requests.len() as u32;
        let mut read = |prop| requests.push((index as u32, prop));
        if name.ends_with(".service") {
            read(Prop::ServiceType);
            if options.enable_restarts_metrics {
                read(Prop::Restarts);
            }
            if options.enable_task_metrics {
                read(Prop::TasksCurrent);
                read(Prop::TasksMax);
            }
        } else if name.ends_with(".mount") {
            read(Prop::MountType);
        }
        if options.enable_start_time_metrics && unit.state == Some(ACTIVE) {
            read(Prop::StartTime);
        }
        if modern && name.ends_with(".timer") {
            read(Prop::LastTrigger);
        }
        if name.ends_with(".socket") {
            read(Prop::Accepted);
            read(Prop::Connections);
            read(Prop::Refused);
        }
        unit.requests = first..requests.len() as u32;
    }
}

/// Reads the planned properties, pipelined.
fn read_properties(
    conn: &mut Connection,
    snap: &mut Snapshot,
    deadline: Instant,
) -> Result<(), dbus::Error> {
    let Snapshot {
        text: arena,
        units,
        requests,
        answers,
        types,
        ..
    } = snap;
    answers.clear();
    answers.resize(requests.len(), Answer::Missing);
    let path = |unit: u32| {
        units
            .get(unit as usize)
            .map_or("/", |u| text(arena, &u.path))
    };
    let calls = requests.iter().map(|&(unit, prop)| {
        let (interface, property) = prop.name();
        (path(unit), interface, property)
    });
    conn.get_properties(SYSTEMD, calls, WINDOW, deadline, |index, answer| {
        let Some((&(unit, prop), slot)) = requests.get(index).zip(answers.get_mut(index)) else {
            return;
        };
        match answer.and_then(|property| prop.read(property, types)) {
            Ok(value) => *slot = value,
            Err(e) => log::debug!(
                "systemd: couldn't get {} of {}: {e}",
                prop.name().1,
                units
                    .get(unit as usize)
                    .map_or("", |u| text(arena, &u.name))
            ),
        }
    })
}

impl Build for Systemd {
    type Options = Options;

    /// D-Bus, not files.
    const SOURCES: &'static [&'static str] = &[];

    fn build(_context: &Context<'_>, options: &Options) -> Self {
        Systemd::new(options)
    }
}

impl crate::config::collectors::Options for Options {
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("unit_whitelist", "unit_include"),
        ("unit_blacklist", "unit_exclude"),
    ];
}

impl Collector for Systemd {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let timeout: Duration = self.options.timeout.as_duration();
        let deadline = Instant::now() + timeout;
        let reused = self.connection.is_some();
        let mut result = self.query(deadline);
        if let Err((error, true)) = &result {
            if reused {
                // The bus or systemd restarted since the last cycle: once more, anew.
                log::debug!("{error}; reconnecting");
                result = self.query(deadline);
            }
        }
        // A private connection gets systemd's signals unasked: not kept idle.
        if self.connection.as_ref().is_some_and(|c| !c.is_bus()) {
            self.connection = None;
        }
        result.map_err(|(error, _)| error)?;
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbus::fake::{FakeServer, Peer};
    use crate::dbus::{Message, Value};
    use crate::testing::render;
    use std::sync::{Arc, Mutex};

    /// A unit as `ListUnits` lists it: name, load state, active state.
    type ListedUnit = (&'static str, &'static str, &'static str);

    /// What the fake systemd knows and how it misbehaves.
    struct Model {
        version: Option<&'static str>,
        virtualization: Option<&'static str>,
        system_state: Option<&'static str>,
        units: Vec<ListedUnit>,
        /// (unit, interface, property) → value; anything else is an error.
        properties: Vec<(&'static str, &'static str, &'static str, Value<'static>)>,
        /// `ListUnits` gets no answer.
        hang: bool,
        /// Closes the connection at the next `Version` call (a restart).
        restart: bool,
    }

    /// Modelled on a Debian 12 VM's systemd 252: units of every kind the collector
    /// reads, filtered ones, a unit not found, and the quirks of real answers
    /// (`TasksMax` infinity, timers never triggered, a socket of an older systemd
    /// without `NRefused`, a unit name escaped in its object path).
    fn debian() -> Model {
        Model {
            version: Some("252.22-1~deb12u1"),
            virtualization: Some("kvm"),
            system_state: Some("running"),
            units: vec![
                ("ssh.service", "loaded", "active"),
                ("-.mount", "loaded", "active"),
                ("dev-vda1.device", "loaded", "active"),
                ("init.scope", "loaded", "active"),
                ("system.slice", "loaded", "active"),
                ("proc-sys-fs-binfmt_misc.automount", "loaded", "active"),
                ("cron.service", "loaded", "active"),
                ("apt-daily.timer", "loaded", "active"),
                ("e2scrub_all.timer", "loaded", "inactive"),
                ("dbus.socket", "loaded", "active"),
                ("old.socket", "loaded", "active"),
                ("broken.socket", "loaded", "active"),
                ("unbound.service", "not-found", "inactive"),
                ("ifup@eth0.service", "loaded", "failed"),
                ("nginx.service", "loaded", "reloading"),
                ("basic.target", "loaded", "active"),
                ("shutdown.target", "loaded", "inactive"),
                ("plymouth.path", "masked", "inactive"),
            ],
            properties: vec![
                ("ssh.service", SERVICE, "Type", Value::Str("notify")),
                ("ssh.service", SERVICE, "NRestarts", Value::U32(2)),
                ("ssh.service", SERVICE, "TasksCurrent", Value::U64(3)),
                ("ssh.service", SERVICE, "TasksMax", Value::U64(u64::MAX)),
                (
                    "ssh.service",
                    UNIT,
                    "ActiveEnterTimestamp",
                    Value::U64(1_700_000_000_250_000),
                ),
                ("cron.service", SERVICE, "Type", Value::Str("simple")),
                ("cron.service", SERVICE, "NRestarts", Value::U32(0)),
                ("cron.service", SERVICE, "TasksCurrent", Value::U64(1)),
                ("cron.service", SERVICE, "TasksMax", Value::U64(4915)),
                (
                    "cron.service",
                    UNIT,
                    "ActiveEnterTimestamp",
                    Value::U64(1_700_000_001_000_000),
                ),
                (
                    "apt-daily.timer",
                    TIMER,
                    "LastTriggerUSec",
                    Value::U64(1_700_003_600_500_000),
                ),
                (
                    "apt-daily.timer",
                    UNIT,
                    "ActiveEnterTimestamp",
                    Value::U64(1_699_999_999_000_000),
                ),
                ("e2scrub_all.timer", TIMER, "LastTriggerUSec", Value::U64(0)),
                ("dbus.socket", SOCKET, "NAccepted", Value::U32(5)),
                ("dbus.socket", SOCKET, "NConnections", Value::U32(1)),
                ("dbus.socket", SOCKET, "NRefused", Value::U32(0)),
                (
                    "dbus.socket",
                    UNIT,
                    "ActiveEnterTimestamp",
                    Value::U64(1_699_999_998_000_000),
                ),
                ("old.socket", SOCKET, "NAccepted", Value::U32(7)),
                ("old.socket", SOCKET, "NConnections", Value::U32(0)),
                ("ifup@eth0.service", SERVICE, "Type", Value::Str("oneshot")),
                ("ifup@eth0.service", SERVICE, "NRestarts", Value::U32(1)),
                // Of the wrong type: left out, not a panic.
                ("ifup@eth0.service", SERVICE, "TasksCurrent", Value::U32(9)),
                ("ifup@eth0.service", SERVICE, "TasksMax", Value::U64(100)),
                ("nginx.service", SERVICE, "Type", Value::Str("forking")),
                ("nginx.service", SERVICE, "NRestarts", Value::U32(0)),
                (
                    "nginx.service",
                    SERVICE,
                    "TasksCurrent",
                    Value::U64(u64::MAX),
                ),
                ("nginx.service", SERVICE, "TasksMax", Value::U64(200)),
                (
                    "basic.target",
                    UNIT,
                    "ActiveEnterTimestamp",
                    Value::U64(1_699_999_997_000_000),
                ),
            ],
            hang: false,
            restart: false,
        }
    }

    /// systemd's object path of a unit: `/org/freedesktop/systemd1/unit/` and the
    /// name with every byte but `[A-Za-z0-9]` (and a leading digit) as `_xx`.
    fn unit_path(name: &str) -> String {
        let mut path = String::from("/org/freedesktop/systemd1/unit/");
        for (i, b) in name.bytes().enumerate() {
            if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("_{b:02x}"));
            }
        }
        path
    }

    fn answer(model: &Mutex<Model>, call: &Message<'_>, peer: &mut Peer<'_>) {
        let mut model = model.lock().unwrap();
        let unknown = "org.freedesktop.DBus.Error.UnknownProperty";
        match call.fields.member {
            Some("ListUnits") if model.hang => {}
            Some("ListUnits") => {
                let units = model
                    .units
                    .iter()
                    .map(|&(name, load, active)| {
                        let path = Box::leak(unit_path(name).into_boxed_str());
                        Value::Struct(vec![
                            Value::Str(name),
                            Value::Str("a unit"),
                            Value::Str(load),
                            Value::Str(active),
                            Value::Str(if active == "active" {
                                "running"
                            } else {
                                "dead"
                            }),
                            Value::Str(""),
                            Value::ObjectPath(path),
                            Value::U32(0),
                            Value::Str(""),
                            Value::ObjectPath("/"),
                        ])
                    })
                    .collect();
                peer.reply(call, &[Value::Array("(ssssssouso)", units)]);
            }
            Some("Get") => {
                let mut body = call.body();
                let (interface, property) = (body.str().unwrap(), body.str().unwrap());
                let path = call.fields.path.unwrap_or_default();
                if path == MANAGER_PATH && interface == MANAGER {
                    if property == "Version" && std::mem::take(&mut model.restart) {
                        peer.close();
                        return;
                    }
                    let value = match property {
                        "Version" => model.version,
                        "Virtualization" => model.virtualization,
                        "SystemState" => model.system_state,
                        _ => None,
                    };
                    match value {
                        Some(v) => peer.reply(call, &[Value::Variant(Box::new(Value::Str(v)))]),
                        None => peer.error(call, unknown, "Unknown property or interface."),
                    }
                    return;
                }
                let found = model.properties.iter().find(|(unit, i, p, _)| {
                    unit_path(unit) == path && *i == interface && *p == property
                });
                match found {
                    Some((.., value)) => {
                        peer.reply(call, &[Value::Variant(Box::new(value.clone()))]);
                    }
                    None => peer.error(call, unknown, "Unknown property or interface."),
                }
            }
            _ => peer.error(call, "org.freedesktop.DBus.Error.UnknownMethod", "no"),
        }
    }

    fn start(model: Model) -> (FakeServer, Arc<Mutex<Model>>) {
        let model = Arc::new(Mutex::new(model));
        let shared = Arc::clone(&model);
        let server = FakeServer::start(true, move |call, peer| answer(&shared, call, peer));
        (server, model)
    }

    fn collector(server: &FakeServer, options: &Options) -> Systemd {
        Systemd::with_endpoints(options, Ok(vec![Endpoint::bus(server.address())]))
    }

    const HEAD: &str = "\
# HELP node_systemd_version Detected systemd version
# TYPE node_systemd_version gauge
node_systemd_version{version=\"252.22-1~deb12u1\"} 252.22
# HELP node_systemd_virtualization_info Detected virtualization technology
# TYPE node_systemd_virtualization_info gauge
node_systemd_virtualization_info{virtualization_type=\"kvm\"} 1
# HELP node_systemd_units Summary of systemd unit states
# TYPE node_systemd_units gauge
node_systemd_units{state=\"activating\"} 0
node_systemd_units{state=\"active\"} 12
node_systemd_units{state=\"deactivating\"} 0
node_systemd_units{state=\"failed\"} 1
node_systemd_units{state=\"inactive\"} 4
node_systemd_units{state=\"reloading\"} 1
";

    /// `unit_state` of one unit: its five states, `active` one of them or none.
    fn unit_state(name: &str, kind: &str, active: Option<&str>) -> String {
        STATES
            .iter()
            .map(|state| {
                let value = u8::from(Some(*state) == active);
                format!(
                    "node_systemd_unit_state{{name=\"{name}\",state=\"{state}\",type=\"{kind}\"}} {value}\n"
                )
            })
            .collect()
    }

    fn unit_states() -> String {
        [
            unit_state("apt-daily.timer", "", Some("active")),
            unit_state("basic.target", "", Some("active")),
            unit_state("broken.socket", "", Some("active")),
            unit_state("cron.service", "simple", Some("active")),
            unit_state("dbus.socket", "", Some("active")),
            unit_state("e2scrub_all.timer", "", Some("inactive")),
            unit_state("ifup@eth0.service", "oneshot", Some("failed")),
            unit_state("nginx.service", "forking", None),
            unit_state("old.socket", "", Some("active")),
            unit_state("shutdown.target", "", Some("inactive")),
            unit_state("ssh.service", "notify", Some("active")),
        ]
        .concat()
    }

    const TIMERS_SOCKETS_STATE: &str = "\
# HELP node_systemd_timer_last_trigger_seconds Seconds since epoch of last trigger.
# TYPE node_systemd_timer_last_trigger_seconds gauge
node_systemd_timer_last_trigger_seconds{name=\"apt-daily.timer\"} 1700003600.5
node_systemd_timer_last_trigger_seconds{name=\"e2scrub_all.timer\"} 0
# HELP node_systemd_socket_accepted_connections_total Total number of accepted socket connections
# TYPE node_systemd_socket_accepted_connections_total counter
node_systemd_socket_accepted_connections_total{name=\"dbus.socket\"} 5
node_systemd_socket_accepted_connections_total{name=\"old.socket\"} 7
# HELP node_systemd_socket_current_connections Current number of socket connections
# TYPE node_systemd_socket_current_connections gauge
node_systemd_socket_current_connections{name=\"dbus.socket\"} 1
node_systemd_socket_current_connections{name=\"old.socket\"} 0
# HELP node_systemd_socket_refused_connections_total Total number of refused socket connections
# TYPE node_systemd_socket_refused_connections_total gauge
node_systemd_socket_refused_connections_total{name=\"dbus.socket\"} 0
# HELP node_systemd_system_running Whether the system is operational (see 'systemctl is-system-running')
# TYPE node_systemd_system_running gauge
node_systemd_system_running 1
";

    #[test]
    fn reports_what_node_exporter_reports_with_its_defaults() {
        let (server, _) = start(debian());
        let mut systemd = collector(&server, &Options::default());
        let text = render(&mut systemd).unwrap();
        let expected = format!(
            "{HEAD}# HELP node_systemd_unit_state Systemd unit\n# TYPE node_systemd_unit_state gauge\n{}{TIMERS_SOCKETS_STATE}",
            unit_states()
        );
        assert_eq!(text, expected);
        // The calls: three of the manager's properties, the unit list, one read per
        // service, timer and three per socket.
        let unit = |name, interface: &str, property| {
            format!(
                "Get {} org.freedesktop.systemd1.{interface} {property}",
                unit_path(name)
            )
        };
        let manager = |property| format!("Get /org/freedesktop/systemd1 {MANAGER} {property}");
        let mut expected_calls = vec![
            manager("Version"),
            manager("Virtualization"),
            "ListUnits /org/freedesktop/systemd1".to_owned(),
            unit("apt-daily.timer", "Timer", "LastTriggerUSec"),
        ];
        for socket in ["broken.socket"] {
            for property in ["NAccepted", "NConnections", "NRefused"] {
                expected_calls.push(unit(socket, "Socket", property));
            }
        }
        expected_calls.push(unit("cron.service", "Service", "Type"));
        for property in ["NAccepted", "NConnections", "NRefused"] {
            expected_calls.push(unit("dbus.socket", "Socket", property));
        }
        expected_calls.push(unit("e2scrub_all.timer", "Timer", "LastTriggerUSec"));
        expected_calls.push(unit("ifup@eth0.service", "Service", "Type"));
        expected_calls.push(unit("nginx.service", "Service", "Type"));
        for property in ["NAccepted", "NConnections", "NRefused"] {
            expected_calls.push(unit("old.socket", "Socket", property));
        }
        expected_calls.push(unit("ssh.service", "Service", "Type"));
        expected_calls.push(manager("SystemState"));
        assert_eq!(server.take_calls(), expected_calls);
        // The next cycle: the same, on the same connection.
        assert_eq!(render(&mut systemd).unwrap(), expected);
        assert_eq!(server.connections(), 1);
        assert_eq!(server.take_calls().len(), expected_calls.len());
    }

    #[test]
    fn reports_restarts_start_times_and_tasks_when_enabled() {
        let (server, _) = start(debian());
        let options = Options {
            enable_task_metrics: true,
            enable_restarts_metrics: true,
            enable_start_time_metrics: true,
            ..Options::default()
        };
        let text = render(&mut collector(&server, &options)).unwrap();
        let expected = format!(
            "{HEAD}# HELP node_systemd_unit_state Systemd unit\n# TYPE node_systemd_unit_state gauge\n{}\
# HELP node_systemd_service_restart_total Service unit count of Restart triggers
# TYPE node_systemd_service_restart_total counter
node_systemd_service_restart_total{{name=\"cron.service\"}} 0
node_systemd_service_restart_total{{name=\"ifup@eth0.service\"}} 1
node_systemd_service_restart_total{{name=\"nginx.service\"}} 0
node_systemd_service_restart_total{{name=\"ssh.service\"}} 2
# HELP node_systemd_unit_start_time_seconds Start time of the unit since unix epoch in seconds.
# TYPE node_systemd_unit_start_time_seconds gauge
node_systemd_unit_start_time_seconds{{name=\"apt-daily.timer\"}} 1699999999
node_systemd_unit_start_time_seconds{{name=\"basic.target\"}} 1699999997
node_systemd_unit_start_time_seconds{{name=\"cron.service\"}} 1700000001
node_systemd_unit_start_time_seconds{{name=\"dbus.socket\"}} 1699999998
node_systemd_unit_start_time_seconds{{name=\"e2scrub_all.timer\"}} 0
node_systemd_unit_start_time_seconds{{name=\"ifup@eth0.service\"}} 0
node_systemd_unit_start_time_seconds{{name=\"nginx.service\"}} 0
node_systemd_unit_start_time_seconds{{name=\"shutdown.target\"}} 0
node_systemd_unit_start_time_seconds{{name=\"ssh.service\"}} 1700000000.25
# HELP node_systemd_unit_tasks_current Current number of tasks per Systemd unit
# TYPE node_systemd_unit_tasks_current gauge
node_systemd_unit_tasks_current{{name=\"cron.service\"}} 1
node_systemd_unit_tasks_current{{name=\"ssh.service\"}} 3
# HELP node_systemd_unit_tasks_max Maximum number of tasks per Systemd unit
# TYPE node_systemd_unit_tasks_max gauge
node_systemd_unit_tasks_max{{name=\"cron.service\"}} 4915
node_systemd_unit_tasks_max{{name=\"ifup@eth0.service\"}} 100
node_systemd_unit_tasks_max{{name=\"nginx.service\"}} 200
{TIMERS_SOCKETS_STATE}",
            unit_states()
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn unit_filters_match_whole_names() {
        let (server, _) = start(debian());
        let options = Options {
            // Anchored: `ssh` alone matches no unit; `.*\.socket` all sockets, of
            // which `broken.*` is excluded.
            unit_include: UnitPattern::new("ssh|.*\\.socket").ok(),
            unit_exclude: UnitPattern::new("broken.*").ok(),
            ..Options::default()
        };
        let text = render(&mut collector(&server, &options)).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("node_systemd_unit_state{"))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert_eq!(names, [["dbus.socket"; 5], ["old.socket"; 5]].concat());
        // Only the sockets' properties are read.
        let calls = server.take_calls();
        assert_eq!(calls.len(), 3 + 6 + 1, "{calls:?}");
        // With no filters, every loaded unit, mounts included (with their type).
        let options = Options {
            unit_include: None,
            unit_exclude: None,
            ..Options::default()
        };
        let text = render(&mut collector(&server, &options)).unwrap();
        assert!(
            text.contains("node_systemd_unit_state{name=\"-.mount\",state=\"active\",type=\"\"} 1")
        );
        assert!(text.contains("name=\"init.scope\""));
        assert!(!text.contains("name=\"unbound.service\""));
        assert!(!text.contains("name=\"plymouth.path\""));
        assert!(server
            .take_calls()
            .contains(&format!("Get {} {MOUNT} Type", unit_path("-.mount"))));
    }

    #[test]
    fn versions_before_212_have_no_timers_or_system_state() {
        let (server, model) = start(Model {
            version: Some("systemd 211"),
            ..debian()
        });
        let text = render(&mut collector(&server, &Options::default())).unwrap();
        assert!(
            text.contains("node_systemd_version{version=\"systemd 211\"} 211\n"),
            "{text}"
        );
        assert!(!text.contains("timer_last_trigger"));
        assert!(!text.contains("system_running"));
        assert!(!server
            .take_calls()
            .iter()
            .any(|c| c.contains("LastTriggerUSec") || c.contains("SystemState")));
        // No version at all, or one without a number: 0, labelled "".
        for version in [None, Some("unknown"), Some("v25")] {
            model.lock().unwrap().version = version;
            let text = render(&mut collector(&server, &Options::default())).unwrap();
            assert!(
                text.contains("node_systemd_version{version=\"\"} 0\n"),
                "{version:?}: {text}"
            );
        }
        // Go's quoting is kept in the label.
        model.lock().unwrap().version = Some("253.1 \"beta\"\t");
        let text = render(&mut collector(&server, &Options::default())).unwrap();
        assert!(
            text.contains(r#"node_systemd_version{version="253.1 \\\"beta\\\"\\t"} 253.1"#),
            "{text}"
        );
    }

    #[test]
    fn virtualization_none_and_unknown() {
        let (server, model) = start(Model {
            virtualization: Some(""),
            ..debian()
        });
        let text = render(&mut collector(&server, &Options::default())).unwrap();
        assert!(text.contains("node_systemd_virtualization_info{virtualization_type=\"none\"} 1"));
        model.lock().unwrap().virtualization = None;
        let text = render(&mut collector(&server, &Options::default())).unwrap();
        assert!(
            text.contains("node_systemd_virtualization_info{virtualization_type=\"unknown\"} 1")
        );
    }

    #[test]
    fn system_state_other_than_running_is_0_and_an_error_fails_the_collector() {
        let (server, model) = start(Model {
            system_state: Some("degraded"),
            ..debian()
        });
        let mut systemd = collector(&server, &Options::default());
        assert!(render(&mut systemd)
            .unwrap()
            .contains("node_systemd_system_running 0\n"));
        model.lock().unwrap().system_state = None;
        let err = render(&mut systemd).unwrap_err();
        assert_eq!(
            err.to_string(),
            "couldn't get system state: org.freedesktop.DBus.Error.UnknownProperty: \
             Unknown property or interface."
        );
        // The connection is kept: an error reply is not a broken connection.
        model.lock().unwrap().system_state = Some("running");
        assert!(render(&mut systemd).is_ok());
        assert_eq!(server.connections(), 1);
    }

    #[test]
    fn a_restarted_systemd_is_reconnected_within_the_cycle() {
        let (server, model) = start(debian());
        let mut systemd = collector(&server, &Options::default());
        let first = render(&mut systemd).unwrap();
        // systemd re-executes between cycles: its end of the connection closes.
        model.lock().unwrap().restart = true;
        assert_eq!(render(&mut systemd).unwrap(), first);
        assert_eq!(server.connections(), 2);
    }

    #[test]
    fn a_hung_systemd_costs_the_timeout_then_recovers() {
        let (server, model) = start(Model {
            hang: true,
            ..debian()
        });
        let options = Options {
            timeout: Millis::from_millis(300),
            ..Options::default()
        };
        let mut systemd = collector(&server, &options);
        let started = Instant::now();
        let err = render(&mut systemd).unwrap_err();
        let took = started.elapsed();
        assert!(
            err.to_string().ends_with("timed out waiting for a reply"),
            "{err}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        model.lock().unwrap().hang = false;
        assert!(render(&mut systemd).is_ok());
        assert_eq!(server.connections(), 2);
    }

    #[test]
    fn no_systemd_is_no_data_naming_every_address_tried() {
        let dir = crate::testing::TempDir::new();
        let endpoints = vec![
            Endpoint::bus(dbus::Address::Path(dir.path().join("system_bus_socket"))),
            Endpoint::peer(dbus::Address::Path(dir.path().join("private"))),
        ];
        let mut systemd = Systemd::with_endpoints(&Options::default(), Ok(endpoints));
        for _ in 0..2 {
            let err = render(&mut systemd).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "couldn't get dbus connection: cannot connect to unix:path={0}/system_bus_socket: \
                     No such file or directory (os error 2); cannot connect to unix:path={0}/private: \
                     No such file or directory (os error 2)",
                    dir.path().display()
                )
            );
            // No socket at all: not a systemd host, logged at debug level only.
            assert!(err.is_no_data());
        }
        let mut systemd = Systemd::with_endpoints(
            &Options::default(),
            Err("DBUS_SYSTEM_BUS_ADDRESS: no usable D-Bus address".into()),
        );
        assert!(render(&mut systemd)
            .unwrap_err()
            .to_string()
            .starts_with("DBUS_SYSTEM_BUS_ADDRESS"));
    }

    #[test]
    fn a_list_units_error_or_malformed_reply_fails_the_collector() {
        let server = FakeServer::start(false, |call, peer| match call.fields.member {
            Some("ListUnits") => peer.reply(call, &[Value::Array("s", vec![Value::Str("x")])]),
            _ => peer.error(call, "org.freedesktop.DBus.Error.AccessDenied", "no"),
        });
        let mut systemd = Systemd::with_endpoints(
            &Options::default(),
            Ok(vec![Endpoint::peer(server.address())]),
        );
        assert_eq!(
            render(&mut systemd).unwrap_err().to_string(),
            "couldn't get units: reply of signature \"as\", expected \"a(ssssssouso)\""
        );
        let server = FakeServer::start(false, |call, peer| {
            peer.error(call, "org.freedesktop.DBus.Error.AccessDenied", "no")
        });
        let mut systemd = Systemd::with_endpoints(
            &Options::default(),
            Ok(vec![Endpoint::peer(server.address())]),
        );
        assert_eq!(
            render(&mut systemd).unwrap_err().to_string(),
            "couldn't get units: org.freedesktop.DBus.Error.AccessDenied: no"
        );
    }

    #[test]
    fn a_bus_connection_is_kept_and_a_private_one_is_not() {
        let (server, _) = start(debian());
        let mut systemd = collector(&server, &Options::default());
        for _ in 0..3 {
            render(&mut systemd).unwrap();
        }
        assert_eq!(server.connections(), 1);
        let server = FakeServer::start(false, |call, peer| {
            peer.error(call, "org.freedesktop.DBus.Error.AccessDenied", "no")
        });
        let endpoints = Ok(vec![Endpoint::peer(server.address())]);
        let mut systemd = Systemd::with_endpoints(&Options::default(), endpoints);
        for _ in 0..3 {
            assert!(render(&mut systemd).is_err());
        }
        assert_eq!(server.connections(), 3);
    }

    /// Replies recorded from a real systemd, by call name.
    const RECORDED: &str = include_str!("testdata/systemd-252-private.txt");

    fn recorded(name: &str) -> Vec<u8> {
        let line = RECORDED
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no recorded {name}"));
        (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Points a recorded reply at `serial`: rewrites its REPLY_SERIAL header field
    /// (code 5, type `u`, at an 8-aligned offset of the header-field array).
    fn readdressed(mut reply: Vec<u8>, serial: u32) -> Vec<u8> {
        let at = (16..reply.len())
            .step_by(8)
            .find(|&at| reply[at..at + 4] == [5, 1, b'u', 0])
            .expect("a REPLY_SERIAL field");
        reply[at + 4..at + 8].copy_from_slice(&serial.to_le_bytes());
        reply
    }

    #[test]
    fn a_conversation_recorded_from_systemd_252_replays_to_node_exporters_series() {
        let server = FakeServer::start(false, |call, peer| {
            let mut body = call.body();
            let property = match call.fields.member {
                Some("Get") => body.str().and_then(|_| body.str()).unwrap(),
                _ => "",
            };
            let unit = match call.fields.path.unwrap_or_default() {
                "/org/freedesktop/systemd1/unit/dbus_2eservice" => "dbus.service.",
                "/org/freedesktop/systemd1/unit/dbus_2esocket" => "dbus.socket.",
                "/org/freedesktop/systemd1/unit/systemd_2dtmpfiles_2dclean_2etimer" => "timer.",
                "/org/freedesktop/systemd1/unit/_2d_2emount" => "mount.",
                _ => "",
            };
            let name = match call.fields.member {
                Some("ListUnits") => "ListUnitsByNames".to_owned(),
                _ => format!("{unit}{property}"),
            };
            let known = RECORDED.lines().any(|l| l.starts_with(&format!("{name} ")));
            let reply = recorded(if known { &name } else { "dbus.socket.NoSuch" });
            peer.raw(&readdressed(reply, call.serial));
        });
        let options = Options {
            enable_task_metrics: true,
            enable_restarts_metrics: true,
            enable_start_time_metrics: true,
            ..Options::default()
        };
        let endpoints = Ok(vec![Endpoint::peer(server.address())]);
        let mut systemd = Systemd::with_endpoints(&options, endpoints);
        let state = |name, kind| unit_state(name, kind, Some("active"));
        let expected = format!(
            "\
# HELP node_systemd_version Detected systemd version
# TYPE node_systemd_version gauge
node_systemd_version{{version=\"252.39-1~deb12u2\"}} 252.39
# HELP node_systemd_virtualization_info Detected virtualization technology
# TYPE node_systemd_virtualization_info gauge
node_systemd_virtualization_info{{virtualization_type=\"systemd-nspawn\"}} 1
# HELP node_systemd_units Summary of systemd unit states
# TYPE node_systemd_units gauge
node_systemd_units{{state=\"activating\"}} 0
node_systemd_units{{state=\"active\"}} 4
node_systemd_units{{state=\"deactivating\"}} 0
node_systemd_units{{state=\"failed\"}} 0
node_systemd_units{{state=\"inactive\"}} 1
# HELP node_systemd_unit_state Systemd unit
# TYPE node_systemd_unit_state gauge
{}{}{}\
# HELP node_systemd_service_restart_total Service unit count of Restart triggers
# TYPE node_systemd_service_restart_total counter
node_systemd_service_restart_total{{name=\"dbus.service\"}} 0
# HELP node_systemd_unit_start_time_seconds Start time of the unit since unix epoch in seconds.
# TYPE node_systemd_unit_start_time_seconds gauge
node_systemd_unit_start_time_seconds{{name=\"dbus.service\"}} 1796162537.350519
node_systemd_unit_start_time_seconds{{name=\"dbus.socket\"}} 1796162529.51326
node_systemd_unit_start_time_seconds{{name=\"systemd-tmpfiles-clean.timer\"}} 1796162529.512997
# HELP node_systemd_unit_tasks_max Maximum number of tasks per Systemd unit
# TYPE node_systemd_unit_tasks_max gauge
node_systemd_unit_tasks_max{{name=\"dbus.service\"}} 28908
# HELP node_systemd_timer_last_trigger_seconds Seconds since epoch of last trigger.
# TYPE node_systemd_timer_last_trigger_seconds gauge
node_systemd_timer_last_trigger_seconds{{name=\"systemd-tmpfiles-clean.timer\"}} 0
# HELP node_systemd_socket_accepted_connections_total Total number of accepted socket connections
# TYPE node_systemd_socket_accepted_connections_total counter
node_systemd_socket_accepted_connections_total{{name=\"dbus.socket\"}} 0
# HELP node_systemd_socket_current_connections Current number of socket connections
# TYPE node_systemd_socket_current_connections gauge
node_systemd_socket_current_connections{{name=\"dbus.socket\"}} 0
# HELP node_systemd_socket_refused_connections_total Total number of refused socket connections
# TYPE node_systemd_socket_refused_connections_total gauge
node_systemd_socket_refused_connections_total{{name=\"dbus.socket\"}} 0
# HELP node_systemd_system_running Whether the system is operational (see 'systemctl is-system-running')
# TYPE node_systemd_system_running gauge
node_systemd_system_running 0
",
            state("dbus.service", "notify"),
            state("dbus.socket", ""),
            state("systemd-tmpfiles-clean.timer", ""),
        );
        assert_eq!(render(&mut systemd).unwrap(), expected);
        // What systemd 252 answers for a property it does not have, as recorded.
        let error = recorded("dbus.socket.NoSuch");
        let message = dbus::Message::parse(&error).unwrap();
        assert_eq!(
            message.fields.error_name,
            Some("org.freedesktop.DBus.Error.UnknownProperty")
        );
        assert!(message.error_text().starts_with("Unknown interface"));
    }

    #[test]
    fn filter_verdicts_are_remembered_for_the_names_of_the_last_cycle() {
        let mut verdicts = Verdicts::default();
        let mut decided = Vec::new();
        let mut cycle = |names: &[&str], verdicts: &mut Verdicts| {
            verdicts.begin();
            let got: Vec<bool> = names
                .iter()
                .map(|&name| {
                    verdicts.get(name, || {
                        decided.push(name.to_owned());
                        name.ends_with(".service")
                    })
                })
                .collect();
            verdicts.end();
            got
        };
        assert_eq!(
            cycle(&["b.service", "a.mount"], &mut verdicts),
            [true, false]
        );
        assert_eq!(
            cycle(&["a.mount", "c.service", "b.service"], &mut verdicts),
            [false, true, true]
        );
        // A name gone for a cycle is decided again.
        cycle(&["c.service"], &mut verdicts);
        assert_eq!(cycle(&["a.mount"], &mut verdicts), [false]);
        assert_eq!(decided, ["b.service", "a.mount", "c.service", "a.mount"]);
    }

    #[test]
    fn options_are_node_exporters_flags() {
        let defaults = Options::default();
        assert_eq!(defaults.unit_include, UnitPattern::new(".+").ok());
        assert_eq!(
            defaults.unit_exclude,
            UnitPattern::new(".+\\.(automount|device|mount|scope|slice)").ok()
        );
        assert!(!defaults.enable_task_metrics && !defaults.private);
        let yaml = serde_yaml::to_string(&defaults).unwrap();
        assert_eq!(
            serde_yaml::from_str::<Options>(&yaml).unwrap(),
            defaults
        );
        assert_eq!(
            serde_yaml::from_str::<Options>("{}").unwrap(),
            defaults
        );
        let options: Options = serde_yaml::from_str(
            "unit_include: 'ssh\\.service'\nunit_exclude: null\nenable_task_metrics: true\nprivate: true\ntimeout: 2s\n",
        )
        .unwrap();
        assert!(options
            .unit_include
            .as_ref()
            .unwrap()
            .is_match("ssh.service"));
        assert!(!options
            .unit_include
            .as_ref()
            .unwrap()
            .is_match("xssh.service"));
        assert_eq!(options.unit_exclude, None);
        assert_eq!(options.timeout, Millis::from_millis(2_000));
        // node_exporter's deprecated flags name their replacements.
        for (old, new) in [("unit_whitelist", "unit_include"), ("unit_blacklist", "unit_exclude")] {
            let yaml = format!("systemd:\n  {old}: x\n");
            let err = serde_yaml::from_str::<crate::collector::table::Settings>(&yaml).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{old}: renamed: write `{new}`")),
                "{err}"
            );
        }
        let err = serde_yaml::from_str::<Options>("unit_include: '('\n").unwrap_err();
        assert!(
            err.to_string().contains("invalid regular expression \"(\""),
            "{err}"
        );
        assert!(Systemd::with_endpoints(&defaults, Ok(vec![]))
            .version_pattern
            .is_some());
    }

    #[test]
    fn strings_are_quoted_as_go_quotes_them() {
        let quote = |s: &str| {
            let mut out = String::new();
            go_quote_inner(s, &mut out);
            out
        };
        assert_eq!(quote("252.22-1~deb12u1"), "252.22-1~deb12u1");
        assert_eq!(
            quote("a\"b\\c\n\t\x01\x7fé"),
            "a\\\"b\\\\c\\n\\t\\x01\\x7fé"
        );
    }
}
