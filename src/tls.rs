//! TLS pieces both sides share (Kafka: `kafka::tls`, MySQL: `source::tls`):
//! the crypto provider, the CPU check it needs, and reading a certificate's
//! subject and expiry for `check`.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// graviola as rustls' crypto provider. It is also installed as the process
/// default, which the `mysql` driver's TLS code takes (it builds its own
/// rustls configuration); callers check the CPU first.
pub fn provider() -> Arc<CryptoProvider> {
    static DEFAULT: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let p = Arc::new(rustls_graviola::default_provider());
            // Only fails when one is installed already: then that one stays.
            let _ = CryptoProvider::install_default((*p).clone());
            p
        })
        .clone()
}

/// Where the system keeps its CA bundle: Debian and Ubuntu, RHEL and
/// Fedora, Alpine and macOS, SUSE.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The CAs to trust: the PEM file `ca` (named by the key `ca_key` in
/// errors), else the system's bundle, else Mozilla's roots compiled in (a
/// `FROM scratch` image has no bundle). Also says where they came from.
pub fn trusted_roots(
    ca: Option<&std::path::Path>,
    ca_key: &str,
) -> Result<(rustls::RootCertStore, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    let trust = match ca {
        Some(path) => {
            let n = add_pem_roots(&mut roots, path, ca_key)?;
            format!("{n} CA certificates from {}", path.display())
        }
        None => match SYSTEM_BUNDLES
            .iter()
            .map(std::path::Path::new)
            .find(|p| p.is_file())
        {
            Some(path) => {
                let n = add_pem_roots(&mut roots, path, "the system's CA bundle")?;
                format!(
                    "{n} CA certificates from the system's bundle {}",
                    path.display()
                )
            }
            None => {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                format!(
                    "the {} Mozilla roots compiled in (no system CA bundle found)",
                    roots.len()
                )
            }
        },
    };
    Ok((roots, trust))
}

/// A PEM file that cannot be read, named by its setting.
pub fn pem_error(key: &str, path: &std::path::Path, e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("{key} {}: {io}", path.display()),
        other => format!(
            "{key} {}: not a PEM file binlog2kafka can read ({other:?})",
            path.display()
        ),
    }
}

fn add_pem_roots(
    roots: &mut rustls::RootCertStore,
    path: &std::path::Path,
    what: &str,
) -> Result<usize, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{what} {}: no CA certificate in it (a PEM file with BEGIN CERTIFICATE)",
            path.display()
        ));
    }
    Ok(added)
}

/// What a side's TLS failure points at: its settings' names.
pub struct Keys {
    /// "broker" or "server".
    pub peer: &'static str,
    /// What to do about an expired certificate.
    pub renew: &'static str,
    /// How to trust the right CA.
    pub ca: &'static str,
    /// How to connect by the right name, or not check it.
    pub name: &'static str,
    /// The client certificate settings.
    pub client: &'static str,
    /// The question for a peer that does not speak TLS.
    pub listener: &'static str,
}

/// One sentence for a rustls failure, naming the setting that fixes it.
pub fn explain(tls: &rustls::Error, host: &str, k: &Keys) -> String {
    use rustls::AlertDescription as A;
    use rustls::CertificateError as C;
    let peer = k.peer;
    match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            C::ExpiredContext { not_after, .. } => format!(
                "the {peer}'s certificate expired on {}; {}",
                date(not_after.as_secs() as i64),
                k.renew
            ),
            C::Expired => format!("the {peer}'s certificate has expired; {}", k.renew),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the {peer}'s certificate is not valid yet ({c:?}); check the clocks")
            }
            C::UnknownIssuer => format!(
                "the {peer}'s certificate is not signed by a CA binlog2kafka trusts; {}",
                k.ca
            ),
            C::NotValidForNameContext { presented, .. } => format!(
                "the {peer}'s certificate is not valid for the name {host} (it names {}); {}",
                presented.join(", ").replace("DnsName(", "").replace("IpAddress(", "").replace(['"', ')'], ""),
                k.name
            ),
            C::NotValidForName => format!(
                "the {peer}'s certificate is not valid for the name {host}; {}",
                k.name
            ),
            other => format!("the {peer}'s certificate was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(
            A::CertificateRequired
            | A::HandshakeFailure
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::AccessDenied,
        ) => format!(
            "the {peer} refused the TLS session ({tls}): it may require a client certificate it trusts ({})",
            k.client
        ),
        rustls::Error::InvalidMessage(_) => {
            format!("the {peer} did not answer in TLS ({tls}): {}", k.listener)
        }
        other => format!("TLS failed: {other}"),
    }
}

/// `secs` (Unix time) as a UTC date and time.
pub fn date(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The sentence for a CPU graviola cannot run on.
pub fn cpu_refusal(missing: &[&str], otherwise: &str) -> String {
    format!(
        "this CPU lacks {}, which binlog2kafka's TLS (the pure-Rust graviola library) needs; run it on an x86-64 CPU from 2013 or later (Intel Haswell, AMD Zen), or {otherwise}",
        missing.join(", ")
    )
}

/// The CPU features graviola needs, by the names `/proc/cpuinfo` uses.
pub fn missing_cpu_features() -> Vec<&'static str> {
    let mut missing = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("aes") {
            missing.push("aes");
        }
        if !std::arch::is_x86_feature_detected!("pclmulqdq") {
            missing.push("pclmulqdq");
        }
        if !std::arch::is_x86_feature_detected!("avx2") {
            missing.push("avx2");
        }
        if !std::arch::is_x86_feature_detected!("bmi1") {
            missing.push("bmi1");
        }
        if !std::arch::is_x86_feature_detected!("bmi2") {
            missing.push("bmi2");
        }
        if !std::arch::is_x86_feature_detected!("adx") {
            missing.push("adx");
        }
    }
    missing
}

/// One DER element at the start of `b`: (tag, contents, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n].iter().fold(0usize, |acc, x| acc << 8 | *x as usize);
        b = &b[n..];
        len
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// An X.509 certificate's version (1, 2 or 3), from its DER.
pub fn x509_version(cert: &[u8]) -> Option<u8> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    match der(tbs)? {
        // [0] EXPLICIT Version: an INTEGER, 0-based.
        (0xa0, version, _) => {
            let (_, v, _) = der(version)?;
            Some(v.last()? + 1)
        }
        // Absent: the default, v1.
        _ => Some(1),
    }
}

/// Checks a client certificate and key before TLS uses them, so that what
/// is wrong with them is said of them, naming the file: an encrypted key
/// (a passphrase binlog2kafka cannot be given), or an X.509 v1 certificate
/// (no extensions; TLS peers refuse it, and the refusal would read as if the
/// peer's own certificate were bad). `cert_key` and `key_key` are the
/// settings' names.
pub fn check_client_files(
    cert_key: &str,
    cert: &std::path::Path,
    key_key: &str,
    key: &std::path::Path,
) -> Result<(), String> {
    let text = std::fs::read(key).map_err(|e| format!("{key_key} {}: {e}", key.display()))?;
    let text = String::from_utf8_lossy(&text);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(format!(
            "{key_key} {}: the private key is encrypted with a passphrase, which binlog2kafka cannot be given; write it out unencrypted (openssl pkey -in {} -out KEY.pem), readable only by the daemon's user, and set {key_key} to that file",
            key.display(),
            key.display()
        ));
    }
    use rustls::pki_types::pem::PemObject;
    let first = rustls::pki_types::CertificateDer::pem_file_iter(cert)
        .ok()
        .and_then(|mut it| it.next())
        .and_then(Result::ok);
    if let Some(der) = first {
        if let Some(v @ (1 | 2)) = x509_version(&der) {
            return Err(format!(
                "{cert_key} {}: an X.509 v{v} certificate, which TLS peers refuse as a client certificate (they need v3, with extensions); issue it again as v3 (openssl x509 -req ... -extfile with basicConstraints and keyUsage)",
                cert.display()
            ));
        }
    }
    Ok(())
}

/// An X.509 certificate's subject CN (or the whole subject's last value)
/// and notAfter, read from its DER without a parser crate: the fields sit at
/// fixed places in the TBSCertificate (RFC 5280, 4.1).
pub fn subject_and_expiry(cert: &[u8]) -> Option<(String, i64)> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r; // version
    }
    let (_, _, r) = der(rest)?; // serial
    let (_, _, r) = der(r)?; // signature algorithm
    let (_, _, r) = der(r)?; // issuer
    let (_, validity, r) = der(r)?;
    let (_, subject, _) = der(r)?;
    let (_, _, after) = der(validity)?;
    let (tag, t, _) = der(after)?;
    let t = std::str::from_utf8(t).ok()?;
    let (year, t) = match tag {
        0x17 => {
            let yy: i64 = t.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &t[2..])
        }
        0x18 => (t.get(..4)?.parse().ok()?, &t[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { t.get(i..i + 2)?.parse().ok() };
    let days = crate::clock::days_from_civil(year, field(0)?, field(2)?);
    let expiry = days * 86_400 + field(4)? * 3600 + field(6)? * 60 + field(8)?;
    // Name: SEQUENCE OF SET OF { OID, value }; CN is 2.5.4.3.
    let mut name = None;
    let mut rdns = subject;
    while let Some((_, set, r)) = der(rdns) {
        rdns = r;
        if let Some((_, atv, _)) = der(set) {
            if let Some((_, oid, r)) = der(atv) {
                if let Some((_, value, _)) = der(r) {
                    let v = String::from_utf8_lossy(value).into_owned();
                    if oid == [0x55, 0x04, 0x03] || name.is_none() {
                        name = Some(v);
                    }
                }
            }
        }
    }
    Some((name.unwrap_or_default(), expiry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    #[test]
    fn the_subject_and_expiry_are_read_from_a_certificate() {
        // Let's Encrypt's root, a public certificate (CN=ISRG Root X1,
        // notAfter 2035-06-04 11:04:38 UTC = 2064567878).
        let pem = include_bytes!("../tests/fixtures/tls/isrg-root-x1.pem");
        let der = CertificateDer::from_pem_slice(pem).unwrap();
        assert_eq!(
            subject_and_expiry(der.as_ref()),
            Some(("ISRG Root X1".to_string(), 2_064_567_878))
        );
        assert_eq!(subject_and_expiry(&der.as_ref()[..40]), None, "cut short");
    }

    #[test]
    fn dates_are_shown_in_utc() {
        assert_eq!(date(1_609_459_200), "2021-01-01 00:00:00 UTC");
        assert_eq!(date(2_064_567_878), "2035-06-04 11:04:38 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn this_machine_has_what_graviola_needs() {
        assert_eq!(missing_cpu_features(), Vec::<&str>::new());
        assert!(provider().cipher_suites.len() >= 3);
    }
}
