//! The `remote_write:` section: how batches are delivered to `ingestor_endpoint`
//! (timeouts, retries, the queue, credentials, headers; TLS is in [`super::tls`]),
//! and the checks of the endpoint URL itself.

use super::tls::TlsOptions;
use super::{Bytes, Millis, Secret};
use crate::relabel::Rules;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Delivery settings. Every field has a default; they matter only with an
/// `ingestor_endpoint`, but for `write_relabel_configs` and `max_series`, which
/// apply to stdout too (it shows what a push would send).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// How long one remote write request may take, from connecting (or reusing the
    /// kept connection) through the TLS handshake and sending the body to the end of
    /// the response head (default `10s`; sub-second values are honoured as written).
    /// A request that times out is retried.
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
    /// On a clean stop (SIGTERM/SIGINT), send a stale marker for every series of the
    /// last batch (default `true`), so that Prometheus shows the host's series as gone
    /// at once instead of for five more minutes. A restart then shows a gap of one
    /// interval; set it to `false` where that matters more.
    pub stale_markers_on_shutdown: bool,
    /// Batches older than this are dropped and counted
    /// (`sc_agent_samples_dropped_total{reason="too_old"}`) instead of sent (default:
    /// off, everything is sent). Set it below what the ingestor still accepts, so a
    /// backlog after days offline does not replay what would be rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sample_age: Option<Millis>,
    pub queue: QueueOptions,
    pub spool: SpoolOptions,
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
    /// Prometheus relabel rules (`write_relabel_configs`, Prometheus' fields and
    /// defaults), applied to the final labels of every series (identity labels and
    /// the agent's own series included) before it is written, to the endpoint or to
    /// stdout. Each rule is checked as it is read; an error names its index and
    /// field. Default: none.
    #[serde(skip_serializing_if = "Rules::is_empty")]
    pub write_relabel_configs: Rules,
    /// The cardinality guard: once this many distinct series (after relabeling)
    /// are known, a series never seen before is left out and counted
    /// (`sc_agent_series_dropped_total{reason="limit"}`); known series keep flowing,
    /// and one not seen for [`crate::relabel::FORGET_AFTER_CYCLES`] cycles frees its
    /// place. The agent's own `sc_agent_*` series are never left out. Default: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_series: Option<usize>,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            timeout: Millis::from_millis(10_000),
            min_backoff: Millis::from_millis(30),
            max_backoff: Millis::from_millis(5_000),
            shutdown_timeout: Millis::from_millis(10_000),
            stale_markers_on_shutdown: true,
            max_sample_age: None,
            queue: QueueOptions::default(),
            spool: SpoolOptions::default(),
            basic_auth: None,
            bearer_token_file: None,
            bearer_token: Secret::default(),
            headers: BTreeMap::new(),
            tls: TlsOptions::default(),
            write_relabel_configs: Rules::default(),
            max_series: None,
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

/// The disk spool behind the memory queue: what could not be delivered yet, kept
/// across restarts, crashes and power cuts.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolOptions {
    /// Where (default `/var/lib/sc-agent/spool`, the systemd unit's state directory);
    /// empty: no spool, memory only. Created 0700 if missing. Normal operation
    /// writes nothing there: only batches the endpoint did not take yet.
    #[serde(with = "optional_path")]
    pub directory: Option<PathBuf>,
    /// The most bytes kept on disk (default `256MiB`); past it the oldest batches
    /// are dropped and counted (`sc_agent_samples_dropped_total{reason="spool_full"}`).
    pub max_bytes: Bytes,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            directory: Some(PathBuf::from(DEFAULT_SPOOL_DIRECTORY)),
            max_bytes: Bytes(256 << 20),
        }
    }
}

/// The spool's default directory: the systemd unit's `StateDirectory=sc-agent`.
pub const DEFAULT_SPOOL_DIRECTORY: &str = "/var/lib/sc-agent/spool";
/// The smallest `spool.max_bytes`: a few batches.
pub const MIN_SPOOL_BYTES: Bytes = Bytes(64 << 10);

/// A path where the empty string means none (`directory: ""` turns the spool off).
mod optional_path {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::path::PathBuf;

    pub fn serialize<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &path
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        Ok(Some(text)
            .filter(|t| !t.trim().is_empty())
            .map(PathBuf::from))
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

impl RemoteWriteConfig {
    /// Reads the files the section names: the secrets (unless the environment gave
    /// them) and the TLS files, so that a missing one is a config error at start and
    /// at reload, not a failure at the first push. Messages name the field.
    pub fn read_files(&mut self) -> Result<(), String> {
        if let Some(auth) = &mut self.basic_auth {
            if let (true, Some(path)) = (auth.password.is_empty(), &auth.password_file) {
                auth.password = Secret::from_file(path)
                    .map_err(|e| format!("remote_write.basic_auth.password_file: {e}"))?;
            }
        }
        if let (true, Some(path)) = (self.bearer_token.is_empty(), &self.bearer_token_file) {
            self.bearer_token = Secret::from_file(path)
                .map_err(|e| format!("remote_write.bearer_token_file: {e}"))?;
        }
        self.tls.read_files()
    }

    /// Checks what the types alone cannot; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [("timeout", self.timeout), ("min_backoff", self.min_backoff)] {
            if value.as_duration().is_zero() {
                return Err(format!(
                    "remote_write.{field}: expected a duration above 0s"
                ));
            }
        }
        if self.max_backoff < self.min_backoff {
            return Err(format!(
                "remote_write.max_backoff: {} is shorter than min_backoff ({}); \
                 expected max_backoff >= min_backoff",
                self.max_backoff, self.min_backoff
            ));
        }
        if self.queue.max_bytes < MIN_QUEUE_BYTES {
            return Err(format!(
                "remote_write.queue.max_bytes: {} is too small, expected at least {MIN_QUEUE_BYTES}",
                self.queue.max_bytes
            ));
        }
        if self.spool.directory.is_some() && self.spool.max_bytes < MIN_SPOOL_BYTES {
            return Err(format!(
                "remote_write.spool.max_bytes: {} is too small, expected at least {MIN_SPOOL_BYTES}",
                self.spool.max_bytes
            ));
        }
        if self
            .spool
            .directory
            .as_ref()
            .is_some_and(|d| d.is_relative())
        {
            return Err(
                "remote_write.spool.directory: expected an absolute path (or \"\" for none)"
                    .to_owned(),
            );
        }
        if self
            .max_sample_age
            .is_some_and(|age| age.as_duration().is_zero())
        {
            return Err(
                "remote_write.max_sample_age: expected a duration above 0s (or no field \
                 to send every sample)"
                    .to_owned(),
            );
        }
        if let Some(auth) = &self.basic_auth {
            if auth.username.is_empty() || auth.username.contains(':') {
                return Err(
                    "remote_write.basic_auth.username: expected a non-empty user name \
                            without ':'"
                        .to_owned(),
                );
            }
            if auth.username.chars().any(char::is_control) {
                return Err(
                    "remote_write.basic_auth.username: expected no control characters".to_owned(),
                );
            }
            if auth.password.is_empty() {
                return Err(
                    "remote_write.basic_auth.password_file: expected a file holding \
                            the password (or the environment variable SC_BASIC_AUTH_PASSWORD)"
                        .to_owned(),
                );
            }
            if self.bearer_token_file.is_some() || !self.bearer_token.is_empty() {
                return Err("remote_write.bearer_token_file: a bearer token (file or \
                            SC_BEARER_TOKEN) and basic_auth are both set; expected one or \
                            the other"
                    .to_owned());
            }
        }
        for (name, value) in &self.headers {
            check_header(name, value).map_err(|e| format!("remote_write.headers: {e}"))?;
        }
        if self.max_series == Some(0) {
            return Err(
                "remote_write.max_series: expected a positive number of series (or no \
                 field for no limit)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

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

/// Checks an `ingestor_endpoint` URL.
pub fn check_endpoint(url: &str) -> Result<(), String> {
    Endpoint::parse(url).map(drop)
}

/// An `ingestor_endpoint` URL taken apart into what an HTTP request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    /// The host name or IP address, without the brackets of an IPv6 literal.
    pub host: String,
    /// The URL's port, else 80 or 443.
    pub port: u16,
    /// `host[:port]` as the URL writes it: the `Host` header.
    pub authority: String,
    /// The path and query (`/` when the URL has no path), without any `#fragment`.
    pub target: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL. Errors never echo what precedes an `@`
    /// (credentials, refused).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("expected an http:// or https:// URL, got {url:?}"));
        };
        if https && !cfg!(feature = "tls") {
            return Err(format!(
                "{url:?} needs HTTPS, but this build of sc-agent has no TLS (feature `tls`)"
            ));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            // Never echo the URL here: the part before '@' is likely a password.
            return Err("credentials in the URL are not supported; \
                        expected remote_write.basic_auth or remote_write.bearer_token_file"
                .to_owned());
        }
        let no_host = || format!("expected a host name in {url:?}");
        let (host, port) = match authority.strip_prefix('[') {
            // An IPv6 literal: [::1]:9090
            Some(inner) => {
                let (address, after) = inner.split_once(']').ok_or_else(no_host)?;
                address
                    .parse::<std::net::Ipv6Addr>()
                    .map_err(|_| format!("expected an IPv6 address between [ and ] in {url:?}"))?;
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or_else(no_host)?),
                };
                (address, port)
            }
            None => {
                let (host, port) = match authority.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (authority, None),
                };
                let host_char = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
                if host.is_empty() || !host.chars().all(host_char) {
                    return Err(no_host());
                }
                (host, port)
            }
        };
        let port = match port.filter(|p| !p.is_empty()) {
            None if https => 443,
            None => 80,
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("expected a port from 1 to 65535 in {url:?}"))?,
        };
        let target = target.split('#').next().unwrap_or_default();
        if target.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "the path of {url:?} has spaces, control or non-ASCII characters; \
                 expected them percent-encoded"
            ));
        }
        let target = match target.strip_prefix('?') {
            Some(_) => format!("/{target}"),
            None if target.is_empty() => "/".to_owned(),
            None => target.to_owned(),
        };
        Ok(Endpoint {
            https,
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RemoteWriteConfig, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    fn check_err(yaml: &str) -> String {
        parse(yaml).and_then(|c| c.check()).unwrap_err()
    }

    #[test]
    fn fields_have_their_defaults() {
        let config = RemoteWriteConfig::default();
        assert_eq!(config.timeout, Millis::from_millis(10_000));
        assert_eq!(config.min_backoff, Millis::from_millis(30));
        assert_eq!(config.max_backoff, Millis::from_millis(5_000));
        assert_eq!(config.shutdown_timeout, Millis::from_millis(10_000));
        assert_eq!(config.queue.max_bytes, Bytes(4 << 20));
        assert!(config.basic_auth.is_none() && config.bearer_token.is_empty());
        assert_eq!(config.check(), Ok(()));
        let config = parse(
            "timeout: 1500ms\nmin_backoff: 10ms\nmax_backoff: 1s\nshutdown_timeout: 0s\n\
             queue:\n  max_bytes: 512KiB\nheaders:\n  X-Scope-OrgID: team-a\n",
        )
        .unwrap();
        assert_eq!(config.check(), Ok(()));
        assert_eq!(config.queue.max_bytes, Bytes(512 << 10));
        assert_eq!(config.headers["X-Scope-OrgID"], "team-a");
        let plain = parse("queue: {max_bytes: 65536}\n").unwrap();
        assert_eq!(plain.queue.max_bytes, Bytes(65536));
    }

    #[test]
    fn checks_name_the_field() {
        assert_eq!(
            check_err("min_backoff: 2s\nmax_backoff: 1s\n"),
            "remote_write.max_backoff: 1s is shorter than min_backoff (2s); \
             expected max_backoff >= min_backoff"
        );
        assert!(check_err("timeout: 0s\n")
            .starts_with("remote_write.timeout: expected a duration above 0s"));
        assert!(check_err("min_backoff: 0s\n").starts_with("remote_write.min_backoff:"));
        assert!(check_err("queue:\n  max_bytes: 100\n")
            .starts_with("remote_write.queue.max_bytes: 100B is too small"));
        let parse_err = parse("queue:\n  max_bytes: 4 megs\n").unwrap_err();
        assert!(
            parse_err.contains("queue.max_bytes") && parse_err.contains("4MiB"),
            "{parse_err}"
        );
        assert!(parse("queue:\n  max_byte: 1\n")
            .unwrap_err()
            .contains("unknown field `max_byte`"));
        assert!(parse("tls:\n  cafile: x\n")
            .unwrap_err()
            .contains("unknown field `cafile`"));
        // A password cannot be written into the config itself.
        let inline = parse("basic_auth:\n  username: u\n  password: p\n").unwrap_err();
        assert!(inline.contains("unknown field `password`"), "{inline}");
        assert!(check_err("headers:\n  Authorization: Bearer x\n")
            .starts_with("remote_write.headers: \"Authorization\" is set by sc-agent"));
        assert!(check_err("headers:\n  content-type: text/plain\n")
            .starts_with("remote_write.headers: \"content-type\""));
        assert!(check_err("headers:\n  'bad header': x\n").contains("not a valid HTTP header name"));
        assert!(check_err("headers:\n  X-A: \"a\\r\\nX-B: b\"\n").contains("control characters"));
        assert!(check_err("basic_auth:\n  username: u\n")
            .starts_with("remote_write.basic_auth.password_file:"));
        assert!(check_err("basic_auth:\n  username: 'a:b'\n")
            .starts_with("remote_write.basic_auth.username:"));
    }

    #[test]
    fn endpoints_are_checked_without_echoing_credentials() {
        assert_eq!(check_endpoint("http://127.0.0.1:9090/api/v1/write"), Ok(()));
        assert!(check_endpoint("ftp://x")
            .unwrap_err()
            .contains("http:// or https://"));
        assert!(check_endpoint("http:///write")
            .unwrap_err()
            .contains("host name"));
        let e = check_endpoint("http://user:hunter2@example.com/write").unwrap_err();
        assert!(e.starts_with("credentials in the URL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn endpoints_are_taken_apart() {
        let parsed = |url: &str| {
            let e = Endpoint::parse(url).unwrap();
            (e.https, e.host, e.port, e.authority, e.target)
        };
        let owned = |https, host: &str, port, authority: &str, target: &str| {
            (
                https,
                host.to_owned(),
                port,
                authority.to_owned(),
                target.to_owned(),
            )
        };
        assert_eq!(
            parsed("http://127.0.0.1:9090/api/v1/write"),
            owned(false, "127.0.0.1", 9090, "127.0.0.1:9090", "/api/v1/write")
        );
        assert_eq!(
            parsed("https://metrics.example.com/api/v1/push?tenant=a#frag"),
            owned(
                true,
                "metrics.example.com",
                443,
                "metrics.example.com",
                "/api/v1/push?tenant=a"
            )
        );
        assert_eq!(
            parsed("http://[::1]:8428?x=1"),
            owned(false, "::1", 8428, "[::1]:8428", "/?x=1")
        );
        assert_eq!(parsed("http://host"), owned(false, "host", 80, "host", "/"));
        assert_eq!(
            parsed("http://host:/"),
            owned(false, "host", 80, "host:", "/")
        );
        for (url, expected) in [
            ("http://host:0/", "a port from 1 to 65535"),
            ("http://host:65536/", "a port from 1 to 65535"),
            ("http://host:http/", "a port from 1 to 65535"),
            ("http://[::1/", "a host name"),
            ("http://[nope]:80/", "an IPv6 address"),
            ("http://[::1]x/", "a host name"),
            ("http://ho st/", "a host name"),
            ("http://:80/", "a host name"),
            ("http://a:b:80/", "a host name"),
            ("http://host/a b", "percent-encoded"),
            ("http://host/caf\u{e9}", "percent-encoded"),
            ("http://host/a\r\nX-Injected: 1", "percent-encoded"),
        ] {
            let err = Endpoint::parse(url).unwrap_err();
            assert!(err.contains(expected), "{url:?}: {err}");
        }
    }
}
