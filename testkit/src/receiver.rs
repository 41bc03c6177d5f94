//! A remote write receiver for the tests, with faults on demand: plain std
//! `TcpListener`, a thread per connection, HTTP/1.1 read by hand (keep-alive: many
//! requests per connection, which it counts), bodies decoded with snappy and prost
//! (independently of the agent's encoder). Optionally TLS (rustls) with a
//! certificate the test made, optionally requiring a client certificate.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proto;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Status, extra headers, body.
    Status(u16, Vec<(String, String)>, String),
    /// Read the request, then never answer (the connection stays open until the
    /// receiver is dropped).
    Hang,
    /// Read the request, then close the connection without answering (as a server
    /// closing an idle connection just as the request arrives).
    Close,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status(204, Vec::new(), String::new())
    }

    pub fn status(code: u16, body: &str) -> Reply {
        Reply::Status(code, Vec::new(), body.to_owned())
    }
}

/// One series of a received request.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp: i64,
}

/// One request as received, with the answer it got.
#[derive(Clone, Debug)]
pub struct Received {
    /// When the request's body had been read.
    pub at: Instant,
    /// When the answer was written (`None` for `Hang` and `Close`).
    pub answered_at: Option<Instant>,
    /// Which connection it came on (0 for the first one accepted), and how many
    /// requests that connection had carried before it.
    pub connection: usize,
    pub on_connection: usize,
    pub status: Option<u16>,
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The compressed body's size.
    pub body_len: usize,
    /// The decoded samples (dropped, with the headers, from all but the last few
    /// requests when [`Receiver::keep_last`] is set).
    pub series: Vec<Series>,
    /// How many samples the request held, and the timestamp of its first: kept even
    /// when `series` is dropped.
    pub samples: usize,
    pub first_timestamp: Option<i64>,
}

impl Received {
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The one timestamp of the batch (every sample of a cycle shares it).
    pub fn timestamp(&self) -> i64 {
        let first = self.series.first().expect("an empty request").timestamp;
        assert!(
            self.series.iter().all(|s| s.timestamp == first),
            "a request mixes timestamps"
        );
        first
    }

    /// The value of the series named `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.series
            .iter()
            .find(|s| {
                s.labels.get("__name__").map(String::as_str) == Some(name)
                    && labels
                        .iter()
                        .all(|(n, v)| s.labels.get(*n).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

type Policy = Box<dyn FnMut(usize) -> Reply + Send>;

/// The request's headers (names lower-cased), for a policy that answers by them.
pub type Headers = BTreeMap<String, String>;

/// A policy that also sees the request's headers.
type HeaderPolicy = Box<dyn FnMut(usize, &Headers) -> Reply + Send>;

fn with_headers(mut policy: Policy) -> HeaderPolicy {
    Box::new(move |n, _| policy(n))
}

struct Inner {
    received: Vec<Received>,
    policy: HeaderPolicy,
    /// Requests seen so far (the policy's argument).
    count: usize,
    tls_failures: usize,
    /// Keep the series and headers of only this many of the latest requests.
    keep_last: Option<usize>,
    /// Connections accepted.
    connections: usize,
    /// TLS sessions resumed (rather than fully negotiated).
    resumed: usize,
    /// Close a connection that carries no request for this long (a server's idle
    /// timeout); without it, connections wait 30 s for the next request.
    idle_timeout: Option<Duration>,
}

pub struct Receiver {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    stop: Arc<AtomicBool>,
}

pub type Tls = Option<Arc<rustls::ServerConfig>>;

impl Receiver {
    /// A receiver on a free loopback port answering every request with `policy(n)`,
    /// n counting requests from 0.
    pub fn start(policy: impl FnMut(usize) -> Reply + Send + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Receiver::serve(listener, Box::new(policy), None)
    }

    /// The same on a given listener (to appear on a port chosen before), with TLS.
    pub fn serve(listener: TcpListener, policy: Policy, tls: Tls) -> Receiver {
        Receiver::serve_with_headers(listener, with_headers(policy), tls)
    }

    /// A receiver whose policy sees each request's headers (to echo them back).
    pub fn start_with_headers(
        policy: impl FnMut(usize, &Headers) -> Reply + Send + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Receiver::serve_with_headers(listener, Box::new(policy), None)
    }

    fn serve_with_headers(listener: TcpListener, policy: HeaderPolicy, tls: Tls) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Mutex::new(Inner {
            received: Vec::new(),
            policy,
            count: 0,
            tls_failures: 0,
            keep_last: None,
            connections: 0,
            resumed: 0,
            idle_timeout: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (inner2, stop2) = (Arc::clone(&inner), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let connection = {
                    let mut inner = inner2.lock().unwrap();
                    inner.connections += 1;
                    inner.connections - 1
                };
                let (inner, stop, tls) = (Arc::clone(&inner2), Arc::clone(&stop2), tls.clone());
                std::thread::spawn(move || handle(stream, connection, &inner, &stop, tls));
            }
        });
        Receiver { port, inner, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/api/v1/write", self.port)
    }

    pub fn set_policy(&self, policy: impl FnMut(usize) -> Reply + Send + 'static) {
        self.inner.lock().unwrap().policy = with_headers(Box::new(policy));
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// From now on, keeps the decoded series and headers of only the `n` latest
    /// requests (the counts and timestamps of all): for long runs.
    pub fn keep_last(&self, n: usize) {
        self.inner.lock().unwrap().keep_last = Some(n);
    }

    /// Runs `f` on what was received, without copying it.
    pub fn with_received<R>(&self, f: impl FnOnce(&[Received]) -> R) -> R {
        f(&self.inner.lock().unwrap().received)
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.accepted())
            .collect()
    }

    pub fn tls_failures(&self) -> usize {
        self.inner.lock().unwrap().tls_failures
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.inner.lock().unwrap().connections
    }

    /// TLS handshakes that resumed an earlier session.
    pub fn resumed_sessions(&self) -> usize {
        self.inner.lock().unwrap().resumed
    }

    /// From now on, closes (silently, as servers do) a connection idle for `idle`.
    pub fn close_idle_after(&self, idle: Duration) {
        self.inner.lock().unwrap().idle_timeout = Some(idle);
    }

    /// Waits until `done(received)` holds; panics with `what` on timeout.
    pub fn wait_for(&self, timeout: Duration, what: &str, done: impl Fn(&[Received]) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if done(&self.received()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let received = self.received();
        assert!(
            done(&received),
            "timed out waiting for {what}; received {} request(s): {:?}",
            received.len(),
            received
                .iter()
                .map(|r| (r.status, r.series.len()))
                .collect::<Vec<_>>()
        );
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(stream: TcpStream, connection: usize, inner: &Mutex<Inner>, stop: &AtomicBool, tls: Tls) {
    let idle = inner.lock().unwrap().idle_timeout;
    let _ = stream.set_read_timeout(Some(idle.unwrap_or(Duration::from_secs(30))));
    if let Some(config) = tls {
        let Ok(session) = rustls::ServerConnection::new(config) else {
            return;
        };
        let mut tls_stream = rustls::StreamOwned::new(session, stream);
        // Complete the handshake first, to tell a refused certificate from the rest.
        while tls_stream.conn.is_handshaking() {
            if tls_stream.conn.complete_io(&mut tls_stream.sock).is_err() {
                inner.lock().unwrap().tls_failures += 1;
                return;
            }
        }
        if tls_stream.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            inner.lock().unwrap().resumed += 1;
        }
        serve(tls_stream, connection, inner, stop);
        return;
    }
    serve(stream, connection, inner, stop);
}

/// Answers the requests of one connection until the client closes it, the idle
/// timeout passes, or the policy says `Hang` or `Close`.
fn serve(
    mut stream: impl Read + Write,
    connection: usize,
    inner: &Mutex<Inner>,
    stop: &AtomicBool,
) {
    for on_connection in 0.. {
        let Some((method, path, headers, body)) = read_request(&mut stream) else {
            return;
        };
        let series = decode(&headers, &body);
        let at = Instant::now();
        let reply = {
            let mut inner = inner.lock().unwrap();
            let n = inner.count;
            inner.count += 1;
            (inner.policy)(n, &headers)
        };
        // Recorded before the answer is written: once the agent has the answer it may
        // send the next request, whose handler must not record ahead of this one.
        let (status, answered_at) = match &reply {
            Reply::Status(code, _, _) => (Some(*code), Some(Instant::now())),
            Reply::Hang | Reply::Close => (None, None),
        };
        let mut guard = inner.lock().unwrap();
        guard.received.push(Received {
            at,
            answered_at,
            connection,
            on_connection,
            status,
            method,
            path,
            headers,
            body_len: body.len(),
            samples: series.len(),
            first_timestamp: series.first().map(|s| s.timestamp),
            series,
        });
        if let Some(keep) = guard.keep_last {
            let len = guard.received.len();
            if len > keep {
                let old = &mut guard.received[len - keep - 1];
                old.series = Vec::new();
                old.headers = BTreeMap::new();
            }
        }
        drop(guard);
        match &reply {
            Reply::Status(code, extra, text) => {
                let mut response =
                    format!("HTTP/1.1 {code} Test\r\nContent-Length: {}\r\n", text.len());
                for (name, value) in extra {
                    response.push_str(&format!("{name}: {value}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(text);
                if stream
                    .write_all(response.as_bytes())
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                let closing = extra.iter().any(|(name, value)| {
                    name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
                });
                if closing {
                    return;
                }
            }
            Reply::Hang => {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Reply::Close => return,
        }
    }
}

type Request = (String, String, BTreeMap<String, String>, Vec<u8>);

fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if data.len() > 64 << 10 {
            return None;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(data[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, headers, body))
}

/// The request body as series; panics (failing the test) on anything that is not a
/// snappy-compressed WriteRequest.
fn decode(headers: &BTreeMap<String, String>, body: &[u8]) -> Vec<Series> {
    assert_eq!(
        headers.get("content-encoding").map(String::as_str),
        Some("snappy")
    );
    let request = proto::decode(body).expect("a snappy-compressed WriteRequest");
    request
        .timeseries
        .into_iter()
        .flat_map(|ts| {
            let labels: BTreeMap<String, String> =
                ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
            ts.samples.into_iter().map(move |s| Series {
                labels: labels.clone(),
                value: s.value,
                timestamp: s.timestamp,
            })
        })
        .collect()
}

/// HTTPS for the receiver: a private CA, a server certificate and client certificates
/// made with the openssl CLI, and rustls servers (and a client, for the tests' own
/// requests) that use them.
pub mod tls {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::Arc;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is not installed: run scripts/test.sh, which installs it");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    const EC: [&str; 5] = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];

    /// Signs a new key's certificate for `subject` with `dir`'s ca.pem/ca.key;
    /// `extensions` is an openssl extension file's text.
    fn issue(dir: &Path, name: &str, subject: &str, extensions: &str) -> (PathBuf, PathBuf) {
        let (key, csr, cert, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.cnf"),
        );
        let mut args = vec!["req"];
        args.extend(EC);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
        openssl(dir, &args);
        std::fs::write(dir.join(&ext), extensions).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        (dir.join(cert), dir.join(key))
    }

    /// A CA and a server certificate for 127.0.0.1 (and localhost), made with the
    /// openssl CLI: (ca.pem, server.pem, server.key).
    pub fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let mut ca = vec!["req", "-x509"];
        ca.extend(EC);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sc-agent test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &ca);
        let (cert, key) = issue(
            dir,
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        (dir.join("ca.pem"), cert, key)
    }

    /// A client certificate for `name`, signed by the CA [`make_certificates`] made
    /// in `dir`: (client-<name>.pem, client-<name>.key).
    pub fn make_client_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        issue(
            dir,
            &format!("client-{name}"),
            &format!("/CN={name}"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
    }

    fn certificates(path: &Path) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn roots(ca: &Path) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(ca) {
            roots.add(cert).unwrap();
        }
        roots
    }

    fn serve(config: rustls::ServerConfig) -> super::Receiver {
        use super::{Receiver, Reply};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Receiver::serve(listener, Box::new(|_| Reply::ok()), Some(Arc::new(config)))
    }

    /// An HTTPS receiver presenting `cert`, answering 204.
    pub fn tls_receiver(cert: &Path, key: &Path) -> super::Receiver {
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                certificates(cert),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap();
        serve(config)
    }

    /// The same, refusing any client without a certificate issued by `client_ca`.
    pub fn mtls_receiver(cert: &Path, key: &Path, client_ca: &Path) -> super::Receiver {
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots(client_ca)))
            .build()
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                certificates(cert),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap();
        serve(config)
    }

    /// A TLS client trusting `ca`, presenting `client` (cert, key) if given: for the
    /// tests' own requests to an HTTPS peer (see [`crate::net::https_get`]).
    pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots(ca));
        let config = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    certificates(cert),
                    PrivateKeyDer::from_pem_file(key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }
}
