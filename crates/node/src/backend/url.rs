//! The value of `--backend` and `--election`, parsed into a [`Backend`] and an
//! [`ElectionName`] that are valid by construction.
//!
//! - `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=MODE&sslrootcert=PATH` (or
//!   `postgresql://`): anything else tokio-postgres accepts in a URL is passed on to it.
//! - `etcd://HOST:PORT[,HOST:PORT…]`: plain gRPC; `etcds://` is refused with a clear error.
//!
//! Every error names the one thing that is wrong and never repeats the password: the input may
//! hold one, and errors end up in logs. [`Backend`]'s `Display` shows the target with the
//! password replaced by `***`, for logs and `--dry-run`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tenure_core::ExpiryJudge;
use tokio_postgres::config::{Host, SslMode};

use crate::backend::error_chain;

/// The most etcd endpoints one `--backend` may list.
pub const MAX_ETCD_ENDPOINTS: usize = 16;

/// The longest election name: it becomes an etcd key and a PostgreSQL primary key.
pub const MAX_ELECTION_NAME_LENGTH: usize = 128;

/// Where an election is held: a parsed `--backend`.
#[derive(Clone, Debug)]
pub enum Backend {
    /// Boxed: its settings are ten times the size of etcd's list.
    Postgres(Box<PostgresTarget>),
    /// `endpoints` are `HOST:PORT`, as given, in order.
    Etcd { endpoints: Vec<String> },
}

/// A PostgreSQL server to hold elections in. `config` never has `sslmode=allow` or a TLS mode
/// tokio-postgres lacks: [`TlsMode`] says what TLS does.
#[derive(Clone, Debug)]
pub struct PostgresTarget {
    /// The connection settings. Its `Debug` hides the password.
    pub config: tokio_postgres::Config,
    pub tls: TlsMode,
    /// `sslrootcert=PATH`: trust only the certificates in this PEM file, instead of the
    /// platform's roots.
    pub root_certificate: Option<PathBuf>,
}

/// What `sslmode` asks of TLS. Whenever TLS is used, the server's certificate is verified
/// against the trusted roots and its name against the host, as libpq's `verify-full` does.
/// That is stricter than libpq's `prefer` and `require`, which accept any certificate: a
/// leader election trusts the store's answers, so it does not talk to a store it cannot
/// authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// `disable`: plaintext.
    Disable,
    /// `prefer` (the default): TLS when the server offers it, plaintext when it does not.
    Prefer,
    /// `require`, `verify-ca` or `verify-full`: TLS or no connection.
    Require,
}

/// Why `--backend` was refused. Each message names what is wrong and what is expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendUrlError {
    Empty,
    NotUrl,
    UnknownScheme { scheme: String },
    EtcdTls,
    EtcdCredentials,
    EtcdPath,
    EtcdNoEndpoint,
    EtcdTooManyEndpoints { count: usize },
    EtcdBadEndpoint { endpoint: String },
    PostgresInvalid { reason: String },
    PostgresNoUser,
    PostgresNoHost,
    PostgresSslMode { mode: String },
    PostgresRootCertificateWithoutTls,
    PostgresBadEscape { parameter: &'static str },
}

/// A valid `--election` name: 1 to 128 characters out of `A-Z a-z 0-9 _ . -`. It is used as
/// is in the etcd key `/tenure/elections/NAME` and the PostgreSQL row's primary key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ElectionName(String);

/// Why `--election` was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionNameError {
    Empty,
    TooLong { length: usize },
    BadCharacter { character: char, position: usize },
}

const ETCD_FORM: &str = "etcd://HOST:PORT[,HOST:PORT…]";
const POSTGRES_FORM: &str = "postgres://USER:PASSWORD@HOST:PORT/DATABASE";

impl fmt::Display for BackendUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BackendUrlError as E;
        match self {
            E::Empty => write!(f, "--backend is empty: give {POSTGRES_FORM} or {ETCD_FORM}"),
            E::NotUrl => write!(
                f,
                "--backend is not a URL (it has no `SCHEME://`): give {POSTGRES_FORM} or \
                 {ETCD_FORM}"
            ),
            E::UnknownScheme { scheme } => write!(
                f,
                "--backend has the unknown scheme `{scheme}://`: use postgres://, \
                 postgresql:// or etcd://"
            ),
            E::EtcdTls
            | E::EtcdCredentials
            | E::EtcdPath
            | E::EtcdNoEndpoint
            | E::EtcdTooManyEndpoints { .. }
            | E::EtcdBadEndpoint { .. } => self.fmt_etcd(f),
            E::PostgresInvalid { .. }
            | E::PostgresNoUser
            | E::PostgresNoHost
            | E::PostgresSslMode { .. }
            | E::PostgresRootCertificateWithoutTls
            | E::PostgresBadEscape { .. } => self.fmt_postgres(f),
        }
    }
}

impl BackendUrlError {
    fn fmt_etcd(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BackendUrlError as E;
        match self {
            E::EtcdTls => write!(
                f,
                "--backend etcds:// (etcd over TLS) is not supported: use etcd:// on a trusted \
                 network, or PostgreSQL with sslmode=require"
            ),
            E::EtcdCredentials => write!(
                f,
                "--backend etcd:// does not support etcd authentication (USER:PASSWORD@): \
                 give {ETCD_FORM}"
            ),
            E::EtcdPath => write!(
                f,
                "--backend etcd:// takes no path and no query: give {ETCD_FORM}"
            ),
            E::EtcdNoEndpoint => write!(f, "--backend etcd:// names no endpoint: give {ETCD_FORM}"),
            E::EtcdTooManyEndpoints { count } => write!(
                f,
                "--backend etcd:// lists {count} endpoints; at most {MAX_ETCD_ENDPOINTS} are \
                 allowed"
            ),
            E::EtcdBadEndpoint { endpoint } => write!(
                f,
                "--backend etcd:// endpoint `{endpoint}` is not HOST:PORT (a host name, an IPv4 \
                 address or a bracketed IPv6 address, and a port from 1 to 65535)"
            ),
            _ => unreachable!("fmt_etcd formats only the etcd errors"),
        }
    }

    fn fmt_postgres(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BackendUrlError as E;
        match self {
            E::PostgresInvalid { reason } => write!(
                f,
                "--backend is not a valid PostgreSQL URL ({reason}): give {POSTGRES_FORM}"
            ),
            E::PostgresNoUser => write!(
                f,
                "--backend names no PostgreSQL user: give {POSTGRES_FORM}"
            ),
            E::PostgresNoHost => write!(
                f,
                "--backend names no PostgreSQL host: give {POSTGRES_FORM}"
            ),
            E::PostgresSslMode { mode } => write!(
                f,
                "--backend has sslmode={mode}, which tenure does not support: use disable, \
                 prefer, require, verify-ca or verify-full"
            ),
            E::PostgresRootCertificateWithoutTls => write!(
                f,
                "--backend has sslrootcert= with sslmode=disable: drop one of them"
            ),
            E::PostgresBadEscape { parameter } => write!(
                f,
                "--backend parameter {parameter} has a bad percent escape (%XX with two hex \
                 digits, of UTF-8)"
            ),
            _ => unreachable!("fmt_postgres formats only the PostgreSQL errors"),
        }
    }
}

impl std::error::Error for BackendUrlError {}

impl fmt::Display for ElectionNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElectionNameError::Empty => write!(f, "--election is empty: give a name"),
            ElectionNameError::TooLong { length } => write!(
                f,
                "--election is {length} characters long; at most {MAX_ELECTION_NAME_LENGTH} are \
                 allowed"
            ),
            ElectionNameError::BadCharacter {
                character,
                position,
            } => write!(
                f,
                "--election has {character:?} at position {position}: use only letters, digits, \
                 `_`, `.` and `-`"
            ),
        }
    }
}

impl std::error::Error for ElectionNameError {}

impl FromStr for Backend {
    type Err = BackendUrlError;

    fn from_str(text: &str) -> Result<Backend, BackendUrlError> {
        Backend::parse(text)
    }
}

impl Backend {
    /// Parses a `--backend` value. See the module docs for the forms.
    pub fn parse(text: &str) -> Result<Backend, BackendUrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(BackendUrlError::Empty);
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(BackendUrlError::NotUrl);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => {
                parse_postgres(text).map(|target| Backend::Postgres(Box::new(target)))
            }
            "etcd" => parse_etcd(rest),
            "etcds" => Err(BackendUrlError::EtcdTls),
            _ => Err(BackendUrlError::UnknownScheme {
                scheme: printable_prefix(scheme),
            }),
        }
    }

    /// Who judges that a holder's tenure is over: PostgreSQL keeps no clock for it, etcd
    /// expires the key with its lease.
    #[must_use]
    pub fn judge(&self) -> ExpiryJudge {
        match self {
            Backend::Postgres(_) => ExpiryJudge::Contenders,
            Backend::Etcd { .. } => ExpiryJudge::Store,
        }
    }
}

/// The target without its password: `postgres://USER:***@HOST:PORT/DATABASE?sslmode=MODE`
/// or `etcd://HOST:PORT,…`.
impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Etcd { endpoints } => write!(f, "etcd://{}", endpoints.join(",")),
            Backend::Postgres(target) => fmt::Display::fmt(target, f),
        }
    }
}

impl fmt::Display for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.config;
        write!(f, "postgres://{}", config.get_user().unwrap_or_default())?;
        if config.get_password().is_some() {
            write!(f, ":***")?;
        }
        let ports = config.get_ports();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(index, host)| {
                let name = match host {
                    Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(path) => path.display().to_string(),
                };
                // tokio-postgres takes one port for all hosts, or one per host.
                match ports.get(index).or(ports.first()) {
                    Some(port) => format!("{name}:{port}"),
                    None => name,
                }
            })
            .collect();
        write!(f, "@{}", hosts.join(","))?;
        if let Some(database) = config.get_dbname() {
            write!(f, "/{database}")?;
        }
        write!(f, "?sslmode={}", self.tls.name())?;
        if let Some(path) = &self.root_certificate {
            write!(f, "&sslrootcert={}", path.display())?;
        }
        Ok(())
    }
}

impl TlsMode {
    /// The `sslmode` value that names this mode.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
        }
    }
}

impl FromStr for ElectionName {
    type Err = ElectionNameError;

    fn from_str(text: &str) -> Result<ElectionName, ElectionNameError> {
        ElectionName::parse(text)
    }
}

impl ElectionName {
    /// Checks a `--election` value.
    pub fn parse(text: &str) -> Result<ElectionName, ElectionNameError> {
        if text.is_empty() {
            return Err(ElectionNameError::Empty);
        }
        let length = text.chars().count();
        if length > MAX_ELECTION_NAME_LENGTH {
            return Err(ElectionNameError::TooLong { length });
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if let Some((position, character)) = text.chars().enumerate().find(|(_, c)| !allowed(*c)) {
            return Err(ElectionNameError::BadCharacter {
                character,
                position,
            });
        }
        Ok(ElectionName(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ElectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ----- etcd ---------------------------------------------------------------------------------

/// `rest` is what follows `etcd://`.
fn parse_etcd(rest: &str) -> Result<Backend, BackendUrlError> {
    // A trailing slash is harmless; any other path or query is a mistake worth naming.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(BackendUrlError::EtcdCredentials);
    }
    if rest.contains(['/', '?', '#']) {
        return Err(BackendUrlError::EtcdPath);
    }
    if rest.is_empty() {
        return Err(BackendUrlError::EtcdNoEndpoint);
    }
    let endpoints: Vec<&str> = rest.split(',').collect();
    if endpoints.len() > MAX_ETCD_ENDPOINTS {
        return Err(BackendUrlError::EtcdTooManyEndpoints {
            count: endpoints.len(),
        });
    }
    let endpoints = endpoints
        .into_iter()
        .map(|endpoint| {
            if is_host_and_port(endpoint) {
                Ok(endpoint.to_owned())
            } else {
                Err(BackendUrlError::EtcdBadEndpoint {
                    endpoint: printable_prefix(endpoint),
                })
            }
        })
        .collect::<Result<Vec<String>, BackendUrlError>>()?;
    Ok(Backend::Etcd { endpoints })
}

/// `HOST:PORT` with a host name, an IPv4 address or a bracketed IPv6 address, and a port from
/// 1 to 65535.
fn is_host_and_port(endpoint: &str) -> bool {
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return false;
    };
    let port_valid = port.parse::<u16>().is_ok_and(|port| port > 0);
    let host_valid = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(address) => address.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        }
    };
    port_valid && host_valid
}

// ----- PostgreSQL ---------------------------------------------------------------------------

/// Takes out the parameters tenure handles itself (`sslmode`, `sslrootcert`), hands the rest
/// to tokio-postgres, and checks that a user and a host are named.
fn parse_postgres(text: &str) -> Result<PostgresTarget, BackendUrlError> {
    let (base, query) = match text.split_once('?') {
        Some((base, query)) => (base, query),
        None => (text, ""),
    };
    let mut tls = TlsMode::Prefer;
    let mut root_certificate = None;
    let mut passed_on = Vec::new();
    for parameter in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        match key {
            "sslmode" => tls = tls_mode(&percent_decode(value, "sslmode")?)?,
            "sslrootcert" => {
                root_certificate = Some(PathBuf::from(percent_decode(value, "sslrootcert")?));
            }
            _ => passed_on.push(parameter),
        }
    }
    let rebuilt = if passed_on.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", passed_on.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(|error| {
        // tokio-postgres names the offending option or says what it could not parse; it
        // never repeats the values.
        BackendUrlError::PostgresInvalid {
            reason: error_chain(&error),
        }
    })?;
    if config.get_user().is_none_or(str::is_empty) {
        return Err(BackendUrlError::PostgresNoUser);
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err(BackendUrlError::PostgresNoHost);
    }
    if tls == TlsMode::Disable && root_certificate.is_some() {
        return Err(BackendUrlError::PostgresRootCertificateWithoutTls);
    }
    config.ssl_mode(match tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require => SslMode::Require,
    });
    Ok(PostgresTarget {
        config,
        tls,
        root_certificate,
    })
}

fn tls_mode(mode: &str) -> Result<TlsMode, BackendUrlError> {
    match mode {
        "disable" => Ok(TlsMode::Disable),
        "prefer" => Ok(TlsMode::Prefer),
        // tenure verifies the certificate and the host name whenever it uses TLS.
        "require" | "verify-ca" | "verify-full" => Ok(TlsMode::Require),
        _ => Err(BackendUrlError::PostgresSslMode {
            mode: printable_prefix(mode),
        }),
    }
}

/// Decodes `%XX` escapes in a query value of ours; `+` stays as it is, as libpq reads it.
fn percent_decode(value: &str, parameter: &'static str) -> Result<String, BackendUrlError> {
    let bad = || BackendUrlError::PostgresBadEscape { parameter };
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = value.get(index + 1..index + 3).ok_or_else(bad)?;
            decoded.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| bad())
}

/// At most 40 characters of `text`, with control characters escaped: enough to recognise a
/// scheme or an endpoint in an error, without printing whatever else the input held.
fn printable_prefix(text: &str) -> String {
    const LIMIT: usize = 40;
    let mut shown: String = text
        .chars()
        .take(LIMIT)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > LIMIT {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "s3cret-Pa55";

    fn refused(text: &str) -> BackendUrlError {
        let error = Backend::parse(text).expect_err(text);
        assert!(
            !error.to_string().contains(PASSWORD),
            "the error for {text} shows the password: {error}"
        );
        error
    }

    // ----- What is accepted, and how it is shown --------------------------------------------

    #[test]
    fn a_postgres_url_keeps_its_settings_and_shows_no_password() {
        let text = format!("postgres://tenure:{PASSWORD}@db.example:55432/elections");
        let backend = Backend::parse(&text).unwrap();
        let Backend::Postgres(target) = &backend else {
            panic!("not PostgreSQL: {backend:?}");
        };
        assert_eq!(target.config.get_user(), Some("tenure"));
        assert_eq!(target.config.get_password(), Some(PASSWORD.as_bytes()));
        assert_eq!(target.config.get_ports(), [55432]);
        assert_eq!(target.config.get_dbname(), Some("elections"));
        assert_eq!(target.tls, TlsMode::Prefer);
        assert_eq!(backend.judge(), ExpiryJudge::Contenders);
        assert_eq!(
            backend.to_string(),
            "postgres://tenure:***@db.example:55432/elections?sslmode=prefer"
        );
        assert!(!format!("{backend:?}").contains(PASSWORD));
    }

    #[test]
    fn postgresql_scheme_tls_modes_and_a_root_certificate_are_read() {
        let text = "postgresql://tenure@127.0.0.1:5432/tenure?sslmode=verify-full\
                    &sslrootcert=/etc/ssl/my%20ca.pem&application_name=tenure";
        let Backend::Postgres(target) = Backend::parse(text).unwrap() else {
            panic!("not PostgreSQL");
        };
        assert_eq!(target.tls, TlsMode::Require);
        assert_eq!(target.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            target.root_certificate,
            Some(PathBuf::from("/etc/ssl/my ca.pem"))
        );
        assert_eq!(target.config.get_application_name(), Some("tenure"));
        assert_eq!(
            target.to_string(),
            "postgres://tenure@127.0.0.1:5432/tenure?sslmode=require\
             &sslrootcert=/etc/ssl/my ca.pem"
        );
        for (mode, expected) in [
            ("disable", TlsMode::Disable),
            ("prefer", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::Require),
        ] {
            let text = format!("postgres://u@h/d?sslmode={mode}");
            let Backend::Postgres(target) = Backend::parse(&text).unwrap() else {
                panic!("not PostgreSQL");
            };
            assert_eq!(target.tls, expected, "{mode}");
        }
    }

    #[test]
    fn an_etcd_url_lists_its_endpoints() {
        let backend =
            Backend::parse("etcd://127.0.0.1:52379,etcd-2.local:2379,[::1]:2379/").unwrap();
        let Backend::Etcd { endpoints } = &backend else {
            panic!("not etcd: {backend:?}");
        };
        assert_eq!(
            endpoints,
            &["127.0.0.1:52379", "etcd-2.local:2379", "[::1]:2379"]
        );
        assert_eq!(backend.judge(), ExpiryJudge::Store);
        assert_eq!(
            backend.to_string(),
            "etcd://127.0.0.1:52379,etcd-2.local:2379,[::1]:2379"
        );
    }

    // ----- Every error ----------------------------------------------------------------------

    #[test]
    fn an_empty_or_schemeless_backend_is_refused() {
        assert_eq!(refused("  "), BackendUrlError::Empty);
        assert_eq!(
            refused(&format!("tenure:{PASSWORD}@localhost")),
            BackendUrlError::NotUrl
        );
    }

    #[test]
    fn an_unknown_scheme_is_named_without_the_rest() {
        let error = refused(&format!("mysql://root:{PASSWORD}@db/x"));
        assert_eq!(
            error,
            BackendUrlError::UnknownScheme {
                scheme: "mysql".into()
            }
        );
        assert!(error.to_string().contains("`mysql://`"), "{error}");
    }

    #[test]
    fn etcd_over_tls_and_etcd_credentials_are_refused() {
        assert_eq!(refused("etcds://127.0.0.1:2379"), BackendUrlError::EtcdTls);
        assert_eq!(
            refused(&format!("etcd://root:{PASSWORD}@127.0.0.1:2379")),
            BackendUrlError::EtcdCredentials
        );
    }

    #[test]
    fn an_etcd_path_query_or_missing_endpoint_is_refused() {
        assert_eq!(refused("etcd://h:2379/prefix"), BackendUrlError::EtcdPath);
        assert_eq!(refused("etcd://h:2379?x=1"), BackendUrlError::EtcdPath);
        assert_eq!(refused("etcd://"), BackendUrlError::EtcdNoEndpoint);
        assert_eq!(refused("etcd:///"), BackendUrlError::EtcdNoEndpoint);
    }

    #[test]
    fn too_many_etcd_endpoints_are_refused() {
        let endpoints = vec!["h:1"; MAX_ETCD_ENDPOINTS + 1].join(",");
        assert_eq!(
            refused(&format!("etcd://{endpoints}")),
            BackendUrlError::EtcdTooManyEndpoints {
                count: MAX_ETCD_ENDPOINTS + 1
            }
        );
    }

    #[test]
    fn a_bad_etcd_endpoint_is_named() {
        for endpoint in [
            "h", "h:0", "h:65536", "h:port", ":2379", "[::1", "[zz]:1", "h h:1", "a,,b",
        ] {
            let error = refused(&format!("etcd://{endpoint}"));
            assert!(
                matches!(error, BackendUrlError::EtcdBadEndpoint { .. }),
                "{endpoint}: {error:?}"
            );
        }
        assert_eq!(
            refused("etcd://ok:1,bad"),
            BackendUrlError::EtcdBadEndpoint {
                endpoint: "bad".into()
            }
        );
    }

    #[test]
    fn an_invalid_postgres_url_says_why_without_the_password() {
        let error = refused(&format!("postgres://u:{PASSWORD}@h:notaport/d"));
        assert!(
            matches!(&error, BackendUrlError::PostgresInvalid { reason } if reason.contains("port")),
            "{error:?}"
        );
        let error = refused(&format!("postgres://u:{PASSWORD}@h/d?frobnicate=1"));
        assert!(error.to_string().contains("frobnicate"), "{error}");
    }

    #[test]
    fn a_postgres_url_without_user_or_host_is_refused() {
        assert_eq!(
            refused("postgres://h:5432/d"),
            BackendUrlError::PostgresNoUser
        );
        assert_eq!(
            refused(&format!("postgres://u:{PASSWORD}@/d")),
            BackendUrlError::PostgresNoHost
        );
    }

    #[test]
    fn an_unsupported_sslmode_is_named() {
        assert_eq!(
            refused(&format!("postgres://u:{PASSWORD}@h/d?sslmode=allow")),
            BackendUrlError::PostgresSslMode {
                mode: "allow".into()
            }
        );
    }

    #[test]
    fn a_root_certificate_without_tls_is_refused() {
        assert_eq!(
            refused("postgres://u@h/d?sslmode=disable&sslrootcert=/ca.pem"),
            BackendUrlError::PostgresRootCertificateWithoutTls
        );
    }

    #[test]
    fn a_bad_percent_escape_is_refused() {
        for value in ["%", "%4", "%zz", "%ff"] {
            assert_eq!(
                refused(&format!("postgres://u@h/d?sslrootcert={value}")),
                BackendUrlError::PostgresBadEscape {
                    parameter: "sslrootcert"
                },
                "{value}"
            );
        }
    }

    #[test]
    fn election_names_are_checked() {
        assert_eq!(
            ElectionName::parse("billing-cron_2.a").unwrap().as_str(),
            "billing-cron_2.a"
        );
        let longest = "x".repeat(MAX_ELECTION_NAME_LENGTH);
        assert!(ElectionName::parse(&longest).is_ok());
        assert_eq!(ElectionName::parse(""), Err(ElectionNameError::Empty));
        assert_eq!(
            ElectionName::parse(&format!("{longest}x")),
            Err(ElectionNameError::TooLong {
                length: MAX_ELECTION_NAME_LENGTH + 1
            })
        );
        for (name, character, position) in [("a/b", '/', 1), ("é", 'é', 0), ("a b", ' ', 1)] {
            assert_eq!(
                ElectionName::parse(name),
                Err(ElectionNameError::BadCharacter {
                    character,
                    position
                })
            );
        }
        assert!(ElectionName::parse("a/b")
            .unwrap_err()
            .to_string()
            .contains("'/' at position 1"));
    }
}
