//! The `remote_write.tls:` section, and the PEM files it names, read and checked when
//! the config loads (at start and at every reload), so that a missing file, a file
//! that holds no certificate, or a key that does not belong to its certificate is a
//! config error naming the field, not a failing push later.
//!
//! The fields are those of Prometheus' `tls_config`: `ca_file`, `cert_file`,
//! `key_file`, `server_name`, `insecure_skip_verify`. What the files hold is kept,
//! parsed, in [`TlsFiles`]: the trust anchors of `ca_file` and the client certificate
//! with its key, ready for the TLS client (`remote_write::tls`) to use. Reading them
//! at every load is what makes a replaced CA file or client certificate take effect
//! at the next SIGHUP.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// TLS for an `https://` endpoint.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of the CA certificate(s) to trust **instead of** the system store
    /// (for a private CA), like Prometheus' `tls_config.ca_file`. Without it the
    /// system store is used (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's
    /// bundle under `/etc/ssl`). Read at start and at every reload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A PEM file holding the client certificate (and any intermediates after it),
    /// presented to endpoints that require mutual TLS. Needs `key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// A PEM file holding the private key of `cert_file` (PKCS#8, PKCS#1 RSA or SEC1
    /// EC). Needs `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The name sent in SNI and that the endpoint's certificate must hold, when it is
    /// not the URL's host (an endpoint reached by IP address, or through a tunnel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Accept any certificate from the endpoint. The connection is still encrypted,
    /// but anyone on the path can pose as the endpoint and read the credentials and
    /// data: for tests only. Logged as a warning at start and at every reload.
    pub insecure_skip_verify: bool,
    /// What the files hold, read by [`TlsOptions::read_files`].
    #[serde(skip)]
    pub files: TlsFiles,
}

/// The largest PEM file read (a CA bundle of the whole Mozilla store is ~220 KB).
const MAX_PEM_BYTES: u64 = 4 << 20;

impl TlsOptions {
    /// Reads and checks the files the section names; the message names the field.
    pub fn read_files(&mut self) -> Result<(), String> {
        self.files = TlsFiles::default();
        let field = |name: &str| format!("remote_write.tls.{name}");
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(format!(
                    "{}: cert_file is set but key_file is not; expected both (the client \
                     certificate and its private key) or neither",
                    field("key_file")
                ))
            }
            (None, Some(_)) => {
                return Err(format!(
                    "{}: key_file is set but cert_file is not; expected both (the client \
                     certificate and its private key) or neither",
                    field("cert_file")
                ))
            }
            _ => {}
        }
        if let Some(name) = &self.server_name {
            check_server_name(name).map_err(|e| format!("{}: {e}", field("server_name")))?;
        }
        #[cfg(feature = "tls")]
        {
            if let Some(path) = &self.ca_file {
                let pem = read_pem(path).map_err(|e| format!("{}: {e}", field("ca_file")))?;
                let roots =
                    pem::roots(&pem, path).map_err(|e| format!("{}: {e}", field("ca_file")))?;
                self.files.roots = Some(std::sync::Arc::new(roots));
            }
            if let (Some(cert_path), Some(key_path)) = (&self.cert_file, &self.key_file) {
                let cert_pem =
                    read_pem(cert_path).map_err(|e| format!("{}: {e}", field("cert_file")))?;
                let chain = pem::certificates(&cert_pem, cert_path)
                    .map_err(|e| format!("{}: {e}", field("cert_file")))?;
                let key_pem =
                    read_pem(key_path).map_err(|e| format!("{}: {e}", field("key_file")))?;
                let key = pem::private_key(&key_pem, key_path)
                    .map_err(|e| format!("{}: {e}", field("key_file")))?;
                let pair = pem::key_pair(chain, key, cert_path, key_path)
                    .map_err(|e| format!("{}: {e}", field("key_file")))?;
                self.files.client = Some(std::sync::Arc::new(pair));
            }
        }
        #[cfg(not(feature = "tls"))]
        {
            // No TLS in this build: https:// endpoints are refused, so the files are
            // never used; they must still be there, as the config says they are.
            for (name, path) in [
                ("ca_file", &self.ca_file),
                ("cert_file", &self.cert_file),
                ("key_file", &self.key_file),
            ] {
                if let Some(path) = path {
                    read_pem(path).map_err(|e| format!("{}: {e}", field(name)))?;
                }
            }
        }
        Ok(())
    }
}

/// A DNS name or an IP address, as SNI and certificate checks take them.
fn check_server_name(name: &str) -> Result<(), String> {
    #[cfg(feature = "tls")]
    let valid = rustls::pki_types::ServerName::try_from(name).is_ok();
    #[cfg(not(feature = "tls"))]
    let valid = !name.is_empty() && !name.contains(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a host name; expected a DNS name like metrics.example.com \
             or an IP address"
        ))
    }
}

/// A PEM file's text, bounded; the error names the path, never the contents.
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "{} is larger than {MAX_PEM_BYTES} bytes; expected a PEM file",
            path.display()
        ));
    }
    Ok(bytes)
}

/// What the TLS files hold, parsed and checked; empty without them. Cheap to clone
/// (shared), and never printed: `Debug` says only what is loaded.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// The trust anchors of `ca_file`.
    #[cfg(feature = "tls")]
    pub roots: Option<std::sync::Arc<rustls::RootCertStore>>,
    /// The client certificate chain of `cert_file` with the key of `key_file`.
    #[cfg(feature = "tls")]
    pub client: Option<std::sync::Arc<rustls::sign::CertifiedKey>>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("TlsFiles");
        #[cfg(feature = "tls")]
        {
            out.field("ca_certificates", &self.roots.as_ref().map(|r| r.len()));
            out.field(
                "client_certificates",
                &self.client.as_ref().map(|c| c.cert.len()),
            );
        }
        out.finish()
    }
}

/// Equal when they trust the same anchors and present the same certificate chain
/// (whose first certificate fixes the key: the pair was checked when it was read).
impl PartialEq for TlsFiles {
    fn eq(&self, other: &Self) -> bool {
        #[cfg(feature = "tls")]
        {
            let roots = |f: &TlsFiles| f.roots.as_ref().map(|r| r.roots.clone());
            let chain = |f: &TlsFiles| f.client.as_ref().map(|c| c.cert.clone());
            roots(self) == roots(other) && chain(self) == chain(other)
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = other;
            true
        }
    }
}

/// The crypto of every TLS connection, and of the key checks here: ring.
#[cfg(feature = "tls")]
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// PEM to the parsed forms rustls takes. Errors name the file and what is wrong
/// with it (never its contents: a key file's bytes are secret).
#[cfg(feature = "tls")]
mod pem {
    use rustls::pki_types::pem::{Error as PemError, PemObject};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::path::Path;

    fn describe(error: &PemError) -> String {
        match error {
            PemError::MissingSectionEnd { .. } => "a PEM block has no -----END line".to_owned(),
            PemError::IllegalSectionStart { .. } => "a -----BEGIN line is malformed".to_owned(),
            PemError::Base64Decode(_) => "a PEM block is not valid base64".to_owned(),
            other => other.to_string(),
        }
    }

    /// The file's certificates, in order; at least one.
    pub fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {}", path.display(), describe(&e)))?;
        if certs.is_empty() {
            return Err(format!(
                "{} holds no PEM certificate; expected -----BEGIN CERTIFICATE----- blocks",
                path.display()
            ));
        }
        Ok(certs)
    }

    /// The file's certificates as trust anchors; each must parse.
    pub fn roots(pem: &[u8], path: &Path) -> Result<rustls::RootCertStore, String> {
        let mut roots = rustls::RootCertStore::empty();
        for (index, cert) in certificates(pem, path)?.into_iter().enumerate() {
            roots.add(cert).map_err(|e| {
                format!(
                    "certificate {} of {} is not a usable CA certificate: {e}",
                    index + 1,
                    path.display()
                )
            })?;
        }
        Ok(roots)
    }

    /// The file's first private key.
    pub fn private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, String> {
        PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
            PemError::NoItemsFound => format!(
                "{} holds no private key; expected a -----BEGIN PRIVATE KEY----- \
                 (or RSA PRIVATE KEY, EC PRIVATE KEY) block",
                path.display()
            ),
            other => format!("{}: {}", path.display(), describe(&other)),
        })
    }

    /// The chain and the key as one, checked to belong together.
    pub fn key_pair(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<rustls::sign::CertifiedKey, String> {
        use rustls::{Error, InconsistentKeys};
        rustls::sign::CertifiedKey::from_der(chain, key, &super::crypto_provider()).map_err(|e| {
            match e {
                Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => format!(
                    "the key in {} does not belong to the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                ),
                other => format!("cannot use the key in {}: {other}", key_path.display()),
            }
        })
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use sc_agent_testkit::receiver::tls::{make_certificates, make_client_certificate};

    fn options(yaml: &str) -> TlsOptions {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn read(yaml: &str) -> Result<TlsOptions, String> {
        let mut options = options(yaml);
        options.read_files().map(|()| options)
    }

    #[test]
    fn the_files_are_read_and_paired() {
        let dir = TempDir::new();
        let (ca, server_cert, server_key) = make_certificates(dir.path());
        let (client_cert, client_key) = make_client_certificate(dir.path(), "agent");
        let loaded = read(&format!(
            "ca_file: {}\ncert_file: {}\nkey_file: {}\n",
            ca.display(),
            client_cert.display(),
            client_key.display()
        ))
        .unwrap();
        assert_eq!(loaded.files.roots.as_ref().map(|r| r.len()), Some(1));
        assert_eq!(loaded.files.client.as_ref().map(|c| c.cert.len()), Some(1));
        let debug = format!("{loaded:?}");
        assert!(debug.contains("ca_certificates: Some(1)"), "{debug}");

        // The server's key does not belong to the client's certificate.
        let err = read(&format!(
            "cert_file: {}\nkey_file: {}\n",
            client_cert.display(),
            server_key.display()
        ))
        .unwrap_err();
        assert!(
            err.starts_with("remote_write.tls.key_file: the key in")
                && err.contains("does not belong to the certificate"),
            "{err}"
        );
        // A certificate where the key should be, and the other way round.
        let err = read(&format!(
            "cert_file: {}\nkey_file: {}\n",
            client_cert.display(),
            server_cert.display()
        ))
        .unwrap_err();
        assert!(err.contains("holds no private key"), "{err}");
        let err = read(&format!(
            "cert_file: {}\nkey_file: {}\n",
            client_key.display(),
            client_key.display()
        ))
        .unwrap_err();
        assert!(
            err.starts_with("remote_write.tls.cert_file:") && err.contains("no PEM certificate"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let dir = TempDir::new();
        let (ca, _, _) = make_certificates(dir.path());
        let err = read(&format!("cert_file: {}\n", ca.display())).unwrap_err();
        assert!(
            err.starts_with("remote_write.tls.key_file: cert_file is set but key_file is not"),
            "{err}"
        );
        let err = read(&format!("key_file: {}\n", ca.display())).unwrap_err();
        assert!(err.starts_with("remote_write.tls.cert_file:"), "{err}");
        let err = read("ca_file: /nonexistent/ca.pem\n").unwrap_err();
        assert!(
            err.starts_with("remote_write.tls.ca_file: cannot open /nonexistent/ca.pem"),
            "{err}"
        );
        let not_pem = dir.write("not.pem", "hello\n");
        let err = read(&format!("ca_file: {}\n", not_pem.display())).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let cut = dir.write("cut.pem", &std::fs::read_to_string(&ca).unwrap()[..200]);
        let err = read(&format!("ca_file: {}\n", cut.display())).unwrap_err();
        assert!(err.contains("no -----END line"), "{err}");
        let garbage = dir.write(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let err = read(&format!("ca_file: {}\n", garbage.display())).unwrap_err();
        assert!(
            err.contains("certificate 1 of") && err.contains("not a usable CA certificate"),
            "{err}"
        );
        for bad in ["", "a b", "-", "x..y", "bad/name"] {
            let err = read(&format!("server_name: {bad:?}\n")).unwrap_err();
            assert!(
                err.starts_with("remote_write.tls.server_name:"),
                "{bad:?}: {err}"
            );
        }
        for good in ["metrics.example.com", "localhost", "10.0.0.1", "::1"] {
            assert!(read(&format!("server_name: {good:?}\n")).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_replaced_file_reads_as_different() {
        let dir = TempDir::new();
        let first = TempDir::new();
        let second = TempDir::new();
        let (ca1, _, _) = make_certificates(first.path());
        let (ca2, _, _) = make_certificates(second.path());
        let path = dir.path().join("ca.pem");
        let yaml = format!("ca_file: {}\n", path.display());
        std::fs::copy(&ca1, &path).unwrap();
        let before = read(&yaml).unwrap();
        assert_eq!(read(&yaml).unwrap(), before, "the same file reads the same");
        std::fs::copy(&ca2, &path).unwrap();
        assert_ne!(
            read(&yaml).unwrap(),
            before,
            "a replaced CA file is a change"
        );
    }
}
