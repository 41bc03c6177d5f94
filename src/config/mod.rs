//! The agent's configuration: YAML, then `SC_*` environment overrides, then checks.
//!
//! Every field has a default, so an empty file (or no file) is a working config that
//! prints node_exporter's metrics to stdout. Unknown fields are errors: they are
//! usually typos that would otherwise be silently ignored.

pub mod duration;
pub mod pattern;

pub use duration::Millis;
pub use pattern::{Filter, Pattern};

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

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetdevOptions {
    pub device_include: Option<Pattern>,
    pub device_exclude: Option<Pattern>,
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

/// The whole configuration. Field names are part of the interface: keep them.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub collection_interval: Millis,
    /// Remote write URL; when empty, each cycle is printed to stdout instead.
    pub ingestor_endpoint: Option<String>,
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
    pub filesystem: FilesystemOptions,
}

pub const AUTO_DETECT: &str = "auto-detect";

impl Default for Config {
    fn default() -> Self {
        Config {
            collection_interval: Millis::from_millis(15_000),
            ingestor_endpoint: None,
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
        config.check().map_err(|message| Error {
            source: match &source.path {
                Some(path) => format!("config {}", path.display()),
                None => "config".to_owned(),
            },
            message,
        })?;
        Ok(config)
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
        for var in ENV_OVERRIDES {
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
        Ok(())
    }

    /// Whether the stdout text writer is used rather than remote write.
    pub fn prints_to_stdout(&self) -> bool {
        self.ingestor_endpoint.is_none()
    }

    /// The effective config as YAML, with secrets masked.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
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
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("expected a host name in {url:?}"));
    }
    Ok(())
}

/// One `SC_*` variable and how it changes the config.
struct EnvOverride {
    name: &'static str,
    apply: fn(&mut Config, &str) -> Result<(), String>,
}

/// Non-empty text, or the error every text override gives.
fn text(value: &str) -> Result<String, String> {
    match value.trim() {
        "" => Err("expected a non-empty value".to_owned()),
        v => Ok(v.to_owned()),
    }
}

fn enum_value<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_yaml::from_str(value.trim()).map_err(|e| e.to_string())
}

const ENV_OVERRIDES: &[EnvOverride] = &[
    EnvOverride {
        name: "SC_COLLECTION_INTERVAL",
        apply: |c, v| {
            c.collection_interval = Millis(duration::parse(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_INGESTOR_ENDPOINT",
        // An empty value switches remote write off (stdout), as in the file.
        apply: |c, v| {
            c.ingestor_endpoint = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_VM_ID",
        apply: |c, v| {
            c.vm_id = text(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_JOB",
        apply: |c, v| {
            c.job = text(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_INSTANCE",
        apply: |c, v| {
            c.instance = Some(text(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_LOG_LEVEL",
        apply: |c, v| {
            c.log_level = enum_value(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_LOG_FORMAT",
        apply: |c, v| {
            c.log_format = enum_value(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_LABELS",
        apply: |c, v| {
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, value) = pair.split_once('=').ok_or_else(|| {
                    format!("expected name=value pairs separated by commas, got {pair:?}")
                })?;
                c.labels
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_PROCFS",
        apply: |c, v| {
            c.paths.procfs = PathBuf::from(text(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_SYSFS",
        apply: |c, v| {
            c.paths.sysfs = PathBuf::from(text(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_ROOTFS",
        apply: |c, v| {
            c.paths.rootfs = PathBuf::from(text(v)?);
            Ok(())
        },
    },
];

/// The names of the environment overrides, for `--help` and the README.
pub fn env_override_names() -> impl Iterator<Item = &'static str> {
    ENV_OVERRIDES.iter().map(|o| o.name)
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
    fn printed_config_reads_back_the_same() {
        let mut config = Config::default();
        config.labels.insert("env".into(), "prod".into());
        config.collection_interval = Millis::from_millis(1_500);
        let again = Config::from_yaml(&config.to_yaml()).unwrap();
        assert_eq!(again, config);
    }
}
