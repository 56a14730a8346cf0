//! TLS for the client: the rustls configuration (the web's roots, or any certificate with
//! `--insecure`; ALPN offering what the HTTP version setting allows), the handshake, and
//! the rustls error inside a failed one, for people.
//!
//! Not here: TCP, HTTP, or when to connect (`pool.rs` decides that).

use std::error::Error as StdError;
use std::sync::Arc;

use loadgate_scenario::HttpVersion;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::BoxError;
use crate::EngineError;

/// The connector every TLS connection of one client is made with.
pub(super) fn connector(http: HttpVersion, insecure: bool) -> Result<TlsConnector, EngineError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| EngineError::Tls(e.to_string()))?;
    let mut tls = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    // Over TLS, ALPN offers what the version setting allows; over plain TCP,
    // `h2` means HTTP/2 with prior knowledge (h2c) and `auto` means HTTP/1.1.
    tls.alpn_protocols = match http {
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2 => vec![b"h2".to_vec()],
        HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(TlsConnector::from(Arc::new(tls)))
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
