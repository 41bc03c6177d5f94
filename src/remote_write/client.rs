//! One remote write request, and what its outcome means for the batch.
//!
//! The request goes through the HTTP/1.1 client of [`super::http`] over the
//! connection it keeps open between pushes. Redirects are not followed: a redirect
//! would resend the `Authorization` header to wherever the server points, possibly
//! over plain HTTP. A 3xx is retried like a 5xx and logged with its `Location`, so
//! the queue holds the data until the endpoint is corrected (a reload applies the
//! new one to what is queued).
//!
//! Of the response, only the head is read, and up to [`BODY_LOG_BYTES`] of the body
//! of a failure for the log. A server that answers with an endless body or odd bytes
//! costs nothing more than that. Some endpoints and proxies echo the request's
//! `Authorization` header in a 401/403 body or a redirect's `Location`: the
//! credentials (the header's value, the password, the token) are masked in what is
//! logged, so they never reach the log even then.

use super::backoff::parse_retry_after;
use super::http::{self, Client, Destination, ErrorKind};
use crate::config::remote_write::Endpoint;
use crate::config::secret::MASK;
use crate::config::{Config, Secret};
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
    /// TLS failed: an untrusted or mismatched certificate (either way), mostly.
    Tls,
    /// The server's answer was not HTTP/1.x.
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
    /// The URL without its query (which may hold a key), for logs.
    pub shown_url: String,
    /// The endpoint and the request head (credentials and headers included).
    destination: Destination,
    has_credentials: bool,
    /// What is masked in the parts of an answer that are logged, longest first: the
    /// credential as sent (base64 of `user:password`, or the token) and the password.
    redact: Vec<Secret>,
    pub timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// The protocol's headers, the same on every request.
const USER_AGENT: &str = concat!("sc-agent/", env!("CARGO_PKG_VERSION"));

impl Target {
    /// `None` when the config prints to stdout. Builds the TLS configuration of an
    /// `https://` endpoint (logging what it trusts); if that fails (no trusted
    /// certificate at all), the target is kept and every attempt fails as `tls`.
    pub fn from_config(config: &Config) -> Option<Target> {
        let url = config.ingestor_endpoint.as_deref()?;
        let endpoint = match Endpoint::parse(url) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                // Checked when the config loaded: not reached.
                log::error!("ingestor_endpoint: {e}");
                return None;
            }
        };
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
        let mut headers = vec![
            ("User-Agent", USER_AGENT),
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ];
        if let Some(authorization) = &authorization {
            headers.push(("Authorization", authorization.expose()));
        }
        headers.extend(rw.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        #[cfg(feature = "tls")]
        let tls = endpoint.https.then(|| {
            super::tls::build(&rw.tls, &endpoint.host)
                .map(std::sync::Arc::new)
                .inspect_err(|e| log::error!("remote write over TLS: {e}"))
        });
        Some(Target {
            shown_url: url.split('?').next().unwrap_or_default().to_owned(),
            destination: Destination::new(
                endpoint,
                &headers,
                #[cfg(feature = "tls")]
                tls,
            ),
            has_credentials: authorization.is_some(),
            redact,
            timeout: rw.timeout.as_duration(),
            min_backoff: rw.min_backoff.as_duration(),
            max_backoff: rw.max_backoff.as_duration(),
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.has_credentials
    }

    pub fn is_https(&self) -> bool {
        self.destination.endpoint().https
    }

    /// Sends one request body over `client`'s connection and classifies the
    /// outcome. Never panics on anything the server does.
    pub fn send(&self, client: &mut Client, body: &[u8]) -> SendOutcome {
        let longest = self
            .redact
            .iter()
            .map(|s| s.expose().len())
            .max()
            .unwrap_or(0);
        match client.post(
            &self.destination,
            body,
            self.timeout,
            BODY_LOG_BYTES + longest,
        ) {
            Ok(response) => classify_response(&response, &self.redact),
            Err(error) => classify_error(&error),
        }
    }
}

fn classify_response(response: &http::Response<'_>, redact: &[Secret]) -> SendOutcome {
    let status = response.status;
    if (200..300).contains(&status) {
        return SendOutcome::Sent;
    }
    let retry_after = response
        .retry_after
        .as_deref()
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let location = response.location.as_deref().map(|l| mask(l, redact));
    let body = body_start(response.body, response.body_complete, redact);
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
/// with every secret of `redact` (longest first) masked. `body` is the start of the
/// body as read (`complete` when it is all of it).
///
/// Secrets are masked in the raw bytes, before escaping and truncation: the body is
/// read past the shown part by the longest secret, so that one starting inside the
/// shown part is masked whole rather than cut into a leaking prefix.
fn body_start(body: &[u8], complete: bool, redact: &[Secret]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let mut shown = Vec::with_capacity(BODY_LOG_BYTES);
    let mut at = 0;
    while at < body.len().min(BODY_LOG_BYTES) {
        let rest = body.get(at..).unwrap_or_default();
        match redact
            .iter()
            .find(|s| rest.starts_with(s.expose().as_bytes()))
        {
            Some(secret) => {
                shown.extend_from_slice(MASK.as_bytes());
                at += secret.expose().len();
            }
            None => {
                shown.extend_from_slice(rest.get(..1).unwrap_or_default());
                at += 1;
            }
        }
    }
    let more = at < body.len() || !complete;
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

fn classify_error(error: &http::Error) -> SendOutcome {
    let reason = match error.kind {
        ErrorKind::Connection => Reason::Connection,
        ErrorKind::Timeout => Reason::Timeout,
        ErrorKind::Tls => Reason::Tls,
        ErrorKind::InvalidResponse => Reason::InvalidResponse,
    };
    SendOutcome::Retry {
        reason,
        retry_after: None,
        detail: error.to_string(),
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

    /// What the log shows of `body`, cut where the client stops reading it.
    fn shown(body: &[u8], redact: &[Secret]) -> String {
        let longest = redact.iter().map(|s| s.expose().len()).max().unwrap_or(0);
        let keep = BODY_LOG_BYTES + longest;
        body_start(&body[..body.len().min(keep)], body.len() <= keep, redact)
    }

    fn head(target: &Target) -> String {
        String::from_utf8(target.destination.head().to_vec()).unwrap()
    }

    #[test]
    fn the_request_head_carries_the_protocol_headers_and_credentials() {
        let mut config = Config {
            ingestor_endpoint: Some("http://127.0.0.1:9090/api/v1/write?tenant=a".into()),
            ..Config::default()
        };
        config.remote_write.bearer_token = Secret::new("tok3n");
        config
            .remote_write
            .headers
            .insert("X-Scope-OrgID".into(), "team-a".into());
        let target = Target::from_config(&config).unwrap();
        assert_eq!(
            head(&target),
            format!(
                "POST /api/v1/write?tenant=a HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\
                 User-Agent: sc-agent/{}\r\nContent-Type: application/x-protobuf\r\n\
                 Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n\
                 Authorization: Bearer tok3n\r\nX-Scope-OrgID: team-a\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(target.timeout, Duration::from_secs(10));
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
        assert!(head(&target).contains("Authorization: Bearer tok3n\r\n"));
    }

    #[test]
    fn odd_bodies_are_quoted_and_truncated() {
        let short: &[u8] = b"bad \"sample\"\n\x1b[31m\xff\n";
        assert_eq!(
            shown(short, &[]),
            "\"bad \\\"sample\\\"\\n\\u{1b}[31m\u{fffd}\""
        );
        let long = vec![b'x'; 10_000];
        let text = shown(&long, &[]);
        assert!(text.ends_with('…'));
        assert_eq!(text.matches('x').count(), BODY_LOG_BYTES);
        assert_eq!(shown(b"", &[]), "");
        // Cut short by the server (or the deadline): marked as more.
        assert_eq!(body_start(b"partial", false, &[]), "\"partial\"…");
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
        let header = format!("Basic {}", base64(b"agent:hunter2-pass"));
        assert!(head(&target).contains(&format!("Authorization: {header}\r\n")));
        let encoded = header.strip_prefix("Basic ").unwrap().to_owned();
        let body = format!("401: got Authorization: {header} (password hunter2-pass)\n");
        let text = shown(body.as_bytes(), &target.redact);
        assert_eq!(
            text,
            "\"401: got Authorization: Basic <secret> (password <secret>)\""
        );
        // A secret across the cut of the shown part is masked whole, not cut.
        for start in BODY_LOG_BYTES - 5..BODY_LOG_BYTES + 1 {
            let body = format!("{}{encoded}{}", "x".repeat(start), "y".repeat(300));
            let text = shown(body.as_bytes(), &target.redact);
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
        let text = shown(b"bad token tok3n", &target.redact);
        assert_eq!(text, "\"bad token <secret>\"");
    }
}
