//! The agent's configuration: YAML, then `SC_*` environment overrides, then checks.
//!
//! Every field has a default, so an empty file (or no file) is a working config that
//! prints node_exporter's metrics to stdout. Unknown fields are errors: they are
//! usually typos that would otherwise be silently ignored. Every error names the
//! field (its full path) and, for the file, the line.
//!
//! This module holds the loader and the top level; each concern has its own part:
//! [`collectors`] (the shape of the `collectors:` section; the entries come from the
//! collector table), [`remote_write`] (delivery) and its [`tls`] files, [`env`] (the `SC_*` variables), and
//! the value types ([`Millis`], [`Bytes`], [`Pattern`], [`Secret`]) with their serde
//! helper [`de`].

pub mod bytesize;
pub mod collectors;
pub(crate) mod de;
pub mod duration;
mod env;
pub mod pattern;
pub mod remote_write;
pub mod secret;
pub mod tls;

pub use bytesize::Bytes;
pub use duration::Millis;
pub use pattern::{Filter, Pattern};
pub use remote_write::RemoteWriteConfig;
pub use secret::Secret;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the config text is read from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigPath {
    /// `--config`, else `SC_AGENT_CONFIG`; `None` means built-in defaults.
    pub path: Option<PathBuf>,
}

impl ConfigPath {
    /// The path from the command line if given, else from `SC_AGENT_CONFIG`.
    pub fn resolve(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let path = flag.or_else(|| {
            env("SC_AGENT_CONFIG")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        ConfigPath { path }
    }

    /// `config <path>` (or `config` for the built-in defaults), for messages.
    fn describe(&self) -> String {
        match &self.path {
            Some(path) => format!("config {}", path.display()),
            None => "config".to_owned(),
        }
    }
}

/// A configuration that could not be used, with the field or file at fault.
#[derive(Debug, PartialEq)]
pub struct ConfigError {
    /// `config <path>` or `environment <VARIABLE>`.
    pub source: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl std::error::Error for ConfigError {}

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

/// The whole configuration. Field names are part of the interface: keep them.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub collection_interval: Millis,
    /// Remote write URL; when empty, each cycle is printed to stdout instead.
    pub ingestor_endpoint: Option<String>,
    /// How batches reach `ingestor_endpoint`.
    pub remote_write: RemoteWriteConfig,
    /// `auto-detect` or a literal ID.
    pub vm_id: String,
    pub job: String,
    /// Defaults to the host name.
    pub instance: Option<String>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    pub labels: BTreeMap<String, String>,
    pub paths: Paths,
    /// Which collectors run, and their options.
    pub collectors: crate::collector::Settings,
}

pub const AUTO_DETECT: &str = "auto-detect";

impl Default for Config {
    fn default() -> Self {
        Config {
            collection_interval: Millis::from_millis(15_000),
            ingestor_endpoint: None,
            remote_write: RemoteWriteConfig::default(),
            vm_id: AUTO_DETECT.to_owned(),
            job: "node".to_owned(),
            instance: None,
            log_level: LogLevel::default(),
            log_format: LogFormat::default(),
            labels: BTreeMap::new(),
            paths: Paths::default(),
            collectors: crate::collector::Settings::default(),
        }
    }
}

/// The shortest interval accepted; below it the agent would mostly measure itself.
pub const MIN_INTERVAL: Millis = Millis::from_millis(10);
/// The largest config file read; anything bigger is certainly not a config.
const MAX_FILE_BYTES: u64 = 1 << 20;

impl Config {
    /// Reads the file (if any), applies environment overrides and checks the result.
    pub fn load(
        path: &ConfigPath,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match &path.path {
            Some(file) => {
                Config::from_yaml(&read_config_file(file)?).map_err(|message| ConfigError {
                    source: path.describe(),
                    message,
                })?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        let error = |message| ConfigError {
            source: path.describe(),
            message,
        };
        config.remote_write.read_files().map_err(error)?;
        config.check().map_err(error)?;
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
        serde_yaml::from_str(text).map_err(|e| de::join_field(e.to_string()))
    }

    /// Applies the `SC_*` environment variables, which win over the file.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for var in env::ENV_OVERRIDES {
            if let Some(value) = env(var.name) {
                (var.apply)(self, &value).map_err(|message| ConfigError {
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
            remote_write::check_endpoint(endpoint)
                .map_err(|e| format!("ingestor_endpoint: {e}"))?;
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
        self.collectors.check()?;
        self.remote_write.check()
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
        let rw = &self.remote_write;
        if rw
            .basic_auth
            .as_ref()
            .is_some_and(|a| !a.password.is_empty())
        {
            text.push_str("# remote_write.basic_auth password: loaded (not shown)\n");
        }
        if !rw.bearer_token.is_empty() {
            text.push_str("# remote_write bearer token: loaded (not shown)\n");
        }
        text
    }
}

fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let error = |message: String| ConfigError {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_err(yaml: &str) -> String {
        Config::from_yaml(yaml).unwrap_err()
    }

    fn at(path: PathBuf) -> ConfigPath {
        ConfigPath { path: Some(path) }
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert_eq!(config.check(), Ok(()));
        assert!(config.prints_to_stdout());
        assert_eq!(config.vm_id, AUTO_DETECT);
        assert_eq!(config.job, "node");
        assert_eq!(config.collection_interval, Millis::from_millis(15_000));
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
        let collectors = &config.collectors;
        assert!(!collectors.cpu.enabled && collectors.meminfo.enabled);
        assert!(!collectors.filesystem.enabled);
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
        let nested = parse_err("job: x\ncollectors:\n  cpu: true\n  cpuu: true\n");
        assert!(nested.starts_with("collectors: "), "{nested}");
        assert!(nested.contains("unknown field `cpuu`"), "{nested}");
        assert!(nested.contains("line 3"), "{nested}");
        // Delivery settings live under remote_write: now.
        let moved = parse_err("timeout: 5s\n");
        assert!(moved.contains("unknown field `timeout`"), "{moved}");
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let err = parse_err("collectors:\n  cpu: sometimes\n");
        assert!(err.contains("collectors.cpu"), "{err}");
        let err = parse_err("log_level: loud\n");
        assert!(err.contains("log_level") && err.contains("loud"), "{err}");
        let err = parse_err("remote_write:\n  timeout: soon\n");
        assert!(err.starts_with("remote_write.timeout: "), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn collector_options_name_the_field_and_line() {
        let err = parse_err("job: x\ncollectors:\n  diskstats:\n    device_exclude: 'sd[a'\n");
        assert!(
            err.starts_with("collectors.diskstats.device_exclude: "),
            "{err}"
        );
        assert!(err.contains("invalid regular expression"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        let config =
            Config::from_yaml("collectors:\n  filesystem:\n    mount_timeout: 0s\n").unwrap();
        assert_eq!(
            config.check(),
            Err("collectors.filesystem.mount_timeout: expected a duration above 0s".to_owned())
        );
    }

    #[test]
    fn relabel_rules_name_their_index_field_and_line() {
        let err = parse_err(
            "job: x\nremote_write:\n  write_relabel_configs:\n\
             \x20   - {source_labels: [__name__], regex: 'node_.*', action: keep}\n\
             \x20   - {target_label: env, replacement: prod}\n\
             \x20   - source_labels: [device]\n\
             \x20     target_label: 0x\n",
        );
        assert!(
            err.starts_with(
                "remote_write.write_relabel_configs[2].target_label: \"0x\" is invalid \
                 'target_label' for replace action"
            ),
            "{err}"
        );
        assert!(err.contains("line 6"), "{err}");
        let err =
            parse_err("remote_write:\n  write_relabel_configs:\n  - {action: drop, regex: 'a('}\n");
        assert!(
            err.starts_with(
                "remote_write.write_relabel_configs[0].regex: invalid regular expression"
            ),
            "{err}"
        );
        assert!(err.contains("line 3"), "{err}");
        let config = Config::from_yaml(
            "remote_write:\n  max_series: 100\n  write_relabel_configs:\n  - {regex: env, action: labeldrop}\n",
        )
        .unwrap();
        assert_eq!(config.remote_write.max_series, Some(100));
        assert_eq!(config.remote_write.write_relabel_configs.len(), 1);
        assert_eq!(Config::from_yaml(&config.to_yaml()), Ok(config));
        let zero = Config::from_yaml("remote_write: {max_series: 0}\n").unwrap();
        assert!(zero
            .check()
            .unwrap_err()
            .starts_with("remote_write.max_series: expected a positive"));
        assert!(
            parse_err("remote_write: {max_series: -5}\n").starts_with("remote_write.max_series: ")
        );
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
        let config = Config::from_yaml("remote_write:\n  min_backoff: 0s\n").unwrap();
        assert!(config
            .check()
            .unwrap_err()
            .starts_with("remote_write.min_backoff:"));
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
        let err = Config::load(&ConfigPath::default(), &env).unwrap_err();
        assert_eq!(err.source, "environment SC_COLLECTION_INTERVAL");
        assert!(err.message.contains("expected a duration"), "{err}");
        let env = |name: &str| (name == "SC_LABELS").then(|| "novalue".to_owned());
        assert!(Config::load(&ConfigPath::default(), &env).is_err());
    }

    #[test]
    fn missing_file_is_named() {
        let err =
            Config::load(&at(PathBuf::from("/nonexistent/sc-agent.yaml")), &no_env).unwrap_err();
        assert_eq!(err.source, "config /nonexistent/sc-agent.yaml");
        assert!(err.message.starts_with("cannot open"), "{err}");
    }

    #[test]
    fn the_path_prefers_the_flag() {
        let env = |_: &str| Some("/from/env.yaml".to_owned());
        let flag = ConfigPath::resolve(Some(PathBuf::from("/from/flag.yaml")), &env);
        assert_eq!(flag.path, Some(PathBuf::from("/from/flag.yaml")));
        assert_eq!(
            ConfigPath::resolve(None, &env).path,
            Some(PathBuf::from("/from/env.yaml"))
        );
        assert_eq!(ConfigPath::resolve(None, &no_env).path, None);
    }

    #[test]
    fn secrets_come_from_files_or_the_environment_and_are_never_printed() {
        let dir = crate::testing::TempDir::new();
        let password = dir.write("password", "pa55word\n");
        let token = dir.write("token", "t0ken\n");
        let config_path = dir.write(
            "c.yaml",
            &format!(
                "ingestor_endpoint: http://example.com/w\nremote_write:\n  basic_auth:\n    \
                 username: agent\n    password_file: {}\n",
                password.display()
            ),
        );
        let source = at(config_path);
        let config = Config::load(&source, &no_env).unwrap();
        let auth = config.remote_write.basic_auth.as_ref().unwrap();
        assert_eq!(auth.password.expose(), "pa55word");
        let printed = config.to_yaml();
        assert!(!printed.contains("pa55word"), "{printed}");
        assert!(
            printed.contains("# remote_write.basic_auth password: loaded (not shown)"),
            "{printed}"
        );
        assert!(!format!("{config:?}").contains("pa55word"));

        // The environment wins over the file.
        let env = |name: &str| (name == "SC_BASIC_AUTH_PASSWORD").then(|| "fr0m-env".to_owned());
        let config = Config::load(&source, &env).unwrap();
        let auth = config.remote_write.basic_auth.unwrap();
        assert_eq!(auth.password.expose(), "fr0m-env");

        // A missing secret file is an error naming the field.
        let missing = dir.write(
            "m.yaml",
            "remote_write:\n  basic_auth:\n    username: agent\n    password_file: /nonexistent/pw\n",
        );
        let err = Config::load(&at(missing), &no_env).unwrap_err();
        assert!(
            err.message
                .starts_with("remote_write.basic_auth.password_file: cannot open /nonexistent/pw"),
            "{err}"
        );
        let missing = dir.write(
            "t.yaml",
            "remote_write: {bearer_token_file: /nonexistent/t}\n",
        );
        let err = Config::load(&at(missing), &no_env).unwrap_err();
        assert!(
            err.message
                .starts_with("remote_write.bearer_token_file: cannot open"),
            "{err}"
        );

        // Bearer token from a file, or from SC_BEARER_TOKEN; not both kinds of auth.
        let bearer = dir.write(
            "b.yaml",
            &format!("remote_write:\n  bearer_token_file: {}\n", token.display()),
        );
        let config = Config::load(&at(bearer), &no_env).unwrap();
        assert_eq!(config.remote_write.bearer_token.expose(), "t0ken");
        assert!(!config.to_yaml().contains("t0ken"));
        let env = |name: &str| (name == "SC_BEARER_TOKEN").then(|| "env-t0ken".to_owned());
        let err = Config::load(&source, &env).unwrap_err();
        assert!(
            err.message.starts_with("remote_write.bearer_token_file:"),
            "{err}"
        );

        // Username and password from the environment alone.
        let env = |name: &str| match name {
            "SC_BASIC_AUTH_USERNAME" => Some("u".to_owned()),
            "SC_BASIC_AUTH_PASSWORD" => Some("p".to_owned()),
            _ => None,
        };
        let config = Config::load(&ConfigPath::default(), &env).unwrap();
        let auth = config.remote_write.basic_auth.unwrap();
        assert_eq!(auth.password.expose(), "p");
        let env = |name: &str| (name == "SC_BASIC_AUTH_PASSWORD").then(|| "lonely".to_owned());
        let err = Config::load(&ConfigPath::default(), &env).unwrap_err();
        assert_eq!(err.source, "environment SC_BASIC_AUTH_PASSWORD");
        assert!(!err.to_string().contains("lonely"), "{err}");
    }

    #[test]
    fn a_ca_file_from_the_environment_is_checked() {
        let env = |name: &str| (name == "SC_TLS_CA_FILE").then(|| "/nonexistent/ca.pem".to_owned());
        let err = Config::load(&ConfigPath::default(), &env).unwrap_err();
        assert!(
            err.message
                .starts_with("remote_write.tls.ca_file: cannot open"),
            "{err}"
        );
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let mut config = Config::default();
        config.labels.insert("env".into(), "prod".into());
        config.collection_interval = Millis::from_millis(1_500);
        let rw = &mut config.remote_write;
        rw.queue.max_bytes = Bytes(3000);
        rw.headers.insert("X-Scope-OrgID".into(), "a".into());
        rw.tls.ca_file = Some(PathBuf::from("/etc/ca.pem"));
        rw.bearer_token_file = Some(PathBuf::from("/etc/token"));
        config.collectors.netclass.enabled = false;
        config.collectors.diskstats.options.device_include = Pattern::new("^sd").ok();
        config.collectors.diskstats.options.device_exclude = None;
        let again = Config::from_yaml(&config.to_yaml()).unwrap();
        assert_eq!(again, config);
    }
}
