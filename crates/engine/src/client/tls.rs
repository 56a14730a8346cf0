//! TLS for the client: the rustls configuration (the web's roots plus any CA the user
//! trusts, or any certificate with `--insecure`; a client certificate for servers that
//! ask for one; ALPN offering what the HTTP version setting allows), the handshake, the
//! files a person hands it ([`TlsFiles`]: PEM read and checked before any load), and
//! the rustls error inside a failed handshake, for people.
//!
//! Not here: TCP, HTTP, or when to connect (`pool.rs` decides that); where the files'
//! paths come from (flags, the scenario's `[tls]`, `SSL_CERT_FILE`: the binary's).

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use loadgate_scenario::HttpVersion;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::BoxError;
use crate::EngineError;

/// TLS material from files: certificate authorities trusted beside the built-in roots
/// (Mozilla's, from `webpki-roots`), and a client certificate with its key (mTLS).
/// Loaded once, before any load, and shared by every worker's client.
///
/// Its `Debug` print shows counts and paths, never a key.
#[derive(Default)]
pub struct TlsFiles {
    cas: Vec<CertificateDer<'static>>,
    ca_paths: Vec<PathBuf>,
    identity: Option<Identity>,
}

/// A client certificate chain and its key, checked to match.
struct Identity {
    key: Arc<CertifiedKey>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

/// A TLS file that cannot be used: which, what is wrong, and what to do. Never holds
/// any of the file's contents.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct TlsFileError {
    /// The file (or directory).
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
    /// What to do about it.
    pub hint: String,
}

impl TlsFileError {
    fn new(path: &Path, problem: impl Into<String>, hint: impl Into<String>) -> TlsFileError {
        TlsFileError {
            path: path.to_path_buf(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}

const PEM_HINT: &str = "give a PEM file (text with -----BEGIN CERTIFICATE----- blocks); convert a DER file with `openssl x509 -inform der -in FILE -out FILE.pem`";

/// The most of a PEM file read: Mozilla's whole bundle is about 220 KB, a company's a
/// few MB. A file that goes on past it (`/dev/zero`, a device, a pipe that never ends)
/// is refused instead of read until memory runs out.
const MAX_PEM: u64 = 16 << 20;

/// Reads `path`, refusing what cannot be read, is larger than [`MAX_PEM`], or is not
/// PEM text.
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, TlsFileError> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| {
        TlsFileError::new(
            path,
            format!("cannot read the {what}: {e}"),
            "check the path (a scenario's [tls] paths are relative to the scenario file) and its permissions",
        )
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(TlsFileError::new(
            path,
            format!("the {what} goes on past {} MiB", MAX_PEM >> 20),
            "give a PEM file of the certificates (or key) themselves, not a device or an endless stream",
        ));
    }
    if memchr::memmem::find(&bytes, b"-----BEGIN ").is_none() {
        return Err(TlsFileError::new(
            path,
            format!("the {what} is not PEM (no -----BEGIN line)"),
            PEM_HINT,
        ));
    }
    Ok(bytes)
}

/// The certificates in PEM `bytes` read from `path`.
fn certificates(
    path: &Path,
    bytes: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsFileError::new(path, format!("the {what} is not valid PEM: {e}"), PEM_HINT)
        })?;
    if certs.is_empty() {
        return Err(TlsFileError::new(
            path,
            format!("no certificate in the {what} (no -----BEGIN CERTIFICATE----- block)"),
            PEM_HINT,
        ));
    }
    Ok(certs)
}

impl TlsFiles {
    /// Trusts every certificate in the PEM file (or bundle) at `path`, beside the
    /// built-in roots. Returns how many it added.
    pub fn add_ca_file(&mut self, path: &Path) -> Result<usize, TlsFileError> {
        let bytes = read_pem(path, "CA file")?;
        let certs = certificates(path, &bytes, "CA file")?;
        self.add_cas(path, certs)
    }

    /// Trusts the certificates of every PEM file in the directory `dir` (OpenSSL's
    /// `SSL_CERT_DIR`: its hash links and other files that hold no certificate are
    /// skipped). Returns how many it added; none at all is an error.
    pub fn add_ca_dir(&mut self, dir: &Path) -> Result<usize, TlsFileError> {
        let hint = "point SSL_CERT_DIR at a directory of PEM certificates, or unset it";
        let entries = std::fs::read_dir(dir).map_err(|e| {
            TlsFileError::new(dir, format!("cannot read the CA directory: {e}"), hint)
        })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut added = 0;
        for path in paths {
            // Only what is a regular file once links are followed and reads as PEM
            // certificates: a CA directory holds other things too.
            if !path.is_file() {
                continue;
            }
            let Ok(bytes) = read_pem(&path, "CA file") else {
                continue;
            };
            if let Ok(certs) = certificates(&path, &bytes, "CA file") {
                added += self.add_cas(&path, certs)?;
            }
        }
        if added == 0 {
            return Err(TlsFileError::new(
                dir,
                "no PEM certificate in any file of the CA directory",
                hint,
            ));
        }
        Ok(added)
    }

    fn add_cas(
        &mut self,
        path: &Path,
        certs: Vec<CertificateDer<'static>>,
    ) -> Result<usize, TlsFileError> {
        // Each must be a certificate a root store takes: refused here, not mid-run.
        let mut store = rustls::RootCertStore::empty();
        for c in &certs {
            store.add(c.clone()).map_err(|e| {
                TlsFileError::new(
                    path,
                    format!("a certificate in the CA file cannot be used as a CA: {e}"),
                    "give the CA's certificate (the issuer of the server's), in PEM",
                )
            })?;
        }
        let n = certs.len();
        self.cas.extend(certs);
        self.ca_paths.push(path.to_path_buf());
        Ok(n)
    }

    /// Sends the certificate chain in the PEM file `cert` (end entity first) to servers
    /// that ask for one, signed with the private key in `key` (PKCS#8, PKCS#1 or SEC1 PEM;
    /// when `None`, the key is looked for in `cert`). Refuses a key that does not match
    /// the certificate.
    pub fn set_client_cert(&mut self, cert: &Path, key: Option<&Path>) -> Result<(), TlsFileError> {
        let bytes = read_pem(cert, "client certificate file")?;
        let chain = certificates(cert, &bytes, "client certificate file")?;
        let key_path = key.unwrap_or(cert);
        let key_bytes = match key {
            Some(k) => read_pem(k, "key file")?,
            None => bytes,
        };
        // What the PEM parser says could quote the file: a key file's problems are
        // said in words of ours only.
        let private = match PrivateKeyDer::from_pem_slice(&key_bytes) {
            Ok(k) => k,
            Err(_) if memchr::memmem::find(&key_bytes, b"ENCRYPTED").is_some() => {
                return Err(TlsFileError::new(
                    key_path,
                    "the private key is encrypted (a passphrase), which loadgate cannot read",
                    "decrypt a copy kept private: `openssl pkey -in KEY -out KEY.plain.pem`",
                ))
            }
            Err(_) => {
                return Err(TlsFileError::new(
                    key_path,
                    "no private key in the file (no -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block)",
                    match key {
                        Some(_) => "give the client certificate's key in PEM (--key / [tls] key_file)",
                        None => "the certificate file holds no key: give it with --key FILE or [tls] key_file",
                    },
                ))
            }
        };
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
            let problem = match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "the private key does not match the client certificate {}",
                    cert.display()
                ),
                // Never the parser's words about the key itself.
                _ => "the private key cannot be used (an unsupported algorithm or a damaged key)".into(),
            };
            TlsFileError::new(
                key_path,
                problem,
                "give the key that belongs to the certificate (--cert/--key, [tls] cert_file/key_file)",
            )
        })?;
        self.identity = Some(Identity {
            key: Arc::new(certified),
            cert_path: cert.to_path_buf(),
            key_path: key_path.to_path_buf(),
        });
        Ok(())
    }

    /// How many CA certificates are trusted beside the built-in roots.
    pub fn extra_cas(&self) -> usize {
        self.cas.len()
    }

    /// Whether a client certificate is set.
    pub fn has_client_cert(&self) -> bool {
        self.identity.is_some()
    }
}

/// Counts and paths; never the key.
impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cas", &self.cas.len())
            .field("ca_paths", &self.ca_paths)
            .field(
                "client_cert",
                &self.identity.as_ref().map(|i| (&i.cert_path, &i.key_path)),
            )
            .finish()
    }
}

/// The client certificate, sent when a server asks; notes that one asked (the probe
/// before the load waits for a verdict on it then).
#[derive(Debug)]
pub(super) struct ClientCert {
    key: Option<Arc<CertifiedKey>>,
    asked: AtomicBool,
}

impl ClientCert {
    /// Whether a server asked this client for a certificate.
    pub(super) fn asked(&self) -> bool {
        self.asked.load(Ordering::Relaxed)
    }

    /// Whether this client has one to send.
    pub(super) fn has_key(&self) -> bool {
        self.key.is_some()
    }
}

impl rustls::client::ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        let key = self.key.as_ref()?;
        key.key
            .choose_scheme(sigschemes)
            .is_some()
            .then(|| key.clone())
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// The connector every TLS connection of one client is made with, and its client
/// certificate.
pub(super) fn connector(
    http: HttpVersion,
    insecure: bool,
    files: &TlsFiles,
) -> Result<(TlsConnector, Arc<ClientCert>), EngineError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| EngineError::Tls(e.to_string()))?;
    let cert = Arc::new(ClientCert {
        key: files.identity.as_ref().map(|i| i.key.clone()),
        asked: AtomicBool::new(false),
    });
    let mut tls = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_client_cert_resolver(cert.clone())
    } else {
        // The CAs the user trusts add to the built-in roots (a company CA beside the
        // web's), never replace them.
        let mut roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for c in &files.cas {
            roots
                .add(c.clone())
                .map_err(|e| EngineError::Tls(e.to_string()))?;
        }
        builder
            .with_root_certificates(roots)
            .with_client_cert_resolver(cert.clone())
    };
    // Over TLS, ALPN offers what the version setting allows; over plain TCP,
    // `h2` means HTTP/2 with prior knowledge (h2c) and `auto` means HTTP/1.1.
    tls.alpn_protocols = match http {
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2 => vec![b"h2".to_vec()],
        HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok((TlsConnector::from(Arc::new(tls)), cert))
}

/// The TLS handshake with `host` over `tcp`.
pub(super) async fn handshake(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, BoxError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
    Ok(connector.connect(name, tcp).await?)
}

/// Whether the server chose HTTP/2 by ALPN.
pub(super) fn chose_h2(stream: &TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}

/// The rustls error inside `e`, looking through `io::Error`s that carry another error
/// (which `source()` does not show): tokio-rustls nests them.
pub(super) fn find_tls<'a>(
    e: &'a (dyn StdError + 'static),
    depth: u8,
) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    if depth == 0 {
        return None;
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    let inner: &(dyn StdError + 'static) = io.get_ref()?;
    find_tls(inner, depth - 1)
}

/// `--insecure`: accepts any server certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a failed TLS handshake means, for a person to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    /// The server's certificate is signed by an authority not trusted here.
    UnknownAuthority,
    /// The server's certificate is for another name.
    WrongName,
    /// The server's certificate has expired or is not valid yet.
    Expired,
    /// Something else is wrong with the server's certificate.
    BadServerCertificate,
    /// The server asked for a client certificate and none was given.
    ClientCertRequired,
    /// The server refused the client certificate given.
    ClientCertRejected,
    /// Anything else (no TLS on that port, no common version or cipher suite).
    Other,
}

/// What `e`, ending a handshake of a client with `cert`, means.
pub(super) fn problem(e: &rustls::Error, cert: &ClientCert) -> TlsProblem {
    use rustls::{AlertDescription as A, CertificateError as C, Error};
    match e {
        Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature => TlsProblem::UnknownAuthority,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsProblem::WrongName,
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsProblem::Expired,
            _ => TlsProblem::BadServerCertificate,
        },
        Error::AlertReceived(a) if cert.asked() => match (a, cert.has_key()) {
            (A::CertificateRequired | A::HandshakeFailure, false) => TlsProblem::ClientCertRequired,
            (
                A::BadCertificate
                | A::UnknownCA
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnsupportedCertificate
                | A::AccessDenied
                | A::DecryptError
                | A::HandshakeFailure,
                true,
            ) => TlsProblem::ClientCertRejected,
            _ => TlsProblem::Other,
        },
        Error::AlertReceived(A::CertificateRequired) => TlsProblem::ClientCertRequired,
        Error::NoCertificatesPresented => TlsProblem::ClientCertRequired,
        _ => TlsProblem::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review of issue 22: `--cacert /dev/zero` (or any file that never ends) was read
    /// until memory ran out (1.8 GB in 3 s), in `validate` as in `run`; it is refused
    /// after 16 MiB, naming the file and never showing its bytes.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_never_ends_is_refused_not_read_forever() {
        let mut files = TlsFiles::default();
        let e = files
            .add_ca_file(Path::new("/dev/zero"))
            .expect_err("refused");
        assert_eq!(e.path, Path::new("/dev/zero"));
        assert!(e.problem.contains("goes on past 16 MiB"), "{}", e.problem);
    }
}
