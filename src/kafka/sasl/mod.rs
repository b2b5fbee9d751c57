//! SASL to Kafka (`kafka.security.protocol=sasl_plaintext|sasl_ssl`):
//! SaslHandshake v1 names the mechanism, then SaslAuthenticate v2 carries
//! each step of it (KIP-152), on every connection right after ApiVersions.
//!
//! Mechanisms, written by hand on the crates already in the tree (sha2):
//! - PLAIN (RFC 4616): the user and password in one message; use it only
//!   over TLS.
//! - SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the password
//!   never crosses the wire; the broker proves it knows it too.
//! - OAUTHBEARER (RFC 7628, KIP-255): a token read from a file, read again
//!   when it changes, so a sidecar can refresh it.
//!
//! - AWS_MSK_IAM (Amazon MSK): a SigV4-signed connect request, see
//!   [`aws`].
//!
//! A broker that sets a session lifetime (KIP-368) gets the exchange again
//! on the same connection before it runs out (see `conn.rs`).

use std::path::PathBuf;
use std::time::SystemTime;

use sha2::{Digest, Sha256, Sha512};

pub mod aws;

/// `kafka.sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
    AwsMskIam,
}

impl Mechanism {
    /// The name SaslHandshake carries.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::AwsMskIam => "AWS_MSK_IAM",
        }
    }
}

/// The `kafka.sasl.*` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslSettings {
    pub mechanism: Mechanism,
    pub username: String,
    /// Never printed (see the `Debug` impl).
    pub password: String,
    /// `kafka.sasl.oauthbearer.token_file`.
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// One mechanism's exchange: what to send next, given the broker's last
/// answer (`None` at the start). `Ok(None)`: done.
pub(crate) trait Exchange {
    fn step(&mut self, from_broker: Option<&[u8]>) -> Result<Option<Vec<u8>>, String>;
}

impl SaslSettings {
    /// A fresh exchange for one authentication with the broker at `host`.
    pub(crate) fn exchange(&self, host: &str) -> Result<Box<dyn Exchange>, String> {
        Ok(match self.mechanism {
            Mechanism::AwsMskIam => {
                let region = aws::region(host)?;
                let creds = aws::credentials("169.254.169.254:80")?;
                let now = crate::clock::now_secs() as i64;
                Box::new(Plain {
                    message: Some(aws::payload(host, &region, &creds, &aws::amz_date(now))),
                })
            }
            Mechanism::Plain => Box::new(Plain {
                message: Some(plain_message(&self.username, &self.password)),
            }),
            Mechanism::ScramSha256 => Box::new(Scram::<Sha256>::new(
                &self.username,
                &self.password,
                &nonce()?,
            )),
            Mechanism::ScramSha512 => Box::new(Scram::<Sha512>::new(
                &self.username,
                &self.password,
                &nonce()?,
            )),
            Mechanism::OAuthBearer => {
                let path = self.token_file.as_ref().ok_or(
                    "kafka.sasl.mechanism=OAUTHBEARER needs kafka.sasl.oauthbearer.token_file",
                )?;
                Box::new(Plain {
                    message: Some(oauthbearer_message(&read_token(path)?)),
                })
            }
        })
    }
}

/// A single-message mechanism (PLAIN, OAUTHBEARER).
struct Plain {
    message: Option<Vec<u8>>,
}

impl Exchange for Plain {
    fn step(&mut self, _from_broker: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
        Ok(self.message.take())
    }
}

/// RFC 4616: `authzid NUL authcid NUL passwd`, with no authzid.
pub(crate) fn plain_message(user: &str, password: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(user.len() + password.len() + 2);
    m.push(0);
    m.extend_from_slice(user.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    m
}

/// RFC 7628's client initial response as Kafka takes it: no authzid, the
/// token as the `auth` key's Bearer value.
pub(crate) fn oauthbearer_message(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// The token file's content, read at every authentication (a sidecar may
/// have replaced it).
fn read_token(path: &std::path::Path) -> Result<String, String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("kafka.sasl.oauthbearer.token_file {}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!(
            "kafka.sasl.oauthbearer.token_file {} is empty",
            path.display()
        ));
    }
    Ok(t.to_string())
}

/// When the token file last changed: a change re-authenticates.
pub(crate) fn token_changed(s: &SaslSettings) -> Option<SystemTime> {
    std::fs::metadata(s.token_file.as_ref()?)
        .ok()?
        .modified()
        .ok()
}

/// 18 random bytes as base64 (no `,` can appear in it).
fn nonce() -> Result<String, String> {
    use std::io::Read;
    let mut b = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("cannot read /dev/urandom for a SCRAM nonce: {e}"))?;
    Ok(base64(&b))
}

/// A SCRAM client (RFC 5802) over hash `D`: client-first, client-final,
/// then the broker's signature checked.
pub(crate) struct Scram<D> {
    password: String,
    client_first_bare: String,
    nonce: String,
    state: ScramState,
    _hash: std::marker::PhantomData<D>,
}

enum ScramState {
    Start,
    /// The server signature the broker must send.
    AwaitingFinal(Vec<u8>),
    Done,
}

impl<D: Digest + Clone> Scram<D> {
    pub(crate) fn new(user: &str, password: &str, nonce: &str) -> Scram<D> {
        // saslname: `=` and `,` escaped (RFC 5802, 5.1).
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Scram {
            password: password.to_string(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_string(),
            state: ScramState::Start,
            _hash: std::marker::PhantomData,
        }
    }

    /// The client-final message for the broker's server-first message, and
    /// the server signature to expect.
    fn client_final(&self, server_first: &str) -> Result<(String, Vec<u8>), String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(unbase64(v).ok_or("the broker's SCRAM salt is not base64")?),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("e", v)) => {
                    return Err(format!(
                        "the broker refused SCRAM: {v}; check kafka.sasl.username and kafka.sasl.password"
                    ))
                }
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!(
                "the broker's SCRAM answer is malformed: {server_first:?}"
            ));
        };
        if !nonce.starts_with(&self.nonce) || iterations == 0 {
            return Err("the broker's SCRAM answer does not continue this exchange (nonce or iteration count)".into());
        }
        let salted = pbkdf2::<D>(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac::<D>(&salted, b"Client Key");
        let stored_key = D::digest(&client_key).to_vec();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::<D>(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::<D>(&salted, b"Server Key");
        let server_signature = hmac::<D>(&server_key, auth_message.as_bytes());
        Ok((
            format!("{without_proof},p={}", base64(&proof)),
            server_signature,
        ))
    }
}

impl<D: Digest + Clone> Exchange for Scram<D> {
    fn step(&mut self, from_broker: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
        match std::mem::replace(&mut self.state, ScramState::Done) {
            ScramState::Start => {
                self.state = ScramState::Start;
                let Some(server_first) = from_broker else {
                    return Ok(Some(format!("n,,{}", self.client_first_bare).into_bytes()));
                };
                let server_first = std::str::from_utf8(server_first)
                    .map_err(|_| "the broker's SCRAM answer is not UTF-8".to_string())?;
                let (client_final, expect) = self.client_final(server_first)?;
                self.state = ScramState::AwaitingFinal(expect);
                Ok(Some(client_final.into_bytes()))
            }
            ScramState::AwaitingFinal(expect) => {
                let server_final =
                    std::str::from_utf8(from_broker.unwrap_or_default()).unwrap_or("");
                if let Some(e) = server_final.strip_prefix("e=") {
                    return Err(format!(
                        "the broker refused SCRAM: {e}; check kafka.sasl.username and kafka.sasl.password"
                    ));
                }
                match server_final.strip_prefix("v=").and_then(unbase64) {
                    Some(v) if v == expect => Ok(None),
                    _ => Err("the broker's SCRAM signature is wrong: it does not know this user's credentials (a broker posing as the real one?)".into()),
                }
            }
            ScramState::Done => Ok(None),
        }
    }
}

/// HMAC (RFC 2104) over hash `D`.
pub(crate) fn hmac<D: Digest + Clone>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // SHA-256's block is 64 bytes, SHA-512's 128.
    let block = if <D as Digest>::output_size() > 32 {
        128
    } else {
        64
    };
    let mut k = if key.len() > block {
        D::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(block, 0);
    let mut inner = D::new();
    inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = D::new();
    outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>());
    outer.update(inner);
    outer.finalize().to_vec()
}

/// SCRAM's Hi(): PBKDF2 with HMAC-`D`, one block of output.
fn pbkdf2<D: Digest + Clone>(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac::<D>(password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac::<D>(password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Standard base64, padded; `None` if it is not.
pub(crate) fn unbase64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: user "user", password "pencil".
    #[test]
    fn scram_sha_256_reproduces_the_rfc_7677_exchange() {
        let mut s = Scram::<Sha256>::new("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        let first = s.step(None).unwrap().unwrap();
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = s.step(Some(server_first)).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            s.step(Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
                .unwrap(),
            None,
            "the RFC's server signature verifies"
        );
    }

    #[test]
    fn a_wrong_server_signature_or_a_foreign_nonce_is_refused() {
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let mut s = Scram::<Sha256>::new("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        s.step(None).unwrap();
        s.step(Some(server_first)).unwrap();
        let e = s
            .step(Some(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
            .unwrap_err();
        assert!(e.contains("signature is wrong"), "{e}");
        let mut s = Scram::<Sha256>::new("user", "pencil", "another-nonce");
        s.step(None).unwrap();
        assert!(s.step(Some(server_first)).is_err());
    }

    /// RFC 4231 test case 2 (HMAC-SHA-256 and -512, key "Jefe").
    #[test]
    fn hmac_matches_rfc_4231() {
        let hex = |v: Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac::<Sha256>(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(hmac::<Sha512>(b"Jefe", b"what do ya want for nothing?")),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    /// RFC 4616's example, and RFC 7628's client response without authzid.
    #[test]
    fn plain_and_oauthbearer_messages_are_laid_out_as_the_rfcs_say() {
        assert_eq!(
            plain_message("tim", "tanstaaftanstaaf"),
            b"\0tim\0tanstaaftanstaaf"
        );
        assert_eq!(
            oauthbearer_message("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
            b"n,,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
    }

    #[test]
    fn base64_round_trips_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
            assert_eq!(unbase64(coded).unwrap(), plain.as_bytes());
        }
        assert_eq!(unbase64("Zm9v!"), None);
    }

    #[test]
    fn the_password_is_never_in_the_debug_output() {
        let s = SaslSettings {
            mechanism: Mechanism::ScramSha512,
            username: "alice".into(),
            password: "hunter2-secret".into(),
            token_file: None,
        };
        let shown = format!("{s:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
