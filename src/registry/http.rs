//! The smallest HTTP/1.1 client the registry needs: one request per
//! connection (`Connection: close`), a JSON body, the response's status
//! and body (Content-Length, chunked, or to the end).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// One response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Sends `method path` to `host:port` (over TLS with `tls`) with
/// `headers` and `body`.
#[allow(clippy::too_many_arguments)]
pub fn request(
    host: &str,
    port: u16,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Response> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nAccept: application/vnd.schemaregistry.v1+json, application/json\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    let mut raw = Vec::new();
    match tls {
        None => {
            let mut s = s;
            s.write_all(req.as_bytes())?;
            s.read_to_end(&mut raw)?;
        }
        Some(config) => {
            let mut s = handshake(config, host, s)?;
            s.write_all(req.as_bytes())?;
            // A server that closes without close_notify after the
            // response (common with Connection: close) ends it all the same.
            match s.read_to_end(&mut raw) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                Err(e) => return Err(e),
            }
        }
    }
    parse(&raw)
}

/// The settings a registry TLS failure points at.
const KEYS: crate::tls::Keys = crate::tls::Keys {
    peer: "schema registry",
    renew: "renew it on the registry",
    ca: "set registry.ssl.ca.location to the PEM file of the CA that signed it",
    name: "connect by a name the certificate holds (registry.url)",
    client: "(no client certificate is sent to the registry)",
    listener: "is this port the registry's TLS listener (https:// in registry.url)?",
};

fn handshake(
    config: &std::sync::Arc<rustls::ClientConfig>,
    host: &str,
    mut tcp: TcpStream,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| std::io::Error::other(format!("{host} is not a host name TLS can check")))?;
    let mut conn = rustls::ClientConnection::new(config.clone(), name)
        .map_err(|e| std::io::Error::other(format!("TLS set-up failed: {e}")))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            let why = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(t) => crate::tls::explain(t, host, &KEYS),
                None => format!("TLS handshake failed ({e}): {}", KEYS.listener),
            };
            return Err(std::io::Error::other(why));
        }
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// A whole response as read.
pub fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("an HTTP response without the end of its headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("an HTTP response without a status"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = v.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let eol = rest[at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("a cut-off chunk"))?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[at..at + eol])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )
            .map_err(|_| bad("a bad chunk size"))?;
            at += eol + 2;
            if size == 0 {
                break;
            }
            out.extend_from_slice(
                rest.get(at..at + size)
                    .ok_or_else(|| bad("a cut-off chunk"))?,
            );
            at += size + 2;
        }
        out
    } else {
        match length {
            Some(n) => rest.get(..n).ok_or_else(|| bad("a cut-off body"))?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_come_by_length_chunks_or_to_the_end() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":1}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{\"id\":1}"));
        let r = parse(b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_str()), (409, "{\"a\":1}"));
        let r = parse(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "nope"));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    }
}
