//! TLS to Kafka brokers (`kafka.security.protocol=ssl`).
//!
//! rustls without its default crypto (aws-lc-rs and ring are C builds),
//! with graviola as the provider: pure Rust and assembly, no build script,
//! so the static musl binary still needs no C compiler. Graviola's AES-GCM,
//! field arithmetic and hashes use x86-64 instructions (AES-NI, PCLMULQDQ,
//! AVX2, BMI1/2, ADX) without a fallback and would crash on a CPU without
//! them: [`TlsSettings::build`] checks first and refuses with one line.
//!
//! Trust: the PEM file in `kafka.ssl.ca.location`, else the system's CA
//! bundle, else Mozilla's roots compiled in (a `FROM scratch` image has no
//! bundle). The broker's name is checked against its certificate unless
//! `kafka.ssl.endpoint.identification=none`, which still checks the chain.

use std::io;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
    StreamOwned,
};

/// The `kafka.ssl.*` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `kafka.ssl.ca.location`: PEM file of the CAs to trust.
    pub ca: Option<PathBuf>,
    /// `kafka.ssl.certificate.location`: the client's certificate chain.
    pub cert: Option<PathBuf>,
    /// `kafka.ssl.key.location`: its private key.
    pub key: Option<PathBuf>,
    /// `kafka.ssl.endpoint.identification=https` (the default).
    pub verify_name: bool,
}

/// A ready TLS client configuration, shared by every connection.
#[derive(Clone)]
pub struct Tls {
    pub(crate) config: Arc<ClientConfig>,
    /// Where the trusted CAs came from, for `check` and the log.
    pub trust: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({})", self.trust)
    }
}

impl TlsSettings {
    /// Loads the CAs and the client certificate; every failure is one
    /// sentence naming the setting to fix.
    pub fn build(&self) -> Result<Tls, String> {
        let missing = crate::tls::missing_cpu_features();
        if !missing.is_empty() {
            return Err(crate::tls::cpu_refusal(
                &missing,
                "reach the broker without TLS",
            ));
        }
        let provider = crate::tls::provider();
        let (roots, trust) =
            crate::tls::trusted_roots(self.ca.as_deref(), "kafka.ssl.ca.location")?;
        let roots = Arc::new(roots);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?;
        let builder = if self.verify_name {
            builder.with_root_certificates(roots)
        } else {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("kafka.ssl.ca.location: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName(inner)))
        };
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                crate::tls::check_client_files(
                    "kafka.ssl.certificate.location",
                    cert,
                    "kafka.ssl.key.location",
                    key,
                )?;
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| crate::tls::pem_error("kafka.ssl.certificate.location", cert, e))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| crate::tls::pem_error("kafka.ssl.certificate.location", cert, e))?;
                if chain.is_empty() {
                    return Err(format!(
                        "kafka.ssl.certificate.location {}: no certificate in it (a PEM file with BEGIN CERTIFICATE)",
                        cert.display()
                    ));
                }
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| crate::tls::pem_error("kafka.ssl.key.location", key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| format!("kafka.ssl.certificate.location and kafka.ssl.key.location do not make a usable client certificate: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err("kafka.ssl.certificate.location and kafka.ssl.key.location go together: set both for a client certificate, or neither".into())
            }
        };
        Ok(Tls {
            config: Arc::new(config),
            trust,
        })
    }
}

/// `kafka.ssl.endpoint.identification=none`: the chain is verified, the
/// name is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What a TLS connection negotiated, for `check` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Protocol version and cipher suite, e.g. "TLSv1_3 TLS13_AES_256_GCM_SHA384".
    pub negotiated: String,
    /// The broker certificate's subject CN and expiry (Unix seconds).
    pub peer: Option<(String, i64)>,
}

/// A TLS session over a connected socket, its handshake done.
pub(crate) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Runs the handshake with the broker at `addr` (host:port) over `tcp`.
/// An `Err` is a sentence saying what is wrong and which setting fixes it.
pub(crate) fn handshake(tls: &Tls, addr: &str, mut tcp: TcpStream) -> Result<TlsStream, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host} is not a host name or IP address TLS can check"))?;
    let mut conn = ClientConnection::new(tls.config.clone(), name)
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Err(explain(&e, host));
        }
    }
    Ok(StreamOwned::new(conn, tcp))
}

/// The negotiated protocol and cipher suite, e.g. "TLSv1_3 TLS13_AES_256_GCM_SHA384".
pub(crate) fn describe(s: &TlsStream) -> String {
    let version = s
        .conn
        .protocol_version()
        .map_or("?".to_string(), |v| format!("{v:?}"));
    let suite = s
        .conn
        .negotiated_cipher_suite()
        .map_or("?".to_string(), |c| format!("{:?}", c.suite()));
    format!("{version} {suite}")
}

/// The broker certificate's subject common name and expiry (Unix seconds),
/// for `check`.
pub(crate) fn peer_certificate(s: &TlsStream) -> Option<(String, i64)> {
    let der = s.conn.peer_certificates()?.first()?;
    crate::tls::subject_and_expiry(der.as_ref())
}

/// One sentence for a failed handshake or TLS read.
pub(crate) fn explain(e: &io::Error, host: &str) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => format!(
                "the TLS handshake was cut off ({e}): is this port a TLS listener, and does the broker require a client certificate (kafka.ssl.certificate.location, kafka.ssl.key.location)?"
            ),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                "no TLS answer ({e}): is this port a TLS listener (kafka.security.protocol=ssl)?"
            ),
            _ => format!("TLS handshake failed: {e}"),
        };
    };
    crate::tls::explain(tls, host, &KEYS)
}

/// The settings a Kafka TLS failure points at.
const KEYS: crate::tls::Keys = crate::tls::Keys {
    peer: "broker",
    renew: "renew it on the broker",
    ca: "set kafka.ssl.ca.location to the PEM file of the CA that signed it",
    name: "connect by a name the certificate holds (kafka.brokers), or set kafka.ssl.endpoint.identification=none to skip the name check (the chain is still checked)",
    client: "kafka.ssl.certificate.location, kafka.ssl.key.location",
    listener: "is this port a TLS listener (kafka.security.protocol=ssl)?",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_needs_its_key_and_a_missing_file_is_named() {
        let half = TlsSettings {
            cert: Some("/nonexistent/client.pem".into()),
            verify_name: true,
            ..Default::default()
        };
        let e = half.build().unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let missing = TlsSettings {
            ca: Some("/nonexistent/ca.pem".into()),
            verify_name: true,
            ..Default::default()
        };
        let e = missing.build().unwrap_err();
        assert!(
            e.contains("kafka.ssl.ca.location /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn without_a_ca_file_the_system_bundle_or_the_compiled_in_roots_are_trusted() {
        let tls = TlsSettings {
            verify_name: true,
            ..Default::default()
        }
        .build()
        .unwrap();
        assert!(
            tls.trust
                .contains("CA certificates from the system's bundle")
                || tls.trust.contains("Mozilla roots"),
            "{}",
            tls.trust
        );
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
    }
}
