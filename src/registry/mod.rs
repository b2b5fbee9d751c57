//! A Confluent Schema Registry client (issue 24, being built): registers
//! the schemas the Avro encoding writes with, and remembers their ids.
//!
//! Blocking, one request per connection, over HTTP or HTTPS (rustls with
//! the daemon's pure-Rust provider). Several URLs (a registry cluster) are tried
//! in turn; the one that answered is asked first next time. Ids are cached
//! per (subject, schema text), so a schema is registered once per process.
//! The basic-auth secret is never part of an error or a log line.

mod http;

use std::collections::HashMap;
use std::time::Duration;

/// How a record's subject is named (`registry.subject_name_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStrategy {
    /// `<topic>-key`, `<topic>-value` (Confluent's default).
    Topic,
    /// The record's full name.
    Record,
    /// `<topic>-<record full name>`.
    TopicRecord,
}

impl SubjectStrategy {
    pub fn subject(self, topic: &str, record: &str, key: bool) -> String {
        match self {
            SubjectStrategy::Topic => format!("{topic}-{}", if key { "key" } else { "value" }),
            SubjectStrategy::Record => record.to_string(),
            SubjectStrategy::TopicRecord => format!("{topic}-{record}"),
        }
    }
}

/// One registry address: `http[s]://host:port[/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// A path prefix, without its trailing `/`.
    pub base: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let (https, rest) = match (s.strip_prefix("http://"), s.strip_prefix("https://")) {
            (Some(r), _) => (false, r),
            (_, Some(r)) => (true, r),
            _ => {
                return Err(format!(
                    "{s}: a registry URL starts with http:// or https://"
                ))
            }
        };
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| format!("{s}: {p} is not a port"))?),
            None => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("{s}: no host"));
        }
        Ok(Url {
            https,
            host: host.to_string(),
            port,
            base: base.to_string(),
        })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.base)
    }
}

/// What the client is told.
#[derive(Clone)]
pub struct Settings {
    pub urls: Vec<Url>,
    /// `user:password` for basic auth.
    pub basic_auth: Option<String>,
    pub timeout: Duration,
    /// For `https://` URLs.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("urls", &self.urls)
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "(set)"))
            .field("timeout", &self.timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A registry failure, with its cause.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryError {
    /// No URL answered: the pipeline waits and tries again.
    Unreachable { tried: String, cause: String },
    /// 401/403: the credentials are wrong.
    Unauthorized { url: String, status: u16 },
    /// The registry refused the schema (409: incompatible; 422: invalid).
    Refused {
        subject: String,
        status: u16,
        code: i64,
        message: String,
    },
    /// An answer that is not the API's.
    Protocol { url: String, detail: String },
}

impl RegistryError {
    /// Whether waiting may help (an outage), not a refusal.
    pub fn is_retriable(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
            || matches!(self, RegistryError::Refused { status, .. } if *status >= 500)
    }
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::Unreachable { tried, cause } => write!(
                f,
                "the schema registry cannot be reached ({tried}: {cause}); check registry.url and that the registry runs"
            ),
            RegistryError::Unauthorized { url, status } => write!(
                f,
                "the schema registry at {url} refused the credentials ({status}); check registry.basic_auth_user_info_file"
            ),
            RegistryError::Refused {
                subject,
                status,
                code,
                message,
            } => write!(
                f,
                "the schema registry refused the schema of subject {subject} ({status}, error {code}): {message}"
            ),
            RegistryError::Protocol { url, detail } => {
                write!(f, "unexpected answer from the schema registry at {url}: {detail}")
            }
        }
    }
}

impl std::error::Error for RegistryError {}

/// The client, with its id cache.
pub struct Registry {
    s: Settings,
    /// The URL that answered last.
    first: usize,
    ids: HashMap<(String, String), u32>,
}

impl Registry {
    pub fn new(s: Settings) -> Registry {
        Registry {
            s,
            first: 0,
            ids: HashMap::new(),
        }
    }

    /// One API call, tried on each URL in turn (the last one that answered
    /// first). `Ok` holds the status and the JSON body.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, serde_json::Value), RegistryError> {
        let mut headers = Vec::new();
        if let Some(a) = &self.s.basic_auth {
            headers.push((
                "Authorization",
                format!("Basic {}", crate::kafka::sasl::base64(a.as_bytes())),
            ));
        }
        let mut tried = Vec::new();
        let n = self.s.urls.len();
        for k in 0..n {
            let i = (self.first + k) % n;
            let u = self.s.urls[i].clone();
            let tls = if u.https { self.s.tls.as_ref() } else { None };
            if u.https && tls.is_none() {
                tried.push(format!("{u}: no TLS settings for an https:// registry"));
                continue;
            }
            match http::request(
                &u.host,
                u.port,
                tls,
                method,
                &format!("{}{path}", u.base),
                &headers,
                body,
                self.s.timeout,
            ) {
                Ok(r) if r.status >= 500 => tried.push(format!("{u} answered {}", r.status)),
                Ok(r) => {
                    self.first = i;
                    if r.status == 401 || r.status == 403 {
                        return Err(RegistryError::Unauthorized {
                            url: u.to_string(),
                            status: r.status,
                        });
                    }
                    let v = serde_json::from_str(&r.body).map_err(|e| RegistryError::Protocol {
                        url: u.to_string(),
                        detail: format!(
                            "{} {e}: {}",
                            r.status,
                            r.body.chars().take(200).collect::<String>()
                        ),
                    })?;
                    return Ok((r.status, v));
                }
                Err(e) => tried.push(format!("{u}: {e}")),
            }
        }
        Err(RegistryError::Unreachable {
            tried: tried.join("; "),
            cause: "no registry answered".into(),
        })
    }

    /// The id of `schema` under `subject`, registering it (a new version)
    /// when the subject does not hold it yet.
    pub fn register(&mut self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.get(&key) {
            return Ok(*id);
        }
        let body = serde_json::json!({ "schema": schema }).to_string();
        let (status, v) = self.call(
            "POST",
            &format!("/subjects/{}/versions", crate::url::path_part(subject)),
            Some(&body),
        )?;
        if status != 200 {
            return Err(RegistryError::Refused {
                subject: subject.to_string(),
                status,
                code: v["error_code"].as_i64().unwrap_or(status as i64),
                message: v["message"].as_str().unwrap_or("").to_string(),
            });
        }
        let id = v["id"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| RegistryError::Protocol {
                url: self.s.urls[self.first].to_string(),
                detail: format!("a registration answered without an id: {v}"),
            })?;
        self.ids.insert(key, id);
        Ok(id)
    }

    /// The compatibility level that applies to `subject` (its own, else
    /// the registry's).
    pub fn compatibility(&mut self, subject: &str) -> Result<String, RegistryError> {
        let (status, v) = self.call(
            "GET",
            &format!("/config/{}", crate::url::path_part(subject)),
            None,
        )?;
        let level = |v: &serde_json::Value| {
            v["compatibilityLevel"]
                .as_str()
                .or(v["compatibility"].as_str())
                .map(str::to_string)
        };
        if status == 200 {
            if let Some(l) = level(&v) {
                return Ok(l);
            }
        }
        let (_, v) = self.call("GET", "/config", None)?;
        level(&v).ok_or_else(|| RegistryError::Protocol {
            url: self.s.urls[self.first].to_string(),
            detail: format!("no compatibility level in {v}"),
        })
    }

    /// The registry's own compatibility level (`GET /config`).
    pub fn global_compatibility(&mut self) -> Result<String, RegistryError> {
        let (_, v) = self.call("GET", "/config", None)?;
        v["compatibilityLevel"]
            .as_str()
            .or(v["compatibility"].as_str())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Protocol {
                url: self.s.urls[self.first].to_string(),
                detail: format!("no compatibility level in {v}"),
            })
    }

    /// The versions `subject` holds (none when it does not exist).
    pub fn versions(&mut self, subject: &str) -> Result<Vec<i64>, RegistryError> {
        let (status, v) = self.call(
            "GET",
            &format!("/subjects/{}/versions", crate::url::path_part(subject)),
            None,
        )?;
        match status {
            200 => Ok(v
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
                .unwrap_or_default()),
            404 => Ok(Vec::new()),
            s => Err(RegistryError::Protocol {
                url: self.s.urls[self.first].to_string(),
                detail: format!("{s} listing the versions of {subject}: {v}"),
            }),
        }
    }
}

/// A fake registry for unit tests: answers each connection with the next
/// canned response and hands back the requests it got.
#[cfg(test)]
pub(crate) fn fake(answers: Vec<&'static str>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let mut got = Vec::new();
        for a in answers {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = vec![0u8; 65536];
            let mut req = Vec::new();
            loop {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if req.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            got.push(String::from_utf8_lossy(&req).to_string());
            s.write_all(a.as_bytes()).unwrap();
        }
        got
    });
    (port, t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn client(ports: &[u16]) -> Registry {
        Registry::new(Settings {
            urls: ports
                .iter()
                .map(|p| Url::parse(&format!("http://127.0.0.1:{p}/reg/")).unwrap())
                .collect(),
            basic_auth: Some("alice:s3cret".into()),
            timeout: Duration::from_secs(5),
            tls: None,
        })
    }

    #[test]
    fn a_schema_is_registered_once_and_its_id_remembered() {
        let (port, t) = fake(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"id\":42}",
        ]);
        let mut r = client(&[port]);
        assert_eq!(r.register("orders-value", "\"string\"").unwrap(), 42);
        assert_eq!(r.register("orders-value", "\"string\"").unwrap(), 42);
        let got = t.join().unwrap();
        assert_eq!(got.len(), 1, "asked once");
        assert!(
            got[0].starts_with("POST /reg/subjects/orders-value/versions HTTP/1.1\r\n"),
            "{}",
            got[0]
        );
        assert!(
            got[0].contains("Authorization: Basic YWxpY2U6czNjcmV0\r\n"),
            "{}",
            got[0]
        );
        assert!(
            got[0].ends_with("{\"schema\":\"\\\"string\\\"\"}"),
            "{}",
            got[0]
        );
    }

    #[test]
    fn an_incompatible_schema_is_refused_with_the_registrys_reason() {
        let (port, t) = fake(vec![
            "HTTP/1.1 409 Conflict\r\nContent-Length: 61\r\n\r\n{\"error_code\":409,\"message\":\"Schema being registered is bad\"}",
        ]);
        let mut r = client(&[port]);
        let e = r.register("shop.orders-value", "\"int\"").unwrap_err();
        t.join().unwrap();
        assert!(!e.is_retriable());
        assert_eq!(
            e.to_string(),
            "the schema registry refused the schema of subject shop.orders-value (409, error 409): Schema being registered is bad"
        );
    }

    #[test]
    fn a_registry_that_is_down_is_skipped_and_an_outage_is_retriable() {
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (port, t) = fake(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":7}",
            "HTTP/1.1 200 OK\r\nContent-Length: 33\r\n\r\n{\"compatibilityLevel\":\"BACKWARD\"}",
        ]);
        let mut r = client(&[dead, port]);
        assert_eq!(r.register("t-key", "\"long\"").unwrap(), 7);
        assert_eq!(r.compatibility("t-key").unwrap(), "BACKWARD");
        t.join().unwrap();
        let mut gone = client(&[dead]);
        let e = gone.register("t-key", "\"long\"").unwrap_err();
        assert!(e.is_retriable(), "{e}");
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn wrong_credentials_are_one_clear_line_without_the_secret() {
        let (port, t) = fake(vec![
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        ]);
        let mut r = client(&[port]);
        let e = r.versions("t-value").unwrap_err();
        t.join().unwrap();
        assert!(
            matches!(e, RegistryError::Unauthorized { status: 401, .. }),
            "{e:?}"
        );
        assert!(!e.to_string().contains("s3cret") && !format!("{:?}", r.s).contains("s3cret"));
    }

    #[test]
    fn subjects_follow_the_three_strategies() {
        let s =
            |k| SubjectStrategy::subject(k, "cdc.shop.orders", "srv.shop.orders.Envelope", false);
        assert_eq!(s(SubjectStrategy::Topic), "cdc.shop.orders-value");
        assert_eq!(s(SubjectStrategy::Record), "srv.shop.orders.Envelope");
        assert_eq!(
            s(SubjectStrategy::TopicRecord),
            "cdc.shop.orders-srv.shop.orders.Envelope"
        );
        assert_eq!(SubjectStrategy::Topic.subject("t", "r", true), "t-key");
        assert_eq!(
            Url::parse("https://r").unwrap().to_string(),
            "https://r:443"
        );
        assert!(Url::parse("ftp://r").is_err());
        assert_eq!(
            Url::parse("http://r:8081/x/").unwrap().to_string(),
            "http://r:8081/x"
        );
    }
}
