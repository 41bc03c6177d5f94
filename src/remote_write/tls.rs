//! The TLS side of remote write: one rustls client configuration per target, built
//! at start and at every reload from `remote_write.tls` (whose files the config has
//! already read and checked, see [`crate::config::tls`]).
//!
//! - **Trust**: the CA certificates of `ca_file` alone (a private CA, as Prometheus'
//!   `ca_file`), else the system store as OpenSSL finds it (`SSL_CERT_FILE`,
//!   `SSL_CERT_DIR`, else the distribution's bundle), read again at every reload.
//!   Without any trusted certificate every attempt fails (reason `tls`): never is a
//!   request sent unverified, unless `insecure_skip_verify` says so, which is
//!   logged as a warning at every load.
//! - **Client certificate** (mTLS): `cert_file` and `key_file`, presented when the
//!   endpoint asks for one.
//! - **Resumption**: the configuration keeps the endpoint's session tickets, so a
//!   reconnection (the endpoint closed the kept connection) costs an abbreviated
//!   handshake rather than a full one.
//!
//! The crypto is ring ([`crate::config::tls::crypto_provider`]); TLS 1.2 and 1.3.

use crate::config::tls::{crypto_provider, TlsOptions};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Sessions remembered for resumption: a target talks to one server name.
const RESUMPTION_SESSIONS: usize = 1;

/// What a connection to one target needs: the configuration and the name the
/// certificate must hold (and SNI carries).
#[derive(Debug)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// Builds the TLS side of a target whose URL names `host`. Logs what it trusts.
/// An error (no trusted certificate at all) fails every attempt until a reload.
pub fn build(options: &TlsOptions, host: &str) -> Result<ClientTls, String> {
    let name = options.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name)
        .map(|n| n.to_owned())
        .map_err(|_| format!("{name:?} is not a host name TLS can verify"))?;
    let provider = crypto_provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if options.insecure_skip_verify {
        log::warn!(
            "remote_write.tls.insecure_skip_verify is set: the endpoint's certificate is \
             NOT verified, so anyone on the path can pose as it and read the credentials \
             and the data; use tls.ca_file for a private CA instead"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    } else {
        builder.with_root_certificates(roots(options)?)
    };
    let mut config = match &options.files.client {
        Some(certified) => {
            if let Some(path) = &options.cert_file {
                log::info!(
                    "TLS: presenting the client certificate of {}",
                    path.display()
                );
            }
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                Arc::clone(certified),
            )))
        }
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::in_memory_sessions(RESUMPTION_SESSIONS);
    Ok(ClientTls {
        config: Arc::new(config),
        server_name,
    })
}

/// The trust anchors: `ca_file`'s, else the system store's.
fn roots(options: &TlsOptions) -> Result<Arc<RootCertStore>, String> {
    if let (Some(roots), Some(path)) = (&options.files.roots, &options.ca_file) {
        log::info!(
            "TLS: trusting only the {} CA certificate(s) in {}",
            roots.len(),
            path.display()
        );
        return Ok(Arc::clone(roots));
    }
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, unusable) = roots.add_parsable_certificates(found.certs);
    for error in &found.errors {
        log::debug!("TLS: system trust store: {error}");
    }
    if roots.is_empty() {
        let why = match found.errors.first() {
            Some(error) => format!(" ({error})"),
            None => String::new(),
        };
        return Err(format!(
            "no trusted CA certificate: the system store (SSL_CERT_FILE, SSL_CERT_DIR or \
             the distribution's bundle under /etc/ssl) holds none{why}; set \
             remote_write.tls.ca_file"
        ));
    }
    log::info!(
        "TLS: trusting the system store ({added} CA certificates{})",
        if unusable > 0 {
            format!(", {unusable} unusable ones skipped")
        } else {
            String::new()
        }
    );
    Ok(Arc::new(roots))
}

/// `insecure_skip_verify`: any certificate is taken as the endpoint's. The handshake
/// signatures are still checked, so the session is at least with the holder of the
/// key of the certificate presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
