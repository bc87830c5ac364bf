//! Building rustls configurations from PEM files: what a server needs
//! (certificate chain, key, optionally the CA its clients' certificates must
//! chain to) and what a client needs (the roots it trusts, the name it
//! expects).
//!
//! Contract: every function here reads files and returns a ready
//! `Arc<ServerConfig>`/`Arc<ClientConfig>` or a [`TlsConfigError`] whose
//! `Display` is one line naming the file and the cause. The cryptography is
//! rustls' `ring` provider (no C toolchain beyond a C compiler, no cmake),
//! TLS 1.2 and 1.3 with rustls' safe defaults.
//!
//! Session resumption is on on both sides: a server issues stateless TLS 1.3
//! tickets (and keeps rustls' default in-memory session cache for TLS 1.2
//! session ids), a client keeps rustls' default in-memory resumption store,
//! shared by every connection made with the same `Arc<ClientConfig>`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a TLS configuration could not be built.
#[derive(Debug)]
pub enum TlsConfigError {
    /// A PEM file could not be read or parsed.
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// A certificate file held no certificate.
    NoCertificate(PathBuf),
    /// rustls refused the material (a key that does not match the
    /// certificate, an unsupported key type, an empty CA list...).
    Rejected(String),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Pem { path, detail } => write!(f, "{}: {detail}", path.display()),
            TlsConfigError::NoCertificate(path) => {
                write!(f, "{}: no CERTIFICATE section in the file", path.display())
            }
            TlsConfigError::Rejected(d) => write!(f, "TLS configuration rejected: {d}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// The crypto provider of every configuration built here: rustls' `ring`.
/// rustls marks it deprecated because it has no post-quantum key exchange;
/// its alternative, `aws-lc-rs`, needs cmake and a longer C build, which
/// the project keeps out of its build. X25519, P-256 and P-384 remain.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file, in order (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem_err = |e: rustls::pki_types::pem::Error| TlsConfigError::Pem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsConfigError::Pem {
        path: path.to_path_buf(),
        detail: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY section".into(),
            e => e.to_string(),
        },
    })
}

/// A root store of the certificates in a PEM file (a private CA).
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsConfigError::Rejected(format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The public web roots (Mozilla's list, compiled in by `webpki-roots`):
/// the same on every machine, no dependence on the host's CA bundle.
pub fn public_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn rejected(e: impl fmt::Display) -> TlsConfigError {
    TlsConfigError::Rejected(e.to_string())
}

/// A server configuration: the certificate chain in `cert` (leaf first),
/// its key in `key`, and, with `client_ca`, client certificates required
/// and checked against that CA. Resumption: stateless tickets.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rejected)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(rejected)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(rejected)?;
    cfg.ticketer = rustls::crypto::ring::Ticketer::new().map_err(rejected)?;
    Ok(Arc::new(cfg))
}

/// How a client decides whom to trust.
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The public web roots ([`public_roots`]).
    #[default]
    PublicRoots,
    /// Only the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Anything: no certificate or host-name check at all. Encryption
    /// without authentication; for trying things out only.
    Insecure,
}

/// A client configuration trusting `trust`, presenting the certificate
/// chain and key of `identity` when the server asks for one. Resumption:
/// rustls' in-memory store, shared by connections using the same `Arc`.
pub fn client_config(
    trust: &Trust,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rejected)?;
    let builder = match trust {
        Trust::PublicRoots => builder.with_root_certificates(public_roots()),
        Trust::CaFile(path) => builder.with_root_certificates(load_roots(path)?),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
    };
    let cfg = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(rejected)?,
    };
    Ok(Arc::new(cfg))
}

/// The name a client checks the server's certificate against and sends as
/// SNI: a DNS name, or an IP address (checked against the certificate's IP
/// SANs; no SNI is sent for an address, RFC 6066 §3).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsConfigError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| TlsConfigError::Rejected(format!("{host:?} is not a valid server name: {e}")))
}

/// `--insecure`: accepts any certificate for any name. Signatures are still
/// checked, so the handshake itself is sound; only who is at the other end
/// is unknown.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
