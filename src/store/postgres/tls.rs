//! TLS to PostgreSQL over rustls (the `ring` provider), with libpq's `sslmode` semantics: what
//! is checked of the server's certificate follows [`PgTls::verification`], and a failed
//! handshake becomes a message naming the server, the sslmode and the reason.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;
use crate::store::target::{PgTls, RootCerts, SslMode, Verification};

/// The connector for `tls`: certificates checked as its sslmode says, roots loaded once here.
/// Errors (an unreadable `sslrootcert`, no system roots) are messages for the operator.
pub(super) fn connector(tls: &PgTls) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let roots = match tls.verification() {
        Verification::None => None,
        Verification::Chain | Verification::ChainAndHost => Some(root_store(tls.roots())?),
    };
    let verifier = Verifier { roots, check_host: tls.verification() == Verification::ChainAndHost, algorithms };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // PostgreSQL 17 insists on it for direct TLS (`sslnegotiation=direct`); older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

fn root_store(roots: &RootCerts) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::File(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect())
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("sslrootcert {} holds no PEM certificate", path.display()));
            }
            for cert in certs {
                store.add(cert).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "no system root certificates found{}: install ca-certificates, or name the CA with \
                     sslrootcert=FILE",
                    if why.is_empty() { String::new() } else { format!(" ({})", why.join("; ")) }
                ));
            }
        }
    }
    Ok(store)
}

/// Checks the server's certificate: nothing (`roots` is `None`), the chain, or the chain and
/// the host name. Handshake signatures are always verified, so even an unverified session is
/// with the holder of the certificate it shows.
#[derive(Debug)]
struct Verifier {
    roots: Option<RootCertStore>,
    check_host: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else { return Ok(ServerCertVerified::assertion()) };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, self.algorithms.all)?;
        if self.check_host {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// True when `e` is the driver's "error performing TLS handshake" (its error kinds are private).
pub(super) fn is_handshake_error(e: &postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
}

/// A connection error in words. A failed TLS handshake or a refused TLS request is
/// [`StoreError::Unavailable`] (no session can be had; `serve` keeps answering reads, retries,
/// and recovers once the certificate or the server is fixed) with a message naming `server`,
/// the sslmode and the reason; a plain connection refused by a TLS-only server says so.
pub(super) fn explain(e: postgres::Error, server: &str, tls: &PgTls) -> StoreError {
    if is_handshake_error(&e) {
        return StoreError::Unavailable(format!(
            "TLS with PostgreSQL at {server} failed (sslmode={}): {}",
            tls.mode,
            reason(&e, tls)
        ));
    }
    if tls.mode == SslMode::Disable
        && let Some(db) = e.as_db_error()
        && db.code().code() == "28000"
        && db.message().contains("no encryption")
    {
        return StoreError::Database(
            format!(
                "{db} (PostgreSQL at {server} accepts only TLS connections from here, and the URL says \
                 sslmode=disable: use sslmode=require or stronger)"
            )
            .into(),
        );
    }
    e.into()
}

/// Why a handshake failed, with a hint for the usual mistakes.
fn reason(e: &postgres::Error, tls: &PgTls) -> String {
    let Some(rustls) = rustls_error(e) else {
        let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string);
        return if cause.contains("server does not support TLS") {
            format!("{cause} (turn on ssl in its postgresql.conf, or use sslmode=prefer or disable)")
        } else {
            cause
        };
    };
    match rustls {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the server's certificate is not signed by {} ({rustls}): set sslrootcert to the CA that signed it",
            tls.roots()
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "{rustls} (connect by a name the certificate holds, or use sslmode=verify-ca to check the chain only)"
        ),
        other => other.to_string(),
    }
}

/// The rustls error under the driver's, when there is one (it comes wrapped in an `io::Error`,
/// whose `source()` skips the wrapped error itself).
fn rustls_error(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut next = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        let wrapped = err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
        if let Some(found) = wrapped.and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return Some(found);
        }
        next = err.source();
    }
    None
}
