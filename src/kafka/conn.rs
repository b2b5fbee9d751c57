//! One TCP connection to one broker: framing, correlation ids and the API
//! versions that broker accepts.
//!
//! This is the only place in binlog2kafka that touches a Kafka socket. It is
//! blocking on purpose (the daemon is thread-based): a request is written,
//! then its answer is read, with socket timeouts so a silent broker turns
//! into an error instead of a hung thread.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::KafkaError;

/// The versions binlog2kafka will speak for each API it uses: at least what a
/// Kafka 2.1 client sends (Apache Kafka 4 refuses older ones, KIP-896), at
/// most what this code has been written and tested for. Fetch stops at v11,
/// the last without tagged fields: nothing here needs v12's, and Tansu with
/// SQLite storage sends a field v12 does not define ("Tag 0 is not valid for
/// version 12"), which no strict decoder reads.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 7, 12),
    (ApiKey::Fetch, 10, 11),
    (ApiKey::ListOffsets, 4, 9),
    (ApiKey::Metadata, 7, 12),
    (ApiKey::CreateTopics, 3, 7),
];

/// APIs used where the broker has them, and done without where it has not:
/// InitProducerId for the idempotent producer (v1 is what a Kafka 2.1
/// client sends; Tansu answers from v4).
///
/// FindCoordinator, AddPartitionsToTxn and EndTxn for the transactional id
/// that fences a paused predecessor (`kafka::txn`): from what a Kafka 2.1
/// client sends up to the last versions of the first transaction protocol
/// (AddPartitionsToTxn v4 and up are for brokers only, KAFKA-15757; EndTxn
/// v5 belongs to KIP-890's second protocol).
pub(crate) const OPTIONAL: &[(ApiKey, i16, i16)] = &[
    (ApiKey::InitProducerId, 1, 5),
    (ApiKey::FindCoordinator, 2, 4),
    (ApiKey::AddPartitionsToTxn, 1, 3),
    (ApiKey::EndTxn, 1, 4),
    // The fleet's group membership (`kafka::group`): from what a Kafka 2.1
    // consumer sends (Kafka 4 refuses JoinGroup below v2, KIP-896) to the
    // versions before KIP-848's new protocol.
    (ApiKey::JoinGroup, 3, 7),
    (ApiKey::SyncGroup, 2, 5),
    (ApiKey::Heartbeat, 2, 4),
    (ApiKey::LeaveGroup, 2, 4),
];

/// SASL (`kafka::sasl`): SaslHandshake v1 (v0 put the exchange outside
/// Kafka framing, and Kafka 4 removed it) and SaslAuthenticate v2 (which
/// carries the session lifetime of KIP-368).
pub(crate) const SASL: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 2, 2),
];

/// ApiVersions v2 is what a Kafka 2.1 client sends first; every broker from
/// 2.0 to 4.x answers it.
const API_VERSIONS_VERSION: i16 = 2;

/// Largest response we accept; bigger means a corrupt stream or a
/// misconfigured port (e.g. pointing at an HTTP server).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// The socket, plain or inside a TLS session.
enum Stream {
    Plain(TcpStream),
    Tls(Box<super::tls::TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

pub(crate) struct BrokerConn {
    stream: Stream,
    /// The TLS session, when over TLS.
    pub(crate) tls: Option<super::tls::Session>,
    addr: String,
    client_id: StrBytes,
    correlation: i32,
    versions: HashMap<i16, i16>,
    timeout: Duration,
    /// Every (api key, version) sent on this connection, for tests and logs.
    pub(crate) sent: Vec<(i16, i16)>,
    /// Requests written whose answers are not read yet.
    pending: usize,
    /// Unique per connection made: a pipelined request's answer is read
    /// only from the connection it was written to.
    pub(crate) serial: u64,
    /// SASL: how to authenticate again, and when (KIP-368's session
    /// lifetime, or a changed OAUTHBEARER token file).
    sasl: Option<super::sasl::SaslSettings>,
    reauth_at: Option<std::time::Instant>,
    token_seen: Option<std::time::SystemTime>,
    token_looked: std::time::Instant,
}

static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl BrokerConn {
    /// Connects, then negotiates versions with ApiVersions.
    pub(crate) fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
        tls: Option<&super::tls::Tls>,
        sasl: Option<&super::sasl::SaslSettings>,
    ) -> Result<Self, KafkaError> {
        let unreachable = |detail: String| KafkaError::Unreachable {
            broker: addr.to_string(),
            detail,
        };
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve: {e}")))?
            .collect();
        let mut last_err = String::from("no address");
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        let stream = stream.ok_or_else(|| unreachable(last_err))?;
        stream.set_nodelay(true).ok();
        stream.set_read_timeout(Some(timeout)).ok();
        stream.set_write_timeout(Some(timeout)).ok();
        let (stream, negotiated) = match tls {
            None => (Stream::Plain(stream), None),
            Some(t) => {
                let s =
                    super::tls::handshake(t, addr, stream).map_err(|detail| KafkaError::Tls {
                        broker: addr.to_string(),
                        detail,
                    })?;
                let what = super::tls::Session {
                    negotiated: super::tls::describe(&s),
                    peer: super::tls::peer_certificate(&s),
                };
                (Stream::Tls(Box::new(s)), Some(what))
            }
        };
        let mut conn = BrokerConn {
            stream,
            tls: negotiated,
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            correlation: 0,
            versions: HashMap::new(),
            timeout,
            sent: Vec::new(),
            pending: 0,
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            sasl: sasl.cloned(),
            reauth_at: None,
            token_seen: None,
            token_looked: std::time::Instant::now(),
        };
        conn.negotiate()?;
        if let Some(s) = conn.sasl.clone() {
            // A broker that does not take the mechanism may simply hang up
            // (Tansu does, for PLAIN): that is a refusal, not an outage.
            conn.authenticate().map_err(|e| match e {
                // A hang-up, not a silence (a silent broker is an outage).
                KafkaError::Io { broker, detail } if !detail.starts_with("no answer within") => KafkaError::Auth {
                    broker,
                    mechanism: s.mechanism.name(),
                    detail: format!("the broker closed the connection during the exchange ({detail}); it may not offer {} or may not accept these credentials: check kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.password", s.mechanism.name()),
                },
                other => other,
            })?;
        }
        Ok(conn)
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    fn negotiate(&mut self) -> Result<(), KafkaError> {
        let resp: ApiVersionsResponse = self.send_versioned(
            ApiKey::ApiVersions,
            API_VERSIONS_VERSION,
            &ApiVersionsRequest::default(),
        )?;
        if resp.error_code != 0 {
            return Err(KafkaError::TooOld {
                broker: self.addr.clone(),
                detail: format!(
                    "ApiVersions v{API_VERSIONS_VERSION} failed with error code {}",
                    resp.error_code
                ),
            });
        }
        let broker: HashMap<i16, (i16, i16)> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        for &(key, ours_min, ours_max) in SUPPORTED {
            let (b_min, b_max) = *broker
                .get(&(key as i16))
                .ok_or_else(|| KafkaError::TooOld {
                    broker: self.addr.clone(),
                    detail: format!("it does not offer the {key:?} API"),
                })?;
            let hi = ours_max.min(b_max);
            if hi < ours_min || hi < b_min {
                return Err(KafkaError::TooOld {
                    broker: self.addr.clone(),
                    detail: format!(
                        "{key:?} versions {b_min}..{b_max} on the broker, binlog2kafka needs {ours_min}..{ours_max} (Kafka 2.1 or newer)"
                    ),
                });
            }
            self.versions.insert(key as i16, hi);
        }
        if self.sasl.is_some() {
            for &(key, v, _) in SASL {
                match broker.get(&(key as i16)) {
                    Some(&(lo, hi)) if lo <= v && v <= hi => {
                        self.versions.insert(key as i16, v);
                    }
                    _ => {
                        return Err(KafkaError::TooOld {
                            broker: self.addr.clone(),
                            detail: format!("it does not offer {key:?} v{v}, which SASL needs (kafka.security.protocol)"),
                        })
                    }
                }
            }
        }
        for &(key, ours_min, ours_max) in OPTIONAL {
            if let Some(&(b_min, b_max)) = broker.get(&(key as i16)) {
                let hi = ours_max.min(b_max);
                if hi >= ours_min && hi >= b_min {
                    self.versions.insert(key as i16, hi);
                }
            }
        }
        Ok(())
    }

    /// Runs the SASL exchange (SaslHandshake, then SaslAuthenticate until
    /// the mechanism is done). A refusal is one error, never retried.
    fn authenticate(&mut self) -> Result<(), KafkaError> {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let Some(settings) = self.sasl.clone() else {
            return Ok(());
        };
        let auth = |detail: String| KafkaError::Auth {
            broker: String::new(),
            mechanism: settings.mechanism.name(),
            detail,
        };
        let name = settings.mechanism.name();
        let hs = self.send_versioned(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name)),
        )?;
        if hs.error_code != 0 {
            let offered: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth(format!(
                "the broker does not offer {name} (it offers: {}); set kafka.sasl.mechanism to one of those",
                if offered.is_empty() { "none".to_string() } else { offered.join(", ") }
            ))
            .at(&self.addr));
        }
        let token_seen = super::sasl::token_changed(&settings);
        let host = self
            .addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(h, _)| h)
            .to_string();
        let mut exchange = settings
            .exchange(&host)
            .map_err(|d| auth(d).at(&self.addr))?;
        let mut from_broker: Option<Bytes> = None;
        let mut lifetime = 0i64;
        while let Some(out) = exchange
            .step(from_broker.as_deref())
            .map_err(|d| auth(d).at(&self.addr))?
        {
            let resp = self.send_versioned(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out)),
            )?;
            if resp.error_code != 0 {
                let said = resp
                    .error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                return Err(auth(format!(
                    "{}{}; check kafka.sasl.username and kafka.sasl.password{}",
                    super::error_name(resp.error_code),
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(" ({said})")
                    },
                    if settings.mechanism == super::sasl::Mechanism::OAuthBearer {
                        " (for OAUTHBEARER: the token in kafka.sasl.oauthbearer.token_file)"
                    } else {
                        ""
                    }
                ))
                .at(&self.addr));
            }
            lifetime = resp.session_lifetime_ms;
            from_broker = Some(resp.auth_bytes);
        }
        // Authenticate again at 85% of the session the broker granted.
        self.reauth_at = (lifetime > 0)
            .then(|| std::time::Instant::now() + Duration::from_millis(lifetime as u64 * 85 / 100));
        self.token_seen = token_seen;
        Ok(())
    }

    /// Authenticates again when the session is near its end or the token
    /// file changed, between requests (none outstanding).
    fn reauthenticate_if_due(&mut self) -> Result<(), KafkaError> {
        let Some(s) = &self.sasl else { return Ok(()) };
        let now = std::time::Instant::now();
        // The token file is looked at once a second, not on every request.
        let look = s.mechanism == super::sasl::Mechanism::OAuthBearer
            && now.duration_since(self.token_looked) >= Duration::from_secs(1);
        if look {
            self.token_looked = now;
        }
        let due = self.reauth_at.is_some_and(|t| now >= t)
            || (look && super::sasl::token_changed(s) != self.token_seen);
        if due && self.pending == 0 {
            self.reauth_at = None;
            log::debug!(
                "{}: authenticating again (SASL session lifetime or a new token)",
                self.addr
            );
            self.authenticate()?;
        }
        Ok(())
    }

    /// Whether the broker offers `key` at a version binlog2kafka speaks.
    pub(crate) fn has(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// The version negotiated for `key`.
    pub(crate) fn version(&self, key: ApiKey) -> i16 {
        self.versions[&(key as i16)]
    }

    /// Sends `req` at the negotiated version and decodes its answer.
    pub(crate) fn send<R: Request>(
        &mut self,
        key: ApiKey,
        req: &R,
    ) -> Result<R::Response, KafkaError> {
        let version = self.version(key);
        self.send_versioned(key, version, req)
    }

    fn send_versioned<R: Request>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<R::Response, KafkaError> {
        if self.pending > 0 {
            return Err(KafkaError::Protocol {
                broker: self.addr.clone(),
                detail: format!(
                    "{key:?} asked while {} produce answers are outstanding on the connection",
                    self.pending
                ),
            });
        }
        let correlation = self.write_request(key, version, req)?;
        self.pending -= 1;
        self.read_response::<R>(version, correlation)
    }

    /// Writes `req` without waiting for its answer (pipelined produce
    /// requests; Kafka answers a connection's requests in order). Returns
    /// its correlation id, for [`BrokerConn::read_answer`].
    pub(crate) fn write_request<R: Request>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<i32, KafkaError> {
        // Every request but the exchange's own checks the session first.
        if !matches!(
            key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            self.reauthenticate_if_due()?;
        }
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(self.client_id.clone()));
        let codec = |detail: String| KafkaError::Protocol {
            broker: self.addr.clone(),
            detail,
        };
        // Sized once: a produce request carries whole record batches, and
        // a buffer grown by doubling copied them several times over.
        let size = header
            .compute_size(R::header_version(version))
            .and_then(|h| Ok(h + req.compute_size(version)?))
            .map_err(|e| codec(e.to_string()))?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.extend_from_slice(&[0, 0, 0, 0]);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| codec(e.to_string()))?;
        req.encode(&mut buf, version)
            .map_err(|e| codec(e.to_string()))?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.sent.push((key as i16, version));
        self.stream.write_all(&buf).map_err(|e| self.io_error(e))?;
        self.pending += 1;
        Ok(self.correlation)
    }

    /// Reads the answer to the oldest request written with
    /// [`BrokerConn::write_request`], which must be `correlation`.
    pub(crate) fn read_answer<R: Request>(
        &mut self,
        version: i16,
        correlation: i32,
    ) -> Result<R::Response, KafkaError> {
        self.pending = self.pending.saturating_sub(1);
        self.read_response::<R>(version, correlation)
    }

    fn read_response<R: Request>(
        &mut self,
        version: i16,
        correlation: i32,
    ) -> Result<R::Response, KafkaError> {
        let codec = |detail: String| KafkaError::Protocol {
            broker: self.addr.clone(),
            detail,
        };
        let mut len_buf = [0u8; 4];
        self.stream
            .read_exact(&mut len_buf)
            .map_err(|e| self.io_error(e))?;
        let len = i32::from_be_bytes(len_buf);
        if len < 4 || len as usize > MAX_RESPONSE {
            return Err(codec(format!("response length {len} is out of range")));
        }
        let mut body = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| self.io_error(e))?;
        let mut body = Bytes::from(body);
        let resp_header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| codec(e.to_string()))?;
        if resp_header.correlation_id != correlation {
            return Err(codec(format!(
                "correlation id {} does not match request {}",
                resp_header.correlation_id, correlation
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| codec(e.to_string()))
    }

    /// A socket timeout reads "Resource temporarily unavailable" on Linux:
    /// say what it means instead.
    fn io_error(&self, e: std::io::Error) -> KafkaError {
        // A TLS failure after the handshake (a broker that refuses the
        // client certificate says so only then, in TLS 1.3) is no outage.
        if let (
            Stream::Tls(_),
            Some(rustls::Error::AlertReceived(_) | rustls::Error::InvalidCertificate(_)),
        ) = (
            &self.stream,
            e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        ) {
            let host = self
                .addr
                .rsplit_once(':')
                .map_or(self.addr.as_str(), |(h, _)| h);
            return KafkaError::Tls {
                broker: self.addr.clone(),
                detail: super::tls::explain(&e, host),
            };
        }
        let detail = match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                "no answer within {} ms (kafka.timeout_ms)",
                self.timeout.as_millis()
            ),
            _ => e.to_string(),
        };
        KafkaError::Io {
            broker: self.addr.clone(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The SASL exchange against a fake broker on a local socket, which
    //! grants a session of 300 ms (KIP-368) and counts authentications.
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{
        MetadataResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
    };
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn answer<R: Encodable + HeaderVersion>(
        s: &mut TcpStream,
        correlation: i32,
        key: ApiKey,
        version: i16,
        body: &R,
    ) {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        ResponseHeader::default()
            .with_correlation_id(correlation)
            .encode(&mut buf, key.response_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let n = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&n.to_be_bytes());
        s.write_all(&buf).unwrap();
    }

    /// Serves one connection: ApiVersions, SaslHandshake and
    /// SaslAuthenticate (PLAIN, checking the message), Metadata.
    fn fake_broker(auths: Arc<AtomicUsize>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            loop {
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).is_err() {
                    return;
                }
                let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                s.read_exact(&mut body).unwrap();
                let key = i16::from_be_bytes([body[0], body[1]]);
                let version = i16::from_be_bytes([body[2], body[3]]);
                let correlation = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                let key = ApiKey::try_from(key).unwrap();
                match key {
                    ApiKey::ApiVersions => {
                        let keys = [
                            (0, 3, 11),
                            (1, 4, 12),
                            (2, 1, 9),
                            (3, 1, 12),
                            (19, 2, 7),
                            (17, 0, 1),
                            (36, 0, 2),
                        ]
                        .iter()
                        .map(|&(k, lo, hi)| {
                            ApiVersion::default()
                                .with_api_key(k)
                                .with_min_version(lo)
                                .with_max_version(hi)
                        })
                        .collect();
                        let r = ApiVersionsResponse::default().with_api_keys(keys);
                        answer(&mut s, correlation, key, version, &r);
                    }
                    ApiKey::SaslHandshake => {
                        let r = SaslHandshakeResponse::default()
                            .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
                        answer(&mut s, correlation, key, version, &r);
                    }
                    ApiKey::SaslAuthenticate => {
                        let ok = body.windows(12).any(|w| w == b"\0alice\0s3cr3");
                        auths.fetch_add(1, Ordering::SeqCst);
                        let r = SaslAuthenticateResponse::default()
                            .with_error_code(if ok { 0 } else { 58 })
                            .with_error_message(
                                (!ok).then(|| StrBytes::from_static_str("bad credentials")),
                            )
                            .with_session_lifetime_ms(300);
                        answer(&mut s, correlation, key, version, &r);
                    }
                    _ => answer(
                        &mut s,
                        correlation,
                        key,
                        version,
                        &MetadataResponse::default(),
                    ),
                }
            }
        });
        addr
    }

    fn sasl(password: &str) -> super::super::sasl::SaslSettings {
        super::super::sasl::SaslSettings {
            mechanism: super::super::sasl::Mechanism::Plain,
            username: "alice".into(),
            password: password.into(),
            token_file: None,
        }
    }

    #[test]
    fn a_connection_authenticates_again_before_its_sasl_session_ends() {
        let auths = Arc::new(AtomicUsize::new(0));
        let addr = fake_broker(auths.clone());
        let mut c = BrokerConn::connect(
            &addr,
            "t",
            Duration::from_secs(5),
            None,
            Some(&sasl("s3cr3t")),
        )
        .expect("authenticated");
        assert_eq!(auths.load(Ordering::SeqCst), 1);
        let req = kafka_protocol::messages::MetadataRequest::default();
        c.send(ApiKey::Metadata, &req).unwrap();
        assert_eq!(
            auths.load(Ordering::SeqCst),
            1,
            "within the session: no new exchange"
        );
        std::thread::sleep(Duration::from_millis(300));
        c.send(ApiKey::Metadata, &req).unwrap();
        assert_eq!(
            auths.load(Ordering::SeqCst),
            2,
            "past 85% of the 300 ms session: authenticated again, on the same connection"
        );
        assert!(
            c.sent.contains(&(17, 1)) && c.sent.contains(&(36, 2)),
            "SaslHandshake v1, SaslAuthenticate v2: {:?}",
            c.sent
        );
    }

    #[test]
    fn refused_credentials_are_one_error_that_is_not_retried() {
        let addr = fake_broker(Arc::new(AtomicUsize::new(0)));
        let e = BrokerConn::connect(
            &addr,
            "t",
            Duration::from_secs(5),
            None,
            Some(&sasl("wrong")),
        )
        .err()
        .expect("refused");
        assert!(!e.is_retriable());
        let shown = e.to_string();
        assert!(
            shown.contains("SASL_AUTHENTICATION_FAILED")
                && shown.contains("bad credentials")
                && shown.contains("kafka.sasl.password"),
            "{shown}"
        );
        assert!(
            !shown.contains("wrong"),
            "the password is never shown: {shown}"
        );
    }
}
