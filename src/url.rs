//! Percent-encoding of one URL path segment, for the HTTP the daemon
//! speaks both ways: the schema registry's subjects (client) and the fleet
//! page's pipeline links (server).

/// `s` as one path segment: its bytes outside RFC 3986's unreserved set
/// (`A-Z a-z 0-9 - . _ ~`) percent-encoded, so a `/` or a space in a name
/// never splits or breaks the path.
pub fn path_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path segment decoded: each `%XX` becomes its byte; a `%` not followed
/// by two hex digits stays as it is; bytes that are not UTF-8 become U+FFFD.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || std::str::from_utf8(b.get(i + 1..i + 3)?).ok();
        match (b[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_survives_its_url() {
        for name in ["orders", "shop eu/1", "ä%x", "a~b.c-d_e"] {
            let part = path_part(name);
            assert!(
                part.bytes().all(|b| b.is_ascii_graphic() && b != b'/'),
                "{part}"
            );
            assert_eq!(decode(&part), name);
        }
    }
}
