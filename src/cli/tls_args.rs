//! TLS on the command line: the server options (`--tls-cert`, `--tls-key`,
//! `--tls-client-ca`, `--tls-handshake-timeout`, and the metrics endpoint's
//! own pair), the client options (`--tls`, `--ca`, `--insecure`,
//! `--tls-cert`/`--tls-key` for a client certificate), and
//! `netloop cert`, which writes a throw-away CA and a server certificate
//! signed by it.
//!
//! Contract: each `load` returns the ready reactor option or prints one
//! line naming the file and the cause and returns the failure status.

use crate::cli::fatal;
use crate::cli::units::parse_duration;
use crate::reactor::tls::config::{client_config, server_config, server_name, Trust};
use crate::reactor::tls::{ClientTls, ServerTls, DEFAULT_HANDSHAKE_TIMEOUT};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

fn default_handshake_timeout() -> String {
    format!("{}s", DEFAULT_HANDSHAKE_TIMEOUT.as_secs())
}

/// The TLS options of every server.
#[derive(Args, Clone, Debug, Default)]
pub struct ServerTlsArgs {
    /// Serve TLS with the certificate chain in FILE (PEM, leaf first; see
    /// `netloop cert`). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate signed by a CA in FILE (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Close a connection whose TLS handshake is not done after this long.
    #[arg(long, value_parser = parse_duration, default_value = default_handshake_timeout())]
    pub tls_handshake_timeout: Option<Duration>,
    /// Serve the metrics endpoint (--metrics) over HTTPS with this
    /// certificate chain (PEM). Needs --metrics-tls-key.
    #[arg(long, value_name = "FILE", requires = "metrics_tls_key")]
    pub metrics_tls_cert: Option<PathBuf>,
    /// The private key of --metrics-tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "metrics_tls_cert")]
    pub metrics_tls_key: Option<PathBuf>,
}

impl ServerTlsArgs {
    fn timeout(&self) -> Duration {
        self.tls_handshake_timeout
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)
    }

    /// TLS for the service's listener, or `None` (plain TCP).
    pub fn load(&self) -> Result<Option<ServerTls>, ExitCode> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        load_server(cert, key, self.tls_client_ca.as_deref(), self.timeout()).map(Some)
    }

    /// TLS for the metrics endpoint, or `None` (plain HTTP).
    pub fn load_metrics(&self) -> Result<Option<ServerTls>, ExitCode> {
        let (Some(cert), Some(key)) = (&self.metrics_tls_cert, &self.metrics_tls_key) else {
            return Ok(None);
        };
        load_server(cert, key, None, self.timeout()).map(Some)
    }
}

fn load_server(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    timeout: Duration,
) -> Result<ServerTls, ExitCode> {
    match server_config(cert, key, client_ca) {
        Ok(config) => Ok(ServerTls {
            config,
            handshake_timeout: timeout,
        }),
        Err(e) => Err(fatal(format_args!("TLS: {e}"))),
    }
}

/// The TLS options of every client.
#[derive(Args, Clone, Debug, Default)]
pub struct ClientTlsArgs {
    /// Connect with TLS; the server's certificate is checked against the
    /// public web roots (or --ca) and the host name.
    #[arg(long)]
    pub tls: bool,
    /// Trust only the CA certificate(s) in FILE (PEM), e.g. the ca.pem
    /// `netloop cert` wrote. Implies --tls.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not check the server's certificate at all (encrypted, but not
    /// authenticated: anyone in the path can impersonate the server).
    /// Implies --tls.
    #[arg(long)]
    pub insecure: bool,
    /// Present the client certificate chain in FILE (PEM) when the server
    /// asks for one (--tls-client-ca). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Give up if the TLS handshake is not done after this long.
    #[arg(long, value_parser = parse_duration, default_value = default_handshake_timeout())]
    pub tls_handshake_timeout: Option<Duration>,
}

impl ClientTlsArgs {
    /// Is TLS asked for (`--tls`, `--ca` or `--insecure`)?
    pub fn enabled(&self) -> bool {
        self.tls || self.ca.is_some() || self.insecure
    }

    /// TLS for connections to `host`, or `None` (plain TCP). `--insecure`
    /// is announced on stderr, every time. An error is printed as one line.
    pub fn load(&self, host: &str) -> Result<Option<ClientTls>, ExitCode> {
        self.build(host).map_err(fatal)
    }

    /// [`ClientTlsArgs::load`], the error returned as its one line instead.
    pub fn build(&self, host: &str) -> Result<Option<ClientTls>, String> {
        if !self.enabled() {
            return Ok(None);
        }
        let trust = if self.insecure {
            eprintln!(
                "WARNING: --insecure: the server's certificate is NOT checked; \
                 this connection is encrypted but anyone in between can impersonate {host}"
            );
            Trust::Insecure
        } else if let Some(ca) = &self.ca {
            Trust::CaFile(ca.clone())
        } else {
            Trust::PublicRoots
        };
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        let config = client_config(&trust, identity).map_err(|e| format!("TLS: {e}"))?;
        let name = server_name(host).map_err(|e| format!("TLS: {e}"))?;
        Ok(Some(ClientTls {
            config,
            server_name: name,
            handshake_timeout: self
                .tls_handshake_timeout
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
        }))
    }
}

/// Options of `netloop cert`.
#[derive(Args, Clone, Debug)]
pub struct CertArgs {
    /// Directory to write ca.pem, server.pem (chain: server, then CA) and
    /// server.key into; created if missing. Existing files are not
    /// overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Names the server certificate is valid for (repeatable; DNS names or
    /// IP addresses).
    #[arg(long = "host", value_name = "NAME", default_values = ["localhost", "127.0.0.1", "::1"])]
    pub hosts: Vec<String>,
    /// Validity of both certificates, in days.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
}

/// Files `netloop cert` writes.
pub const CERT_FILES: [&str; 3] = ["ca.pem", "server.pem", "server.key"];

/// `netloop cert`: write a self-signed CA and a server certificate it signed.
pub fn run_cert(args: &CertArgs) -> ExitCode {
    match write_cert(args) {
        Ok(()) => {
            println!(
                "wrote {}, {} (chain) and {} to {}",
                CERT_FILES[0],
                CERT_FILES[1],
                CERT_FILES[2],
                args.out.display()
            );
            println!(
                "serve:   netloop serve echo --tls-cert {0}/server.pem --tls-key {0}/server.key",
                args.out.display()
            );
            println!(
                "connect: netloop connect {}:8080 --ca {}/ca.pem",
                args.hosts.first().map_or("localhost", |h| h.as_str()),
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fatal(format_args!("netloop cert: {e}")),
    }
}

fn write_cert(args: &CertArgs) -> Result<(), String> {
    let generated = generate(&args.hosts, args.days).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    for name in CERT_FILES {
        let p = args.out.join(name);
        if p.exists() {
            return Err(format!("{} exists; not overwriting it", p.display()));
        }
    }
    let write = |name: &str, text: &str, private: bool| -> Result<(), String> {
        let p = args.out.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    write(CERT_FILES[0], &generated.ca_pem, false)?;
    write(
        CERT_FILES[1],
        &format!("{}{}", generated.server_pem, generated.ca_pem),
        false,
    )?;
    write(CERT_FILES[2], &generated.server_key_pem, true)?;
    Ok(())
}

/// A CA and a server certificate it signed, in PEM.
#[derive(Debug)]
pub struct Generated {
    /// The CA certificate.
    pub ca_pem: String,
    /// The CA's key (not written by `netloop cert`: the CA is throw-away).
    pub ca_key_pem: String,
    /// The server certificate (leaf only).
    pub server_pem: String,
    /// The server's key.
    pub server_key_pem: String,
}

/// Generate a CA valid for `days` from now and a server certificate for
/// `hosts` signed by it (ECDSA P-256).
pub fn generate(hosts: &[String], days: u32) -> Result<Generated, rcgen::Error> {
    let now = SystemTime::now();
    let from = now - Duration::from_secs(CLOCK_SKEW_SECS);
    let until = now + Duration::from_secs(u64::from(days.max(1)) * 86_400);
    generate_valid(hosts, from, until)
}

/// Certificates start this long before "now": a peer whose clock is a
/// little behind still accepts them.
const CLOCK_SKEW_SECS: u64 = 300;

/// [`generate`] with an explicit validity period for both certificates
/// (tests use a period in the past for an expired certificate).
pub fn generate_valid(
    hosts: &[String],
    from: SystemTime,
    until: SystemTime,
) -> Result<Generated, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::from(from);
    let until = time::OffsetDateTime::from(until);
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = DistinguishedName::new();
    let ca_key = KeyPair::generate()?;
    // A name of its own per CA: two throw-away CAs with one name would make
    // a verifier try the wrong one and report a bad signature instead of
    // an unknown issuer.
    let tag: String = ca_key.public_key_raw()[1..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    ca.distinguished_name
        .push(DnType::CommonName, format!("netloop throw-away CA {tag}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now;
    ca.not_after = until;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut leaf = CertificateParams::new(hosts.to_vec())?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(
        DnType::CommonName,
        hosts.first().map_or("localhost", |h| h.as_str()),
    );
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf.not_before = now;
    leaf.not_after = until;
    let leaf_key = KeyPair::generate()?;
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Generated {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        server_pem: leaf_cert.pem(),
        server_key_pem: leaf_key.serialize_pem(),
    })
}
