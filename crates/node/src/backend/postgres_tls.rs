//! TLS for PostgreSQL: rustls on the `ring` provider, trusting the platform's root
//! certificates or the ones in `sslrootcert=PATH`. Whenever TLS is used, the certificate chain
//! and the host name are verified (see [`TlsMode`]).

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::backend::url::{PostgresTarget, TlsMode};
use crate::backend::BackendError;

/// The TLS connector for `target`. With `sslmode=disable` tokio-postgres never calls it, and
/// it trusts nothing.
pub(crate) fn connector(target: &PostgresTarget) -> Result<MakeRustlsConnect, BackendError> {
    let roots = match (target.tls, &target.root_certificate) {
        (TlsMode::Disable, _) => RootCertStore::empty(),
        (_, Some(path)) => roots_from_file(path)?,
        (TlsMode::Prefer, None) => platform_roots(false)?,
        (TlsMode::Require, None) => platform_roots(true)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| BackendError::Tls {
            detail: error.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Every certificate in the PEM file at `path`; at least one.
fn roots_from_file(path: &Path) -> Result<RootCertStore, BackendError> {
    let unreadable = |detail: String| BackendError::Certificates {
        detail: format!("sslrootcert={}: {detail}", path.display()),
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(error.to_string()))?;
    if certificates.is_empty() {
        return Err(unreadable("the file holds no PEM certificate".into()));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| unreadable(error.to_string()))?;
    }
    Ok(roots)
}

/// The platform's trusted roots. Under `sslmode=prefer` none is no error: a server without
/// TLS needs none, and one with TLS fails the handshake with its own clear error.
fn platform_roots(required: bool) -> Result<RootCertStore, BackendError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
    if required && roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(BackendError::Certificates {
            detail: format!(
                "sslmode=require needs trusted roots, and the platform has none ({}): install \
                 the ca-certificates package, or give sslrootcert=PATH",
                errors.join("; ")
            ),
        });
    }
    Ok(roots)
}
