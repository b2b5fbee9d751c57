//! TLS to MySQL (`mysql.ssl_mode`), with the mode names MySQL's own
//! clients use. The `mysql` driver does the TLS itself (its `rustls`
//! feature); this module turns the settings into its options, installs the
//! pure-Rust provider it takes as rustls' process default, and turns its
//! failures into one sentence naming the setting to fix.
//!
//! | mode | encrypted | certificate checked | name checked |
//! |---|---|---|---|
//! | `disabled` | no | - | - |
//! | `preferred` (default) | when the server offers TLS | no | no |
//! | `required` | yes, or the connection fails | no | no |
//! | `verify_ca` | yes | against `mysql.ssl_ca` | no |
//! | `verify_identity` | yes | against `mysql.ssl_ca` | `mysql.host` |
//!
//! The driver adds Mozilla's roots to `mysql.ssl_ca` whatever is set, so
//! `verify_ca` also accepts a server certificate from a public CA; use
//! `verify_identity` where that matters.

use mysql::{ClientIdentity, SslOpts};

/// `mysql.ssl_mode`, with MySQL's client names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    /// The setting's value, as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "disabled",
            SslMode::Preferred => "preferred",
            SslMode::Required => "required",
            SslMode::VerifyCa => "verify_ca",
            SslMode::VerifyIdentity => "verify_identity",
        }
    }
}

/// The `mysql.ssl_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlTls {
    pub mode: SslMode,
    pub ca: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

/// The driver's options for `t`, or `None` for a plaintext connection.
/// `Err` when TLS is wanted and cannot be had on this CPU.
pub fn ssl_opts(t: &MysqlTls) -> Result<Option<SslOpts>, String> {
    if t.mode == SslMode::Disabled {
        return Ok(None);
    }
    let missing = crate::tls::missing_cpu_features();
    if !missing.is_empty() {
        if t.mode == SslMode::Preferred {
            return Ok(None);
        }
        return Err(crate::tls::cpu_refusal(
            &missing,
            "set mysql.ssl_mode=disabled",
        ));
    }
    crate::tls::provider();
    let mut o = SslOpts::default()
        .with_danger_accept_invalid_certs(matches!(t.mode, SslMode::Preferred | SslMode::Required))
        .with_danger_skip_domain_validation(t.mode != SslMode::VerifyIdentity);
    if let Some(ca) = &t.ca {
        o = o.with_root_cert_path(Some(ca.clone()));
    }
    if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
        crate::tls::check_client_files("mysql.ssl_cert", cert, "mysql.ssl_key", key)?;
        o = o.with_client_identity(Some(ClientIdentity::new(cert.clone(), key.clone())));
    }
    Ok(Some(o))
}

/// The rustls failure inside a driver error, if that is what it is.
pub fn rustls_error(e: &mysql::Error) -> Option<&rustls::Error> {
    let io = match e {
        mysql::Error::TlsError(mysql::error::tls::TlsError::Tls(t)) => return Some(t),
        mysql::Error::IoError(io) => io,
        mysql::Error::CodecError(mysql_common::proto::codec::error::PacketCodecError::Io(io)) => io,
        _ => return None,
    };
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The settings a MySQL TLS failure points at.
pub const KEYS: crate::tls::Keys = crate::tls::Keys {
    peer: "server",
    renew: "renew it on the server (ssl_cert)",
    ca: "set mysql.ssl_ca to the PEM file of the CA that signed it",
    name: "connect by a name the certificate holds (mysql.host), or use mysql.ssl_mode=verify_ca to check the CA only",
    client: "mysql.ssl_cert, mysql.ssl_key",
    listener: "is mysql.host:mysql.port a MySQL server?",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(mode: SslMode) -> MysqlTls {
        MysqlTls {
            mode,
            ca: Some("/etc/ca.pem".into()),
            cert: None,
            key: None,
        }
    }

    #[test]
    fn each_mode_checks_what_mysqls_own_clients_check() {
        assert!(ssl_opts(&mode(SslMode::Disabled)).unwrap().is_none());
        let look = |m| {
            let o = ssl_opts(&mode(m)).unwrap().expect("TLS");
            (o.accept_invalid_certs(), o.skip_domain_validation())
        };
        assert_eq!(
            look(SslMode::Preferred),
            (true, true),
            "encrypted, unverified"
        );
        assert_eq!(
            look(SslMode::Required),
            (true, true),
            "encrypted, unverified"
        );
        assert_eq!(
            look(SslMode::VerifyCa),
            (false, true),
            "the CA, not the name"
        );
        assert_eq!(look(SslMode::VerifyIdentity), (false, false), "both");
    }
}

/// What a connection negotiated, from the server's own status variables
/// (the driver keeps its TLS session to itself): protocol, cipher, and the
/// server certificate's expiry as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub version: String,
    pub cipher: String,
    /// `Ssl_server_not_after`, e.g. "Nov 28 01:52:13 2036 GMT".
    pub not_after: String,
}

/// The TLS session of `conn`, or `None` over plaintext.
pub fn session(conn: &mut mysql::Conn) -> Option<Session> {
    use mysql::prelude::Queryable;
    let status = |conn: &mut mysql::Conn, q: &str| -> Option<String> {
        let row: Option<(String, String)> = conn.query_first(q).ok()?;
        row.map(|(_, v)| v).filter(|v| !v.is_empty())
    };
    let version = status(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")?;
    Some(Session {
        version,
        cipher: status(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").unwrap_or_default(),
        not_after: status(conn, "SHOW GLOBAL STATUS LIKE 'Ssl_server_not_after'")
            .unwrap_or_default(),
    })
}

/// Days from `now` (Unix seconds) to an OpenSSL date ("Nov 28 01:52:13
/// 2036 GMT"), if it reads as one.
pub fn days_left(not_after: &str, now: i64) -> Option<i64> {
    let parts: Vec<&str> = not_after.split_whitespace().collect();
    let (month, day, time, year) = (parts.first()?, parts.get(1)?, parts.get(2)?, parts.get(3)?);
    let m = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|x| x == month)? as i64
        + 1;
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    let days = crate::clock::days_from_civil(year.parse().ok()?, m, day.parse().ok()?);
    Some((days * 86_400 + h * 3600 + mi * 60 + s - now).div_euclid(86_400))
}

#[cfg(test)]
mod session_tests {
    #[test]
    fn the_servers_certificate_expiry_is_read_as_openssl_prints_it() {
        // 2021-01-01 00:00:00 UTC is 1609459200.
        assert_eq!(
            super::days_left("Jan  1 00:00:00 2021 GMT", 1_609_459_200 - 86_400 * 10),
            Some(10)
        );
        assert_eq!(
            super::days_left("Jan 1 00:00:00 2021 GMT", 1_609_459_200 + 1),
            Some(-1)
        );
        assert_eq!(super::days_left("", 0), None);
    }
}

/// The server certificate's subject CN and expiry (Unix seconds), for
/// `check`: the driver keeps its TLS session to itself, so this opens one of
/// its own. It reads the server's greeting, asks for TLS (an SSLRequest
/// packet, as every MySQL client does first), and stops after the handshake,
/// before any login. The certificate is read, not judged: the connection
/// itself checks it as `mysql.ssl_mode` says.
pub fn server_certificate(
    host: &str,
    port: u16,
    timeout: std::time::Duration,
) -> Result<(String, i64), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut tcp =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(timeout)).ok();
    tcp.set_write_timeout(Some(timeout)).ok();
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).map_err(|e| e.to_string())?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut greeting = vec![0u8; len];
    tcp.read_exact(&mut greeting).map_err(|e| e.to_string())?;
    // CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION; max packet
    // 16 MB; utf8mb4; 23 bytes of filler.
    let mut req = vec![32, 0, 0, 1];
    req.extend_from_slice(&(0x0200u32 | 0x0800 | 0x8000).to_le_bytes());
    req.extend_from_slice(&(16u32 << 20).to_le_bytes());
    req.push(45);
    req.extend_from_slice(&[0; 23]);
    tcp.write_all(&req).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(Inspect))
        .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    let der = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    crate::tls::subject_and_expiry(der.as_ref()).ok_or_else(|| "an unreadable certificate".into())
}

/// Accepts any certificate: [`server_certificate`] only reads it.
#[derive(Debug)]
struct Inspect;

impl rustls::client::danger::ServerCertVerifier for Inspect {
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
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        crate::tls::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
