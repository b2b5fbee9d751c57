//! A minimal JSON writer that appends straight into the record buffer:
//! encoding is the hot path, so no intermediate tree is built.

/// Appends `bytes`. Values and names are mostly a few bytes long, and a
/// call to the C library's memcpy for each (`extend_from_slice`) cost the
/// static musl build, whose memcpy starts slowly, over a third of its time;
/// a byte at a time costs a capacity check per byte. Up to 32 bytes are
/// written as a few overlapping unaligned loads and stores into room
/// reserved once.
#[inline(always)]
pub fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if n > 32 {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(n);
    let len = out.len();
    // SAFETY: `reserve` made room for `n` more bytes after `len`, so every
    // write below lands in the Vec's allocation: each piece starts at an
    // offset of 0 or more and ends at `n` or less (for 1..=3, bytes 0,
    // n/2 and n-1; for 4..=7, two words of 4 at 0 and n-4; for 8..=16, two
    // of 8 at 0 and n-8; for 17..=32, four of 8 at 0, 8, n-16 and n-8), the
    // pieces overlap and together cover `0..n` whole, and every read from
    // `bytes` stays within its `n` bytes the same way. `bytes` cannot be
    // part of `out`'s buffer while `out` is borrowed mutably. The `n` bytes
    // are initialised before `set_len` makes them part of the Vec.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        let src = bytes.as_ptr();
        match n {
            0 => {}
            1..=3 => {
                *dst = *src;
                *dst.add(n / 2) = *src.add(n / 2);
                *dst.add(n - 1) = *src.add(n - 1);
            }
            4..=7 => {
                let head = std::ptr::read_unaligned(src as *const u32);
                let tail = std::ptr::read_unaligned(src.add(n - 4) as *const u32);
                std::ptr::write_unaligned(dst as *mut u32, head);
                std::ptr::write_unaligned(dst.add(n - 4) as *mut u32, tail);
            }
            8..=16 => {
                let head = std::ptr::read_unaligned(src as *const u64);
                let tail = std::ptr::read_unaligned(src.add(n - 8) as *const u64);
                std::ptr::write_unaligned(dst as *mut u64, head);
                std::ptr::write_unaligned(dst.add(n - 8) as *mut u64, tail);
            }
            _ => {
                let a = std::ptr::read_unaligned(src as *const u64);
                let b = std::ptr::read_unaligned(src.add(8) as *const u64);
                let c = std::ptr::read_unaligned(src.add(n - 16) as *const u64);
                let d = std::ptr::read_unaligned(src.add(n - 8) as *const u64);
                std::ptr::write_unaligned(dst as *mut u64, a);
                std::ptr::write_unaligned(dst.add(8) as *mut u64, b);
                std::ptr::write_unaligned(dst.add(n - 16) as *mut u64, c);
                std::ptr::write_unaligned(dst.add(n - 8) as *mut u64, d);
            }
        }
        out.set_len(len + n);
    }
}

/// Bytes a JSON string cannot hold as they are: controls, `"` and `\\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Whether any of the 8 bytes of `w` needs escaping: below 0x20, `"` or
/// `\\` (the classic has-zero-byte test on `w`, `w ^ "` and `w ^ \\`;
/// bytes from 0x80 up are never flagged).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = w ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGH != 0
}

/// Whether any byte of `b` needs escaping, eight bytes at a time: whole
/// words, then the last eight (overlapping the words before); a string of
/// 4 to 7 bytes as two overlapping halves of one word.
#[inline]
fn any_needs_escape(b: &[u8]) -> bool {
    let n = b.len();
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let half = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes")) as u64;
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word_needs_escape(word(i)) {
                return true;
            }
            i += 8;
        }
        word_needs_escape(word(n - 8))
    } else if n >= 4 {
        word_needs_escape(half(0) | half(n - 4) << 32)
    } else {
        b.iter().any(|&c| NEEDS_ESCAPE[c as usize])
    }
}

/// Appends `s` as a JSON string literal. Most strings need no escape:
/// they are checked a word at a time and copied whole; the rest go
/// through [`write_escaped`].
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if !any_needs_escape(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        put(out, bytes);
        out.push(b'"');
        return;
    }
    write_escaped(out, bytes);
}

/// Appends `bytes` (valid UTF-8) as a JSON string literal, escaping what
/// must be. Plain runs are found eight bytes at a time and copied whole; a
/// byte is looked at alone only in a word that holds one to escape.
#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let w = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
            if !word_needs_escape(w) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if !NEEDS_ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        put(out, &bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
        }
        i += 1;
        start = i;
    }
    put(out, &bytes[start..]);
    out.push(b'"');
}

/// The table's names as JSON, escaped once per table definition.
pub fn rendered(t: &crate::event::TableSchema) -> &crate::event::Rendered {
    t.rendered.get_or_init(|| {
        let quoted = |s: &str| {
            let mut out = Vec::with_capacity(s.len() + 2);
            write_str(&mut out, s);
            out.into_boxed_slice()
        };
        crate::event::Rendered {
            database: quoted(&t.database),
            table: quoted(&t.table),
            keys: t
                .columns
                .iter()
                .map(|c| {
                    let mut k = Vec::with_capacity(c.name.len() + 3);
                    write_key(&mut k, &c.name);
                    k.into_boxed_slice()
                })
                .collect(),
            plain: t
                .columns
                .iter()
                .all(|c| c.visibility == crate::filter::Visibility::Shown),
        }
    })
}

/// Appends `"key":`.
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str(out, key);
    out.push(b':');
}

/// Writes the last two decimal digits of `v` at `at` in `buf`.
#[inline]
pub fn two_digits(buf: &mut [u8], at: usize, v: u64) {
    let d = (v % 100) as usize * 2;
    buf[at] = DIGITS2[d];
    buf[at + 1] = DIGITS2[d + 1];
}

/// The decimal digits of 0 to 99, two bytes each.
const DIGITS2: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// How many decimal digits `n` has: compared against powers of ten, most
/// values being short.
#[inline]
fn decimal_digits(n: u64) -> usize {
    if n < 10 {
        1
    } else if n < 100 {
        2
    } else if n < 1_000 {
        3
    } else if n < 10_000 {
        4
    } else if n < 100_000 {
        5
    } else if n < 1_000_000 {
        6
    } else {
        n.ilog10() as usize + 1
    }
}

/// Appends `n` in decimal, two digits per division, straight into the
/// record: its digits are counted first, then written from the last.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    let len = decimal_digits(n);
    out.reserve(20);
    let at = out.len();
    // SAFETY: `reserve` made room for 20 bytes after `at`, and a u64 has at
    // most 20 digits, so every write below lands in `at..at + len` within
    // the allocation: `i` starts at `len` and goes down by the bytes written
    // before each write, ending at exactly 0 (`len` counts the digits that
    // the divisions produce). All `len` bytes are written before `set_len`.
    unsafe {
        let dst = out.as_mut_ptr().add(at);
        let mut i = len;
        let mut v = n;
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            std::ptr::copy_nonoverlapping(DIGITS2.as_ptr().add(d), dst.add(i), 2);
        }
        if v >= 10 {
            i -= 2;
            std::ptr::copy_nonoverlapping(DIGITS2.as_ptr().add(v as usize * 2), dst.add(i), 2);
        } else {
            i -= 1;
            *dst.add(i) = b'0' + v as u8;
        }
        debug_assert_eq!(i, 0);
        out.set_len(at + len);
    }
}

pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Standard base64 with padding, for binary column values.
pub fn write_base64(out: &mut Vec<u8>, data: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push(b'"');
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63]);
        out.push(T[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63]
        } else {
            b'='
        });
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON string escaping as serde_json does it, for comparison.
    fn reference(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    #[test]
    fn strings_escape_as_serde_json_does_at_every_position() {
        let specials = [
            '"', '\\', '\n', '\r', '\t', '\u{1}', '\u{1f}', 'é', '✓', ' ', '~', '\u{7f}',
        ];
        for len in 0..80 {
            for &c in &specials {
                for at in 0..len.max(1) {
                    let s: String = (0..len)
                        .map(|k| {
                            if k == at {
                                c
                            } else {
                                (b'a' + (k % 26) as u8) as char
                            }
                        })
                        .collect();
                    let mut out = Vec::new();
                    write_str(&mut out, &s);
                    assert_eq!(out, reference(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn integers_and_short_copies_are_exact() {
        for n in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            65535,
            4294967295,
            u64::MAX,
        ]
        .into_iter()
        .chain((0..2000).map(|k| k * 7919))
        // Either side of every power of ten.
        .chain((1..20).flat_map(|k| [10u64.pow(k) - 1, 10u64.pow(k), 10u64.pow(k) + 1]))
        {
            let mut out = b"x".to_vec();
            write_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
        for len in 0..80 {
            let src: Vec<u8> = (0..len as u8).collect();
            let mut out = b"ab".to_vec();
            put(&mut out, &src);
            assert_eq!(&out[..2], b"ab");
            assert_eq!(&out[2..], &src[..]);
        }
    }

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        for input in [
            "plain",
            "quote \" and \\ slash",
            "tab\tnl\ncr\r",
            "ctl \u{1} \u{1f}",
            "4-byte 😀 é",
            "",
        ] {
            let ours = s(|o| write_str(o, input));
            assert_eq!(ours, serde_json::to_string(input).unwrap(), "{input:?}");
        }
    }

    #[test]
    fn integers_cover_the_full_64_bit_range() {
        assert_eq!(s(|o| write_i64(o, i64::MIN)), "-9223372036854775808");
        assert_eq!(s(|o| write_i64(o, 0)), "0");
        assert_eq!(s(|o| write_u64(o, u64::MAX)), "18446744073709551615");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(s(|v| write_base64(v, i.as_bytes())), format!("\"{o}\""));
        }
    }
}
