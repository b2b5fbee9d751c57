//! Text columns in the character set they were stored in.
//!
//! The binlog carries a text value's bytes as stored and, in the table map's
//! FULL metadata, the column's collation id. This module turns the id into a
//! decoder: UTF-8 as is; MySQL's `latin1`, which is Windows-1252 (not
//! ISO-8859-1: 0x80-0x9F are `€ ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ`);
//! the legacy multi-byte and single-byte sets through `encoding_rs` (pure
//! Rust); `ucs2`, `utf16`, `utf16le` and `utf32` by hand. A few single-byte
//! sets have no decoder here (dec8, hp8, swe7, cp850, cp852, keybcs2, macce,
//! armscii8, geostd8): their values are written as base64 of the bytes, and
//! the log says so once per column, rather than destroying them as U+FFFD.

use std::borrow::Cow;
use std::collections::HashSet;

use encoding_rs::Encoding;
use parking_lot::Mutex;

/// How a column's bytes become text.
#[derive(Debug, Clone, Copy)]
pub enum Charset {
    Utf8,
    /// Through an `encoding_rs` decoder (windows-1252 for latin1).
    Legacy(&'static Encoding),
    Utf16Be,
    Utf16Le,
    Utf32Be,
    /// A character set with no decoder here: base64 of the bytes.
    Undecodable(&'static str),
    /// No collation known (no FULL metadata): UTF-8 when it is, else base64.
    Unknown,
}

/// The character set of collation `id`, as MySQL and MariaDB number them
/// (MariaDB's NOPAD collations are the same id + 1024).
pub fn for_collation(id: u16) -> Charset {
    // Looked up for every text value: the answers for the ids that exist
    // (below 2048) are worked out once.
    static TABLE: std::sync::OnceLock<Vec<Charset>> = std::sync::OnceLock::new();
    match TABLE
        .get_or_init(|| (0..2048).map(look_up).collect())
        .get(id as usize)
    {
        Some(cs) => *cs,
        None => look_up(id),
    }
}

fn look_up(id: u16) -> Charset {
    let base = if id >= 1024 { id - 1024 } else { id };
    by_name(charset_name(base).unwrap_or("")).unwrap_or(if id == 0 {
        Charset::Unknown
    } else {
        Charset::Undecodable("an unknown collation")
    })
}

/// A collation id of character set `name`, for columns whose charset comes
/// from information_schema (no FULL metadata).
pub fn collation_for_name(name: &str) -> Option<u16> {
    (1u16..=255).find(|&id| charset_name(id) == Some(name))
}

fn by_name(name: &str) -> Option<Charset> {
    use encoding_rs::*;
    Some(match name {
        "utf8mb3" | "utf8mb4" | "ascii" => Charset::Utf8,
        "latin1" => Charset::Legacy(WINDOWS_1252),
        "latin2" => Charset::Legacy(ISO_8859_2),
        "latin5" => Charset::Legacy(WINDOWS_1254),
        "latin7" => Charset::Legacy(ISO_8859_13),
        "greek" => Charset::Legacy(ISO_8859_7),
        "hebrew" => Charset::Legacy(ISO_8859_8),
        "cp1250" => Charset::Legacy(WINDOWS_1250),
        "cp1251" => Charset::Legacy(WINDOWS_1251),
        "cp1256" => Charset::Legacy(WINDOWS_1256),
        "cp1257" => Charset::Legacy(WINDOWS_1257),
        "cp866" => Charset::Legacy(IBM866),
        "koi8r" => Charset::Legacy(KOI8_R),
        "koi8u" => Charset::Legacy(KOI8_U),
        "tis620" => Charset::Legacy(WINDOWS_874),
        "macroman" => Charset::Legacy(MACINTOSH),
        "big5" => Charset::Legacy(BIG5),
        "gbk" | "gb2312" => Charset::Legacy(GBK),
        "gb18030" => Charset::Legacy(GB18030),
        "sjis" | "cp932" => Charset::Legacy(SHIFT_JIS),
        "ujis" | "eucjpms" => Charset::Legacy(EUC_JP),
        "euckr" => Charset::Legacy(EUC_KR),
        "ucs2" | "utf16" => Charset::Utf16Be,
        "utf16le" => Charset::Utf16Le,
        "utf32" => Charset::Utf32Be,
        "dec8" => Charset::Undecodable("dec8"),
        "hp8" => Charset::Undecodable("hp8"),
        "swe7" => Charset::Undecodable("swe7"),
        "cp850" => Charset::Undecodable("cp850"),
        "cp852" => Charset::Undecodable("cp852"),
        "keybcs2" => Charset::Undecodable("keybcs2"),
        "macce" => Charset::Undecodable("macce"),
        "armscii8" => Charset::Undecodable("armscii8"),
        "geostd8" => Charset::Undecodable("geostd8"),
        _ => return None,
    })
}

/// The character set of the classic collation ids 1-255 (the same on MySQL
/// and MariaDB), MariaDB's 576-738 (the `mysql561` and UCA-14 variants),
/// and MySQL 8's 255-323 (utf8mb4 0900 collations; 248-250 gb18030).
fn charset_name(id: u16) -> Option<&'static str> {
    Some(match id {
        1 | 84 => "big5",
        3 | 69 => "dec8",
        4 | 80 => "cp850",
        6 | 72 => "hp8",
        7 | 74 => "koi8r",
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        2 | 9 | 21 | 27 | 77 => "latin2",
        10 | 82 => "swe7",
        11 | 65 => "ascii",
        12 | 91 => "ujis",
        13 | 88 => "sjis",
        14 | 23 | 50 | 51 | 52 => "cp1251",
        16 | 71 => "hebrew",
        18 | 89 => "tis620",
        19 | 85 => "euckr",
        20 | 41 | 42 | 79 => "latin7",
        22 | 75 => "koi8u",
        24 | 86 => "gb2312",
        25 | 70 => "greek",
        26 | 34 | 44 | 66 | 99 => "cp1250",
        28 | 87 => "gbk",
        29 | 58 | 59 => "cp1257",
        30 | 78 => "latin5",
        32 | 64 => "armscii8",
        33 | 76 | 83 | 192..=215 | 223 | 576..=578 => "utf8mb3",
        35 | 90 | 128..=151 | 159 | 640..=642 => "ucs2",
        36 | 68 => "cp866",
        37 | 73 => "keybcs2",
        38 | 43 => "macce",
        39 | 53 => "macroman",
        40 | 81 => "cp852",
        45 | 46 | 224..=247 | 255..=323 | 608..=610 => "utf8mb4",
        54 | 55 | 101..=124 | 672..=674 => "utf16",
        56 | 62 => "utf16le",
        57 | 67 => "cp1256",
        60 | 61 | 160..=183 | 736..=738 => "utf32",
        63 => "binary",
        92 | 93 => "geostd8",
        95 | 96 => "cp932",
        97 | 98 => "eucjpms",
        248..=250 => "gb18030",
        _ => return None,
    })
}

/// `b` as text in `cs`; `None` when it must go out as base64 instead
/// (an undecodable set, or bytes that are not text in it).
pub fn decode(cs: Charset, b: &[u8]) -> Option<Cow<'_, str>> {
    match cs {
        Charset::Utf8 | Charset::Unknown => std::str::from_utf8(b).ok().map(Cow::Borrowed),
        Charset::Legacy(e) => {
            let (text, had_errors) = e.decode_without_bom_handling(b);
            (!had_errors).then_some(text)
        }
        Charset::Utf16Be | Charset::Utf16Le => {
            if !b.len().is_multiple_of(2) {
                return None;
            }
            let units = b.chunks_exact(2).map(|c| match cs {
                Charset::Utf16Be => u16::from_be_bytes([c[0], c[1]]),
                _ => u16::from_le_bytes([c[0], c[1]]),
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
                .map(Cow::Owned)
        }
        Charset::Utf32Be => {
            if !b.len().is_multiple_of(4) {
                return None;
            }
            b.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<String>>()
                .map(Cow::Owned)
        }
        Charset::Undecodable(_) => None,
    }
}

/// Logs, once per column and character set, that values go out as base64.
pub fn warn_base64(column: &str, id: u16) {
    static WARNED: Mutex<Option<HashSet<(String, u16)>>> = Mutex::new(None);
    let mut w = WARNED.lock();
    if w.get_or_insert_with(HashSet::new)
        .insert((column.to_string(), id))
    {
        let what = match for_collation(id) {
            Charset::Undecodable(name) => {
                format!("character set {name} (collation {id}), which binlog2kafka cannot decode")
            }
            _ => format!("collation {id}, whose bytes here are not valid text in it"),
        };
        log::warn!("column {column}: values in {what} are written as base64 of their bytes (this is said once per column)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: u16, b: &[u8]) -> Option<String> {
        decode(for_collation(id), b).map(|c| c.into_owned())
    }

    #[test]
    fn latin1_is_windows_1252() {
        // `It’s “quoted” – 5€ …` as a latin1 column stores it.
        let b = b"It\x92s \x93quoted\x94 \x96 5\x80 \x85";
        assert_eq!(text(8, b).unwrap(), "It’s “quoted” – 5€ …");
        assert_eq!(text(8, &[0x6e, 0xe9]).unwrap(), "né");
        // The five bytes 1252 leaves undefined are the C1 controls, as in
        // MySQL's own table.
        assert_eq!(text(8, &[0x81]).unwrap(), "\u{81}");
    }

    #[test]
    fn multi_byte_and_wide_sets_decode() {
        assert_eq!(text(28, &[0xd6, 0xd0, 0xce, 0xc4]).unwrap(), "中文"); // gbk
        assert_eq!(
            text(51, &[0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2]).unwrap(),
            "Привет"
        ); // cp1251
        assert_eq!(text(35, &[0x00, 0x41, 0x04, 0x1f]).unwrap(), "AП"); // ucs2, big-endian
        assert_eq!(text(54, &[0xd8, 0x3d, 0xde, 0x00]).unwrap(), "😀"); // utf16 surrogates
        assert_eq!(text(56, &[0x41, 0x00]).unwrap(), "A"); // utf16le
        assert_eq!(text(60, &[0, 1, 0xf6, 0x00]).unwrap(), "😀"); // utf32
        assert_eq!(text(13, &[0x93, 0xfa, 0x96, 0x7b]).unwrap(), "日本"); // sjis
        assert_eq!(text(19, &[0xc7, 0xd1]).unwrap(), "한"); // euckr
        assert_eq!(text(1024 + 28, &[0xd6, 0xd0]).unwrap(), "中"); // gbk_nopad_bin
        assert_eq!(text(255, "ü".as_bytes()).unwrap(), "ü"); // utf8mb4_0900_ai_ci
    }

    #[test]
    fn what_cannot_be_decoded_is_not_guessed() {
        assert!(text(4, b"\x80").is_none(), "cp850 has no decoder here");
        assert!(text(45, &[0xff]).is_none(), "bad UTF-8 is not text");
        assert!(
            text(54, &[0xd8, 0x3d]).is_none(),
            "a lone surrogate is not text"
        );
        assert_eq!(text(0, b"plain").unwrap(), "plain");
        assert_eq!(collation_for_name("cp1251"), Some(14));
    }
}
