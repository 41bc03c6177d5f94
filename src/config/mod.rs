//! The agent's configuration: YAML, then `SC_*` environment overrides, then checks.
//!
//! Every field has a default, so an empty file (or no file) is a working config that
//! prints node_exporter's metrics to stdout. Unknown fields are errors: they are
//! usually typos that would otherwise be silently ignored.

pub mod bytesize;
pub mod duration;
mod env;
pub mod pattern;
pub mod secret;

pub use bytesize::Bytes;
pub use duration::Millis;
pub use pattern::{Filter, Pattern};
pub use secret::Secret;

/// Deserializes a value written as a string through `parse`.
///
/// The parse runs inside the YAML deserializer's visitor, so an error carries the
/// field's path and line (`collection_interval: ... at line 2 column 22`); an error
/// raised after `String::deserialize` returns would lose both.
pub(crate) fn from_str_with<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.parse)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Visitor { expecting, parse })
}

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the config text came from, for error messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Source {
    /// `--config`, else `SC_AGENT_CONFIG`; `None` means built-in defaults.
    pub path: Option<PathBuf>,
}

impl Source {
    /// The path from the command line if given, else from `SC_AGENT_CONFIG`.
    pub fn resolve(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let path = flag.or_else(|| {
            env("SC_AGENT_CONFIG")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        Source { path }
    }
}

/// A configuration that could not be used, with the field or file at fault.
#[derive(Debug, PartialEq)]
pub struct Error {
    pub source: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl std::error::Error for Error {}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `LEVEL [target] message` lines, for people and journald.
    #[default]
    Text,
    /// One JSON object a line, for log shippers.
    Json,
}

/// Roots of the filesystems the collectors read, like node_exporter's `--path.*`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Paths {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
        }
    }
}

/// Which collectors run. All default to on.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Collectors {
    pub cpu: bool,
    pub memory: bool,
    pub loadavg: bool,
    pub diskstats: bool,
    pub netdev: bool,
    pub netclass: bool,
    pub filesystem: bool,
    pub stat: bool,
    pub uname: bool,
    pub vmstat: bool,
    pub pressure: bool,
    pub filefd: bool,
    pub sockstat: bool,
    pub netstat: bool,
    pub entropy: bool,
    pub time: bool,
    /// `process_*` metrics of the agent itself.
    pub process: bool,
}

impl Default for Collectors {
    fn default() -> Self {
        Collectors {
            cpu: true,
            memory: true,
            loadavg: true,
            diskstats: true,
            netdev: true,
            netclass: true,
            filesystem: true,
            stat: true,
            uname: true,
            vmstat: true,
            pressure: true,
            filefd: true,
            sockstat: true,
            netstat: true,
            entropy: true,
            time: true,
            process: true,
        }
    }
}

/// node_exporter's default: partitions, RAM disks, loop and floppy devices.
pub const DISKSTATS_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// node_exporter's default mount points to leave out: `($|/)` also leaves out what
/// lies below them (/dev/shm, /proc/sys/fs/binfmt_misc).
pub const FILESYSTEM_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default filesystem types to leave out.
pub const FILESYSTEM_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

fn pattern(source: &str) -> Option<Pattern> {
    // The defaults are constants checked by the tests below.
    Pattern::new(source).ok()
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskstatsOptions {
    pub device_include: Option<Pattern>,
    pub device_exclude: Option<Pattern>,
}

impl Default for DiskstatsOptions {
    fn default() -> Self {
        DiskstatsOptions {
            device_include: None,
            device_exclude: pattern(DISKSTATS_DEVICE_EXCLUDE),
        }
    }
}

impl DiskstatsOptions {
    pub fn filter(&self) -> Filter {
        Filter {
            include: self.device_include.clone(),
            exclude: self.device_exclude.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetdevOptions {
    pub device_include: Option<Pattern>,
    pub device_exclude: Option<Pattern>,
    /// Read the counters with one netlink dump (default) rather than from
    /// `<procfs>/net/dev` and sysfs, like node_exporter's `--collector.netdev.netlink`.
    /// The series are the same either way.
    pub netlink: bool,
}

impl Default for NetdevOptions {
    fn default() -> Self {
        NetdevOptions {
            device_include: None,
            device_exclude: None,
            netlink: true,
        }
    }
}

/// The netclass collector; its device filter is netdev's.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetclassOptions {
    /// Read the device properties with netlink dumps (default) rather than ~24
    /// sysfs files per device, like node_exporter's `--collector.netclass.netlink`.
    /// The series are sysfs's either way (node_exporter's netlink mode changes
    /// some; this one does not).
    pub netlink: bool,
}

impl Default for NetclassOptions {
    fn default() -> Self {
        NetclassOptions { netlink: true }
    }
}

impl NetdevOptions {
    pub fn filter(&self) -> Filter {
        Filter {
            include: self.device_include.clone(),
            exclude: self.device_exclude.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemOptions {
    pub mount_points_exclude: Option<Pattern>,
    pub fs_types_exclude: Option<Pattern>,
    /// How long one statfs may take before the mount is reported as stuck.
    pub mount_timeout: Millis,
}

impl Default for FilesystemOptions {
    fn default() -> Self {
        FilesystemOptions {
            mount_points_exclude: pattern(FILESYSTEM_MOUNT_POINTS_EXCLUDE),
            fs_types_exclude: pattern(FILESYSTEM_FS_TYPES_EXCLUDE),
            mount_timeout: Millis::from_millis(5_000),
        }
    }
}

/// The remote write queue between the cycle loop and the sender thread.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueOptions {
    /// The most compressed request bytes held while the endpoint is slow or down
    /// (default `4MiB`; a plain integer is bytes, or use `KiB`, `MiB`, `GiB`, `KB`,
    /// `MB`, `GB`). Past it the oldest batch is dropped and counted in
    /// `sc_agent_samples_dropped_total{reason="queue_full"}`; the newest batch is
    /// always kept, even when it alone is larger. At least `1KiB`.
    pub max_bytes: Bytes,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_bytes: Bytes(4 << 20),
        }
    }
}

/// HTTP basic authentication for remote write.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name (environment: `SC_BASIC_AUTH_USERNAME`). Must not contain `:`.
    pub username: String,
    /// A file holding the password, read at start and at every reload (surrounding
    /// whitespace trimmed). `SC_BASIC_AUTH_PASSWORD`, when set, wins over the file.
    /// A password cannot be written into the config itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The password, loaded from `password_file` or the environment; never printed.
    #[serde(skip)]
    pub password: Secret,
}

/// TLS for an `https://` endpoint.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of the CA certificate(s) to trust instead of the system store (for
    /// a private CA), like Prometheus' `tls_config.ca_file`. Without it the system
    /// store is used (`/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`). The trust
    /// store is loaded once per process, at the first HTTPS request: a change takes
    /// effect at the next start, not at reload. Certificate errors are never ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// The whole configuration. Field names are part of the interface: keep them.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub collection_interval: Millis,
    /// Remote write URL; when empty, each cycle is printed to stdout instead.
    pub ingestor_endpoint: Option<String>,
    /// How long one remote write request may take, from connecting to the end of the
    /// response head (default `10s`). The HTTP client counts whole seconds, so this is
    /// rounded up to the next second (`1500ms` waits 2s). A request that times out is
    /// retried.
    pub timeout: Millis,
    /// The first wait before a failed request is retried (default `30ms`). Waits
    /// double with each consecutive failure up to `max_backoff`, each one drawn at
    /// random between `min_backoff` and the doubled value ("full jitter").
    pub min_backoff: Millis,
    /// The longest wait between retries (default `5s`); at least `min_backoff`. A
    /// `Retry-After` from the endpoint (429, 503) is honoured even when longer, up
    /// to 5 minutes.
    pub max_backoff: Millis,
    /// On SIGTERM/SIGINT, how long to keep sending what is queued before exiting
    /// (default `10s`; `0s` exits at once). What is left is logged as unsent.
    pub shutdown_timeout: Millis,
    pub queue: QueueOptions,
    /// HTTP basic authentication; excludes `bearer_token_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// A file holding a bearer token (`Authorization: Bearer ...`), read at start and
    /// at every reload. `SC_BEARER_TOKEN`, when set, wins over the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// The bearer token, loaded from `bearer_token_file` or the environment; never
    /// printed.
    #[serde(skip)]
    pub bearer_token: Secret,
    /// Extra HTTP headers sent with every remote write request (for example a tenant
    /// header such as `X-Scope-OrgID`). The protocol's own headers and
    /// `Authorization` cannot be overridden.
    pub headers: BTreeMap<String, String>,
    pub tls: TlsOptions,
    /// `auto-detect` or a literal ID.
    pub vm_id: String,
    pub job: String,
    /// Defaults to the host name.
    pub instance: Option<String>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    pub labels: BTreeMap<String, String>,
    pub paths: Paths,
    pub collectors: Collectors,
    pub diskstats: DiskstatsOptions,
    pub netdev: NetdevOptions,
    pub netclass: NetclassOptions,
    pub filesystem: FilesystemOptions,
}

pub const AUTO_DETECT: &str = "auto-detect";

impl Default for Config {
    fn default() -> Self {
        Config {
            collection_interval: Millis::from_millis(15_000),
            ingestor_endpoint: None,
            timeout: Millis::from_millis(10_000),
            min_backoff: Millis::from_millis(30),
            max_backoff: Millis::from_millis(5_000),
            shutdown_timeout: Millis::from_millis(10_000),
            queue: QueueOptions::default(),
            basic_auth: None,
            bearer_token_file: None,
            bearer_token: Secret::default(),
            headers: BTreeMap::new(),
            tls: TlsOptions::default(),
            vm_id: AUTO_DETECT.to_owned(),
            job: "node".to_owned(),
            instance: None,
            log_level: LogLevel::default(),
            log_format: LogFormat::default(),
            labels: BTreeMap::new(),
            paths: Paths::default(),
            collectors: Collectors::default(),
            diskstats: DiskstatsOptions::default(),
            netdev: NetdevOptions::default(),
            netclass: NetclassOptions::default(),
            filesystem: FilesystemOptions::default(),
        }
    }
}

/// The shortest interval accepted; below it the agent would mostly measure itself.
pub const MIN_INTERVAL: Millis = Millis::from_millis(10);
/// The largest config file read; anything bigger is certainly not a config.
const MAX_FILE_BYTES: u64 = 1 << 20;

impl Config {
    /// Reads the file (if any), applies environment overrides and checks the result.
    pub fn load(source: &Source, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let mut config = match &source.path {
            Some(path) => Config::from_yaml(&read_file(path)?).map_err(|message| Error {
                source: format!("config {}", path.display()),
                message,
            })?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        let source = match &source.path {
            Some(path) => format!("config {}", path.display()),
            None => "config".to_owned(),
        };
        config.read_files().map_err(|message| Error {
            source: source.clone(),
            message,
        })?;
        config
            .check()
            .map_err(|message| Error { source, message })?;
        Ok(config)
    }

    /// Reads the files the config names: the secrets (unless the environment gave
    /// them) and the CA file, so that a missing one is a config error at start and
    /// at reload, not a failure at the first push.
    pub fn read_files(&mut self) -> Result<(), String> {
        if let Some(auth) = &mut self.basic_auth {
            if let (true, Some(path)) = (auth.password.is_empty(), &auth.password_file) {
                auth.password = Secret::from_file(path)
                    .map_err(|e| format!("basic_auth.password_file: {e}"))?;
            }
        }
        if let (true, Some(path)) = (self.bearer_token.is_empty(), &self.bearer_token_file) {
            self.bearer_token =
                Secret::from_file(path).map_err(|e| format!("bearer_token_file: {e}"))?;
        }
        if let Some(path) = &self.tls.ca_file {
            check_ca_file(path).map_err(|e| format!("tls.ca_file: {e}"))?;
        }
        Ok(())
    }

    /// Parses YAML text; the error names the field and the line.
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        // An empty document (or one of only comments) means "all defaults".
        let is_empty = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if is_empty {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies the `SC_*` environment variables, which win over the file.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Error> {
        for var in env::ENV_OVERRIDES {
            if let Some(value) = env(var.name) {
                (var.apply)(self, &value).map_err(|message| Error {
                    source: format!("environment {}", var.name),
                    message,
                })?;
            }
        }
        Ok(())
    }

    /// Checks what the types alone cannot: names, ranges, URLs.
    pub fn check(&self) -> Result<(), String> {
        if self.collection_interval < MIN_INTERVAL {
            return Err(format!(
                "collection_interval: {} is too short, expected at least {MIN_INTERVAL}",
                self.collection_interval
            ));
        }
        if let Some(endpoint) = &self.ingestor_endpoint {
            check_endpoint(endpoint).map_err(|e| format!("ingestor_endpoint: {e}"))?;
        }
        for (field, value) in [("vm_id", Some(&self.vm_id)), ("job", Some(&self.job))]
            .into_iter()
            .chain([("instance", self.instance.as_ref())])
        {
            if value.is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("{field}: expected a non-empty value"));
            }
        }
        for (name, value) in &self.labels {
            crate::labels::check_custom(name, value).map_err(|e| format!("labels: {e}"))?;
        }
        if self.filesystem.mount_timeout.as_duration().is_zero() {
            return Err("filesystem.mount_timeout: expected a duration above 0s".to_owned());
        }
        self.check_remote_write()
    }

    fn check_remote_write(&self) -> Result<(), String> {
        for (field, value) in [("timeout", self.timeout), ("min_backoff", self.min_backoff)] {
            if value.as_duration().is_zero() {
                return Err(format!("{field}: expected a duration above 0s"));
            }
        }
        if self.max_backoff < self.min_backoff {
            return Err(format!(
                "max_backoff: {} is shorter than min_backoff ({}); expected max_backoff >= min_backoff",
                self.max_backoff, self.min_backoff
            ));
        }
        if self.queue.max_bytes < MIN_QUEUE_BYTES {
            return Err(format!(
                "queue.max_bytes: {} is too small, expected at least {MIN_QUEUE_BYTES}",
                self.queue.max_bytes
            ));
        }
        if let Some(auth) = &self.basic_auth {
            if auth.username.is_empty() || auth.username.contains(':') {
                return Err(
                    "basic_auth.username: expected a non-empty user name without ':'".to_owned(),
                );
            }
            if auth.username.chars().any(char::is_control) {
                return Err("basic_auth.username: expected no control characters".to_owned());
            }
            if auth.password.is_empty() {
                return Err(
                    "basic_auth.password_file: expected a file holding the password \
                            (or the environment variable SC_BASIC_AUTH_PASSWORD)"
                        .to_owned(),
                );
            }
            if self.bearer_token_file.is_some() || !self.bearer_token.is_empty() {
                return Err(
                    "bearer_token_file: a bearer token (file or SC_BEARER_TOKEN) \
                            and basic_auth are both set; expected one or the other"
                        .to_owned(),
                );
            }
        }
        for (name, value) in &self.headers {
            check_header(name, value).map_err(|e| format!("headers: {e}"))?;
        }
        Ok(())
    }

    /// Whether the stdout text writer is used rather than remote write.
    pub fn prints_to_stdout(&self) -> bool {
        self.ingestor_endpoint.is_none()
    }

    /// The effective config as YAML. Secrets are never printed: a comment says which
    /// ones were loaded.
    pub fn to_yaml(&self) -> String {
        let mut text =
            serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot print config: {e}\n"));
        if self
            .basic_auth
            .as_ref()
            .is_some_and(|a| !a.password.is_empty())
        {
            text.push_str("# basic_auth password: loaded (not shown)\n");
        }
        if !self.bearer_token.is_empty() {
            text.push_str("# bearer token: loaded (not shown)\n");
        }
        text
    }
}

/// The smallest `queue.max_bytes`: below it hardly one batch fits.
pub const MIN_QUEUE_BYTES: Bytes = Bytes(1 << 10);

/// Headers sc-agent sets itself, which `headers` may not override.
pub const RESERVED_HEADERS: [&str; 10] = [
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "user-agent",
    "x-prometheus-remote-write-version",
    "expect",
];

fn check_header(name: &str, value: &str) -> Result<(), String> {
    // RFC 9110 token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("{name:?} is not a valid HTTP header name"));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        let hint = if name.eq_ignore_ascii_case("authorization") {
            "use basic_auth or bearer_token_file"
        } else {
            "remote write needs sc-agent's value"
        };
        return Err(format!(
            "{name:?} is set by sc-agent and cannot be overridden ({hint})"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "the value of {name:?} contains control characters; expected one line of text"
        ));
    }
    Ok(())
}

/// The CA file must hold at least one PEM certificate: an empty or wrong file would
/// otherwise only show as failing pushes.
fn check_ca_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES * 4)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{} holds no PEM certificate; expected -----BEGIN CERTIFICATE----- blocks",
            path.display()
        ));
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    let error = |message: String| Error {
        source: format!("config {}", path.display()),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| error(format!("cannot open: {e}")))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| error(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(error(format!(
            "file is larger than {MAX_FILE_BYTES} bytes; expected a YAML config"
        )));
    }
    Ok(text)
}

fn check_endpoint(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("expected an http:// or https:// URL, got {url:?}"))?;
    if url.starts_with("https://") && !cfg!(feature = "tls") {
        return Err(format!(
            "{url:?} needs HTTPS, but this build of sc-agent has no TLS (feature `tls`)"
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.contains('@') {
        // Never echo the URL here: the part before '@' is likely a password.
        return Err("credentials in the URL are not supported; \
                    expected basic_auth or bearer_token_file"
            .to_owned());
    }
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("expected a host name in {url:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_err(yaml: &str) -> String {
        Config::from_yaml(yaml).unwrap_err()
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert_eq!(config.check(), Ok(()));
        assert!(config.prints_to_stdout());
        assert_eq!(config.vm_id, AUTO_DETECT);
        assert_eq!(config.job, "node");
        assert_eq!(config.collection_interval, Millis::from_millis(15_000));
        assert!(Pattern::new(DISKSTATS_DEVICE_EXCLUDE).is_ok());
        assert!(Pattern::new(FILESYSTEM_MOUNT_POINTS_EXCLUDE).is_ok());
        assert!(Pattern::new(FILESYSTEM_FS_TYPES_EXCLUDE).is_ok());
        assert!(config.diskstats.device_exclude.is_some());
    }

    #[test]
    fn default_mount_point_exclude_is_node_exporters() {
        let exclude = FilesystemOptions::default().mount_points_exclude.unwrap();
        for excluded in [
            "/dev",
            "/dev/shm",
            "/proc",
            "/proc/sys/fs/binfmt_misc",
            "/sys/kernel/debug",
            "/run/credentials/getty@tty1.service",
            "/var/lib/docker/overlay2/abc/merged",
            "/var/lib/containers/storage/overlay",
        ] {
            assert!(exclude.is_match(excluded), "{excluded}");
        }
        for kept in [
            "/",
            "/devices",
            "/home",
            "/run",
            "/run/user/1000",
            "/run/credentials",
            "/var/lib/docker",
            "/srv/dev",
        ] {
            assert!(!exclude.is_match(kept), "{kept}");
        }
    }

    #[test]
    fn empty_or_comment_only_file_means_defaults() {
        assert_eq!(Config::from_yaml(""), Ok(Config::default()));
        assert_eq!(Config::from_yaml("# nothing\n\n"), Ok(Config::default()));
    }

    #[test]
    fn reads_the_original_field_names() {
        let config = Config::from_yaml(
            "collection_interval: 250ms\n\
             ingestor_endpoint: http://127.0.0.1:9090/api/v1/write\n\
             vm_id: my-vm\n\
             log_level: debug\n\
             collectors:\n  cpu: false\n  memory: true\n  loadavg: true\n  diskstats: false\n  netdev: true\n  filesystem: false\n\
             labels:\n  env: prod\n",
        )
        .unwrap();
        assert_eq!(config.collection_interval, Millis::from_millis(250));
        assert_eq!(config.vm_id, "my-vm");
        assert_eq!(config.log_level, LogLevel::Debug);
        assert!(
            !config.collectors.cpu && config.collectors.memory && !config.collectors.filesystem
        );
        assert_eq!(config.labels["env"], "prod");
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn bad_duration_names_the_field_and_line() {
        let err = parse_err("job: x\ncollection_interval: soon\n");
        assert!(err.contains("collection_interval"), "{err}");
        assert!(
            err.contains("expected a duration like 250ms, 30s or 5m"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_field_is_an_error() {
        let err = parse_err("colection_interval: 15s\n");
        assert!(err.contains("unknown field `colection_interval`"), "{err}");
        let nested = parse_err("collectors:\n  cpuu: true\n");
        assert!(nested.contains("collectors"), "{nested}");
        assert!(nested.contains("unknown field `cpuu`"), "{nested}");
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let err = parse_err("collectors:\n  cpu: sometimes\n");
        assert!(err.contains("collectors.cpu"), "{err}");
        let err = parse_err("log_level: loud\n");
        assert!(err.contains("log_level") && err.contains("loud"), "{err}");
    }

    #[test]
    fn bad_regex_names_the_field() {
        let err = parse_err("diskstats:\n  device_exclude: 'sd[a'\n");
        assert!(err.contains("diskstats.device_exclude"), "{err}");
        assert!(err.contains("invalid regular expression"), "{err}");
    }

    #[test]
    fn semantic_checks_name_the_field() {
        let mut config = Config::default();
        config.labels.insert("bad-name".into(), "x".into());
        assert!(config
            .check()
            .unwrap_err()
            .starts_with("labels: label name \"bad-name\""));

        let mut config = Config::default();
        config.labels.insert("__name__".into(), "x".into());
        assert!(config.check().unwrap_err().contains("reserved"));

        let config = Config {
            collection_interval: Millis::from_millis(1),
            ..Config::default()
        };
        assert!(config
            .check()
            .unwrap_err()
            .starts_with("collection_interval:"));

        let config = Config {
            ingestor_endpoint: Some("ftp://x".into()),
            ..Config::default()
        };
        assert!(config
            .check()
            .unwrap_err()
            .starts_with("ingestor_endpoint:"));

        let config = Config {
            job: " ".into(),
            ..Config::default()
        };
        assert_eq!(
            config.check().unwrap_err(),
            "job: expected a non-empty value"
        );
    }

    #[test]
    fn environment_wins_over_the_file() {
        let env = |name: &str| match name {
            "SC_COLLECTION_INTERVAL" => Some("2s".to_owned()),
            "SC_INGESTOR_ENDPOINT" => Some("https://example.com/write".to_owned()),
            "SC_LOG_LEVEL" => Some("warn".to_owned()),
            "SC_VM_ID" => Some("vm-1".to_owned()),
            "SC_LABELS" => Some("env=prod, team = sre".to_owned()),
            _ => None,
        };
        let mut config =
            Config::from_yaml("collection_interval: 5s\nlabels: {env: dev}\n").unwrap();
        config.apply_env(&env).unwrap();
        assert_eq!(config.collection_interval, Millis::from_millis(2_000));
        assert_eq!(
            config.ingestor_endpoint.as_deref(),
            Some("https://example.com/write")
        );
        assert_eq!(config.log_level, LogLevel::Warn);
        assert_eq!(config.vm_id, "vm-1");
        assert_eq!(config.labels["env"], "prod");
        assert_eq!(config.labels["team"], "sre");
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let env = |name: &str| (name == "SC_COLLECTION_INTERVAL").then(|| "often".to_owned());
        let err = Config::load(&Source::default(), &env).unwrap_err();
        assert_eq!(err.source, "environment SC_COLLECTION_INTERVAL");
        assert!(err.message.contains("expected a duration"), "{err}");
        let env = |name: &str| (name == "SC_LABELS").then(|| "novalue".to_owned());
        assert!(Config::load(&Source::default(), &env).is_err());
    }

    #[test]
    fn missing_file_is_named() {
        let source = Source {
            path: Some(PathBuf::from("/nonexistent/sc-agent.yaml")),
        };
        let err = Config::load(&source, &no_env).unwrap_err();
        assert_eq!(err.source, "config /nonexistent/sc-agent.yaml");
        assert!(err.message.starts_with("cannot open"), "{err}");
    }

    #[test]
    fn source_prefers_the_flag() {
        let env = |_: &str| Some("/from/env.yaml".to_owned());
        let flag = Source::resolve(Some(PathBuf::from("/from/flag.yaml")), &env);
        assert_eq!(flag.path, Some(PathBuf::from("/from/flag.yaml")));
        assert_eq!(
            Source::resolve(None, &env).path,
            Some(PathBuf::from("/from/env.yaml"))
        );
        assert_eq!(Source::resolve(None, &no_env).path, None);
    }

    #[test]
    fn remote_write_fields_have_their_defaults() {
        let config = Config::default();
        assert_eq!(config.timeout, Millis::from_millis(10_000));
        assert_eq!(config.min_backoff, Millis::from_millis(30));
        assert_eq!(config.max_backoff, Millis::from_millis(5_000));
        assert_eq!(config.shutdown_timeout, Millis::from_millis(10_000));
        assert_eq!(config.queue.max_bytes, Bytes(4 << 20));
        assert!(config.basic_auth.is_none() && config.bearer_token.is_empty());
        let config = Config::from_yaml(
            "timeout: 1500ms\nmin_backoff: 10ms\nmax_backoff: 1s\nshutdown_timeout: 0s\n\
             queue:\n  max_bytes: 512KiB\nheaders:\n  X-Scope-OrgID: team-a\n",
        )
        .unwrap();
        assert_eq!(config.check(), Ok(()));
        assert_eq!(config.queue.max_bytes, Bytes(512 << 10));
        assert_eq!(config.headers["X-Scope-OrgID"], "team-a");
        let plain = Config::from_yaml("queue: {max_bytes: 65536}\n").unwrap();
        assert_eq!(plain.queue.max_bytes, Bytes(65536));
    }

    #[test]
    fn remote_write_checks_name_the_field() {
        let err = |yaml: &str| Config::from_yaml(yaml).and_then(|c| c.check()).unwrap_err();
        assert_eq!(
            err("min_backoff: 2s\nmax_backoff: 1s\n"),
            "max_backoff: 1s is shorter than min_backoff (2s); expected max_backoff >= min_backoff"
        );
        assert!(err("timeout: 0s\n").starts_with("timeout: expected a duration above 0s"));
        assert!(err("min_backoff: 0s\n").starts_with("min_backoff:"));
        assert!(err("queue:\n  max_bytes: 100\n").starts_with("queue.max_bytes: 100B is too small"));
        let parse = parse_err("queue:\n  max_bytes: 4 megs\n");
        assert!(
            parse.contains("queue.max_bytes") && parse.contains("4MiB"),
            "{parse}"
        );
        assert!(parse_err("queue:\n  max_byte: 1\n").contains("unknown field `max_byte`"));
        assert!(parse_err("tls:\n  cafile: x\n").contains("unknown field `cafile`"));
        // A password cannot be written into the config itself.
        let inline = parse_err("basic_auth:\n  username: u\n  password: p\n");
        assert!(inline.contains("unknown field `password`"), "{inline}");
        assert!(err("headers:\n  Authorization: Bearer x\n")
            .starts_with("headers: \"Authorization\" is set by sc-agent"));
        assert!(
            err("headers:\n  content-type: text/plain\n").starts_with("headers: \"content-type\"")
        );
        assert!(err("headers:\n  'bad header': x\n").contains("not a valid HTTP header name"));
        assert!(err("headers:\n  X-A: \"a\\r\\nX-B: b\"\n").contains("control characters"));
        assert!(err("basic_auth:\n  username: u\n").starts_with("basic_auth.password_file:"));
        assert!(err("basic_auth:\n  username: 'a:b'\n").starts_with("basic_auth.username:"));
        let with_url_secret = Config {
            ingestor_endpoint: Some("http://user:hunter2@example.com/write".into()),
            ..Config::default()
        };
        let e = with_url_secret.check().unwrap_err();
        assert!(
            e.starts_with("ingestor_endpoint: credentials in the URL"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn secrets_come_from_files_or_the_environment_and_are_never_printed() {
        let dir = crate::testing::TempDir::new();
        let password = dir.write("password", "pa55word\n");
        let token = dir.write("token", "t0ken\n");
        let config_path = dir.write(
            "c.yaml",
            &format!(
                "ingestor_endpoint: http://example.com/w\nbasic_auth:\n  username: agent\n  password_file: {}\n",
                password.display()
            ),
        );
        let source = Source {
            path: Some(config_path.clone()),
        };
        let config = Config::load(&source, &no_env).unwrap();
        let auth = config.basic_auth.as_ref().unwrap();
        assert_eq!(auth.password.expose(), "pa55word");
        let printed = config.to_yaml();
        assert!(!printed.contains("pa55word"), "{printed}");
        assert!(
            printed.contains("# basic_auth password: loaded (not shown)"),
            "{printed}"
        );
        assert!(!format!("{config:?}").contains("pa55word"));

        // The environment wins over the file.
        let env = |name: &str| (name == "SC_BASIC_AUTH_PASSWORD").then(|| "fr0m-env".to_owned());
        let config = Config::load(&source, &env).unwrap();
        assert_eq!(config.basic_auth.unwrap().password.expose(), "fr0m-env");

        // A missing secret file is an error naming the field.
        let missing = dir.write(
            "m.yaml",
            "basic_auth:\n  username: agent\n  password_file: /nonexistent/pw\n",
        );
        let err = Config::load(
            &Source {
                path: Some(missing),
            },
            &no_env,
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("basic_auth.password_file: cannot open /nonexistent/pw"),
            "{err}"
        );
        let missing = dir.write("t.yaml", "bearer_token_file: /nonexistent/token\n");
        let err = Config::load(
            &Source {
                path: Some(missing),
            },
            &no_env,
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("bearer_token_file: cannot open"),
            "{err}"
        );

        // Bearer token from a file, or from SC_BEARER_TOKEN; not both kinds of auth.
        let bearer = dir.write(
            "b.yaml",
            &format!("bearer_token_file: {}\n", token.display()),
        );
        let config = Config::load(&Source { path: Some(bearer) }, &no_env).unwrap();
        assert_eq!(config.bearer_token.expose(), "t0ken");
        assert!(!config.to_yaml().contains("t0ken"));
        let env = |name: &str| (name == "SC_BEARER_TOKEN").then(|| "env-t0ken".to_owned());
        let err = Config::load(&source, &env).unwrap_err();
        assert!(err.message.starts_with("bearer_token_file:"), "{err}");

        // Username and password from the environment alone.
        let env = |name: &str| match name {
            "SC_BASIC_AUTH_USERNAME" => Some("u".to_owned()),
            "SC_BASIC_AUTH_PASSWORD" => Some("p".to_owned()),
            _ => None,
        };
        let config = Config::load(&Source::default(), &env).unwrap();
        assert_eq!(config.basic_auth.unwrap().password.expose(), "p");
        let env = |name: &str| (name == "SC_BASIC_AUTH_PASSWORD").then(|| "lonely".to_owned());
        let err = Config::load(&Source::default(), &env).unwrap_err();
        assert_eq!(err.source, "environment SC_BASIC_AUTH_PASSWORD");
        assert!(!err.to_string().contains("lonely"), "{err}");
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = crate::testing::TempDir::new();
        let not_pem = dir.write("ca.pem", "hello\n");
        let path = dir.write(
            "c.yaml",
            &format!("tls:\n  ca_file: {}\n", not_pem.display()),
        );
        let err = Config::load(&Source { path: Some(path) }, &no_env).unwrap_err();
        assert!(err.message.starts_with("tls.ca_file:"), "{err}");
        assert!(err.message.contains("no PEM certificate"), "{err}");
        let env = |name: &str| (name == "SC_TLS_CA_FILE").then(|| "/nonexistent/ca.pem".to_owned());
        let err = Config::load(&Source::default(), &env).unwrap_err();
        assert!(err.message.starts_with("tls.ca_file: cannot open"), "{err}");
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let mut config = Config::default();
        config.labels.insert("env".into(), "prod".into());
        config.collection_interval = Millis::from_millis(1_500);
        config.queue.max_bytes = Bytes(3000);
        config.headers.insert("X-Scope-OrgID".into(), "a".into());
        config.tls.ca_file = Some(PathBuf::from("/etc/ca.pem"));
        config.bearer_token_file = Some(PathBuf::from("/etc/token"));
        let again = Config::from_yaml(&config.to_yaml()).unwrap();
        assert_eq!(again, config);
    }
}
