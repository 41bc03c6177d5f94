//! One remote write request with minreq, and what its outcome means for the batch.
//!
//! minreq opens a new connection per request (fine at one push per interval) and
//! counts timeouts in whole seconds, so `timeout` is rounded up. It does not follow
//! redirects here: a redirect would resend the `Authorization` header to wherever
//! the server points, possibly over plain HTTP. A 3xx is retried like a 5xx and
//! logged with its `Location`, so the queue holds the data until the endpoint is
//! corrected (a reload applies the new one to what is queued).
//!
//! The response is read lazily: only the head, and up to [`BODY_LOG_BYTES`] of the
//! body of a failure for the log. A server that answers with an endless body or odd
//! bytes costs nothing more than that. Some endpoints and proxies echo the request's
//! `Authorization` header in a 401/403 body or a redirect's `Location`: the
//! credentials (the header's value, the password, the token) are masked in what is
//! logged, so they never reach the log even then.

use super::backoff::parse_retry_after;
use crate::config::secret::MASK;
use crate::config::{Config, Secret};
use std::io::Read;
use std::time::{Duration, SystemTime};

/// How much of an error response's body goes into the log.
pub const BODY_LOG_BYTES: usize = 256;

/// Why an attempt failed, as `sc_agent_send_failures_total{reason}` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Http5xx,
    Http429,
    Http4xx,
    /// 1xx, 3xx and status codes outside 100..=599.
    HttpOther,
    Connection,
    Timeout,
    /// The TLS handshake failed: an untrusted or mismatched certificate, mostly.
    Tls,
    /// The server's answer was not HTTP as minreq reads it.
    InvalidResponse,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::Http5xx,
        Reason::Http429,
        Reason::Http4xx,
        Reason::HttpOther,
        Reason::Connection,
        Reason::Timeout,
        Reason::Tls,
        Reason::InvalidResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Http5xx => "http_5xx",
            Reason::Http429 => "http_429",
            Reason::Http4xx => "http_4xx",
            Reason::HttpOther => "http_other",
            Reason::Connection => "connection",
            Reason::Timeout => "timeout",
            Reason::Tls => "tls",
            Reason::InvalidResponse => "invalid_response",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What became of one attempt.
#[derive(Debug, PartialEq)]
pub enum SendOutcome {
    /// 2xx: delivered.
    Sent,
    /// A 4xx other than 429: the endpoint will never take this batch.
    Rejected { status: u16, body: String },
    /// Worth another attempt after a backoff (or the endpoint's `Retry-After`).
    Retry {
        reason: Reason,
        retry_after: Option<Duration>,
        detail: String,
    },
}

/// Where and how to send, built from the config at start and at every reload.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    /// The URL without its query (which may hold a key), for logs.
    pub shown_url: String,
    /// `Basic ...` or `Bearer ...`.
    authorization: Option<Secret>,
    /// What is masked in the parts of an answer that are logged, longest first: the
    /// credential as sent (base64 of `user:password`, or the token) and the password.
    redact: Vec<Secret>,
    headers: Vec<(String, String)>,
    /// Whole seconds, rounded up from `timeout`.
    pub timeout_secs: u64,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// The protocol's headers, the same on every request.
const USER_AGENT: &str = concat!("sc-agent/", env!("CARGO_PKG_VERSION"));

impl Target {
    /// `None` when the config prints to stdout.
    pub fn from_config(config: &Config) -> Option<Target> {
        let url = config.ingestor_endpoint.clone()?;
        let rw = &config.remote_write;
        let mut redact = Vec::new();
        let authorization = if let Some(auth) = &rw.basic_auth {
            let pair = format!("{}:{}", auth.username, auth.password.expose());
            let encoded = Secret::new(base64(pair.as_bytes()));
            let header = Secret::new(format!("Basic {}", encoded.expose()));
            redact.extend([encoded, auth.password.clone()]);
            Some(header)
        } else if !rw.bearer_token.is_empty() {
            redact.push(rw.bearer_token.clone());
            Some(Secret::new(format!("Bearer {}", rw.bearer_token.expose())))
        } else {
            None
        };
        redact.retain(|s| !s.is_empty());
        redact.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        Some(Target {
            shown_url: url.split('?').next().unwrap_or_default().to_owned(),
            url,
            authorization,
            redact,
            headers: rw
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            timeout_secs: whole_seconds(rw.timeout.as_duration()),
            min_backoff: rw.min_backoff.as_duration(),
            max_backoff: rw.max_backoff.as_duration(),
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// Sends one request body and classifies the outcome. Never panics on anything
    /// the server does.
    pub fn send(&self, body: Vec<u8>) -> SendOutcome {
        let mut request = minreq::post(&self.url)
            .with_header("Content-Encoding", "snappy")
            .with_header("Content-Type", "application/x-protobuf")
            .with_header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .with_header("User-Agent", USER_AGENT)
            .with_timeout(self.timeout_secs)
            .with_follow_redirects(false)
            .with_max_headers_size(16 << 10)
            .with_max_status_line_length(1 << 10);
        if let Some(authorization) = &self.authorization {
            request = request.with_header("Authorization", authorization.expose());
        }
        for (name, value) in &self.headers {
            request = request.with_header(name.as_str(), value.as_str());
        }
        match request.with_body(body).send_lazy() {
            Ok(response) => classify_response(response, &self.redact),
            Err(error) => classify_error(&error),
        }
    }
}

/// minreq's timeouts are whole seconds: round up, and never 0 (which means none).
pub fn whole_seconds(timeout: Duration) -> u64 {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    secs.max(1)
}

fn header<'a>(response: &'a minreq::ResponseLazy, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn classify_response(mut response: minreq::ResponseLazy, redact: &[Secret]) -> SendOutcome {
    let status = response.status_code;
    if (200..300).contains(&status) {
        // The body of a success is not read: the connection is closed unread.
        return SendOutcome::Sent;
    }
    let retry_after = header(&response, "retry-after")
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let location = header(&response, "location").map(|l| mask(l, redact));
    let body = read_body_start(&mut response, redact);
    let reason = match status {
        429 => Reason::Http429,
        400..=499 => return SendOutcome::Rejected { status, body },
        500..=599 => Reason::Http5xx,
        _ => Reason::HttpOther,
    };
    let mut detail = format!("HTTP {status}");
    if let Some(location) = location.filter(|_| (300..400).contains(&status)) {
        detail.push_str(&format!(
            " redirecting to {location:?}, which sc-agent does not follow: \
             set ingestor_endpoint to the final URL"
        ));
    }
    if !body.is_empty() {
        detail.push_str(&format!(": {body}"));
    }
    SendOutcome::Retry {
        reason,
        retry_after,
        detail,
    }
}

/// Up to [`BODY_LOG_BYTES`] of the body as a quoted, escaped string for the log,
/// with every secret of `redact` (longest first) masked.
///
/// Secrets are masked in the raw bytes, before escaping and truncation: the body is
/// read past the shown part by the longest secret, so that one starting inside the
/// shown part is masked whole rather than cut into a leaking prefix.
fn read_body_start(response: &mut impl Read, redact: &[Secret]) -> String {
    let longest = redact.iter().map(|s| s.expose().len()).max().unwrap_or(0);
    let mut buf = vec![0u8; BODY_LOG_BYTES + longest];
    let mut len = 0;
    while len < buf.len() {
        match response.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    if len == 0 {
        return String::new();
    }
    let mut shown = Vec::with_capacity(BODY_LOG_BYTES);
    let mut at = 0;
    while at < len.min(BODY_LOG_BYTES) {
        let rest = &buf[at..len];
        match redact
            .iter()
            .find(|s| rest.starts_with(s.expose().as_bytes()))
        {
            Some(secret) => {
                shown.extend_from_slice(MASK.as_bytes());
                at += secret.expose().len();
            }
            None => {
                shown.push(buf[at]);
                at += 1;
            }
        }
    }
    let more = at < len || len == buf.len();
    let text = String::from_utf8_lossy(&shown);
    let text = text.trim_end();
    format!("{text:?}{}", if more { "…" } else { "" })
}

/// `text` with every secret of `redact` (longest first) masked.
fn mask(text: &str, redact: &[Secret]) -> String {
    redact.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.expose(), MASK)
    })
}

fn classify_error(error: &minreq::Error) -> SendOutcome {
    use minreq::Error as E;
    let reason = match error {
        E::IoError(io) if is_tls(io) => Reason::Tls,
        E::IoError(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            Reason::Timeout
        }
        E::IoError(_) | E::AddressNotFound => Reason::Connection,
        #[cfg(feature = "tls")]
        E::RustlsCreateConnection(_) => Reason::Tls,
        E::MalformedChunkLength
        | E::MalformedChunkEnd
        | E::MalformedContentLength
        | E::HeadersOverflow
        | E::StatusLineOverflow
        | E::InvalidUtf8InResponse => Reason::InvalidResponse,
        _ => Reason::Connection,
    };
    SendOutcome::Retry {
        reason,
        retry_after: None,
        detail: error.to_string(),
    }
}

/// Whether an I/O error is rustls refusing the handshake (a certificate error).
fn is_tls(error: &std::io::Error) -> bool {
    #[cfg(feature = "tls")]
    {
        error
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = error;
        false
    }
}

/// Standard base64 with padding, for the basic-auth header.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn timeouts_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(10)), 10);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let mut config = Config {
            ingestor_endpoint: Some("https://example.com/write?key=abc".into()),
            ..Config::default()
        };
        config.remote_write.bearer_token = Secret::new("tok3n");
        let target = Target::from_config(&config).unwrap();
        assert_eq!(target.shown_url, "https://example.com/write");
        assert!(target.has_credentials() && target.is_https());
        let debug = format!("{target:?}");
        assert!(!debug.contains("tok3n"), "{debug}");
        assert_eq!(
            target.authorization.as_ref().unwrap().expose(),
            "Bearer tok3n"
        );
    }

    #[test]
    fn odd_bodies_are_quoted_and_truncated() {
        let mut short: &[u8] = b"bad \"sample\"\n\x1b[31m\xff\n";
        assert_eq!(
            read_body_start(&mut short, &[]),
            "\"bad \\\"sample\\\"\\n\\u{1b}[31m\u{fffd}\""
        );
        let long = vec![b'x'; 10_000];
        let text = read_body_start(&mut &long[..], &[]);
        assert!(text.ends_with('…'));
        assert_eq!(text.matches('x').count(), BODY_LOG_BYTES);
        assert_eq!(read_body_start(&mut &b""[..], &[]), "");
    }

    #[test]
    fn credentials_echoed_by_the_endpoint_are_masked() {
        let mut config = Config {
            ingestor_endpoint: Some("https://example.com/write".into()),
            ..Config::default()
        };
        config.remote_write.basic_auth = Some(crate::config::remote_write::BasicAuth {
            username: "agent".into(),
            password_file: None,
            password: Secret::new("hunter2-pass"),
        });
        let target = Target::from_config(&config).unwrap();
        let header = target.authorization.as_ref().unwrap().expose().to_owned();
        let encoded = header.strip_prefix("Basic ").unwrap().to_owned();
        let body = format!("401: got Authorization: {header} (password hunter2-pass)\n");
        let text = read_body_start(&mut body.as_bytes(), &target.redact);
        assert_eq!(
            text,
            "\"401: got Authorization: Basic <secret> (password <secret>)\""
        );
        // A secret across the cut of the shown part is masked whole, not cut.
        for start in BODY_LOG_BYTES - 5..BODY_LOG_BYTES + 1 {
            let body = format!("{}{encoded}{}", "x".repeat(start), "y".repeat(300));
            let text = read_body_start(&mut body.as_bytes(), &target.redact);
            assert!(!text.contains(&encoded[..4]), "{text}");
            assert!(text.ends_with('…'), "{text}");
        }
        assert_eq!(
            mask(&format!("https://x/?auth={header}"), &target.redact),
            "https://x/?auth=Basic <secret>"
        );
        config.remote_write.basic_auth = None;
        config.remote_write.bearer_token = Secret::new("tok3n");
        let target = Target::from_config(&config).unwrap();
        let text = read_body_start(&mut &b"bad token tok3n"[..], &target.redact);
        assert_eq!(text, "\"bad token <secret>\"");
    }
}
