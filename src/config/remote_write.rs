//! The `remote_write:` section: how batches are delivered to `ingestor_endpoint`
//! (timeouts, retries, the queue, credentials, headers, TLS), and the checks of the
//! endpoint URL itself.

use super::{Bytes, Millis, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Delivery settings. Every field has a default; they matter only with an
/// `ingestor_endpoint`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
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
    /// On a clean stop (SIGTERM/SIGINT), send a stale marker for every series of the
    /// last batch (default `true`), so that Prometheus shows the host's series as gone
    /// at once instead of for five more minutes. A restart then shows a gap of one
    /// interval; set it to `false` where that matters more.
    pub stale_markers_on_shutdown: bool,
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
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            timeout: Millis::from_millis(10_000),
            min_backoff: Millis::from_millis(30),
            max_backoff: Millis::from_millis(5_000),
            shutdown_timeout: Millis::from_millis(10_000),
            stale_markers_on_shutdown: true,
            queue: QueueOptions::default(),
            basic_auth: None,
            bearer_token_file: None,
            bearer_token: Secret::default(),
            headers: BTreeMap::new(),
            tls: TlsOptions::default(),
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

/// The largest CA file read.
const MAX_CA_FILE_BYTES: u64 = 4 << 20;

impl RemoteWriteConfig {
    /// Reads the files the section names: the secrets (unless the environment gave
    /// them) and the CA file, so that a missing one is a config error at start and
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
        if let Some(path) = &self.tls.ca_file {
            check_ca_file(path).map_err(|e| format!("remote_write.tls.ca_file: {e}"))?;
        }
        Ok(())
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

/// The CA file must hold at least one PEM certificate: an empty or wrong file would
/// otherwise only show as failing pushes.
fn check_ca_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_CA_FILE_BYTES)
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

/// Checks an `ingestor_endpoint` URL.
pub fn check_endpoint(url: &str) -> Result<(), String> {
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
                    expected remote_write.basic_auth or remote_write.bearer_token_file"
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
    fn the_ca_file_must_hold_a_certificate() {
        let dir = crate::testing::TempDir::new();
        let not_pem = dir.write("ca.pem", "hello\n");
        let mut config = RemoteWriteConfig::default();
        config.tls.ca_file = Some(not_pem);
        let err = config.read_files().unwrap_err();
        assert!(err.starts_with("remote_write.tls.ca_file:"), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
        config.tls.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = config.read_files().unwrap_err();
        assert!(
            err.starts_with("remote_write.tls.ca_file: cannot open"),
            "{err}"
        );
    }
}
