//! Avro's binary encoding (the specification's "Binary Encoding"): what a
//! record's body is on the wire. Only writing is needed here; the tests
//! hold the specification's own examples.

/// `int` and `long`: zig-zag, then a variable-length base-128 integer,
/// low groups first.
pub fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

pub fn int(out: &mut Vec<u8>, v: i32) {
    long(out, v as i64)
}

pub fn boolean(out: &mut Vec<u8>, v: bool) {
    out.push(v as u8);
}

/// `float`: 4 bytes, little-endian IEEE 754.
pub fn float(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `double`: 8 bytes, little-endian IEEE 754.
pub fn double(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `bytes`: its length as a `long`, then the bytes.
pub fn bytes(out: &mut Vec<u8>, v: &[u8]) {
    long(out, v.len() as i64);
    out.extend_from_slice(v);
}

/// `string`: as `bytes`, UTF-8.
pub fn string(out: &mut Vec<u8>, v: &str) {
    bytes(out, v.as_bytes())
}

/// A union's branch: its zero-based index as a `long`, then the value.
pub fn branch(out: &mut Vec<u8>, index: usize) {
    long(out, index as i64)
}

/// The `decimal` logical type's bytes: the unscaled value in big-endian
/// two's complement, as few bytes as hold it (`digits`: its decimal digits,
/// an optional leading `-`, no point).
pub fn decimal_bytes(digits: &str) -> Option<Vec<u8>> {
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, digits),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Big-endian magnitude, base 256.
    let mut mag: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = (d - b'0') as u32;
        for byte in mag.iter_mut().rev() {
            let v = *byte as u32 * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    // Room for the sign bit.
    if mag[0] & 0x80 != 0 {
        mag.insert(0, 0);
    }
    if negative {
        // Two's complement: invert and add one.
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, overflow) = b.overflowing_add(1);
            *b = v;
            if !overflow {
                break;
            }
        }
    }
    // Shortest form: drop leading bytes that only repeat the sign.
    while mag.len() > 1
        && ((mag[0] == 0 && mag[1] & 0x80 == 0) || (mag[0] == 0xff && mag[1] & 0x80 != 0))
    {
        mag.remove(0);
    }
    Some(mag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn integers_are_zig_zag_varints_as_the_specification_shows() {
        // The specification's table: 0, -1, 1, -2, 2, -64, 64.
        let cases: [(i64, &[u8]); 7] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (2, &[0x04]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
        ];
        for (v, want) in cases {
            assert_eq!(enc(|o| long(o, v)), want, "{v}");
        }
        assert_eq!(
            enc(|o| long(o, i64::MIN)),
            [0xff; 9].iter().copied().chain([0x01]).collect::<Vec<u8>>()
        );
        assert_eq!(
            enc(|o| long(o, i64::MAX)),
            [0xfe]
                .iter()
                .copied()
                .chain([0xff; 8])
                .chain([0x01])
                .collect::<Vec<u8>>()
        );
        assert_eq!(
            enc(|o| int(o, i32::MIN)),
            vec![0xff, 0xff, 0xff, 0xff, 0x0f]
        );
    }

    #[test]
    fn strings_unions_and_records_as_the_specification_shows() {
        // "foo": 06 66 6f 6f.
        assert_eq!(enc(|o| string(o, "foo")), vec![0x06, 0x66, 0x6f, 0x6f]);
        // ["null","string"]: null is 00; "a" is 02 02 61.
        assert_eq!(enc(|o| branch(o, 0)), vec![0x00]);
        assert_eq!(
            enc(|o| {
                branch(o, 1);
                string(o, "a")
            }),
            vec![0x02, 0x02, 0x61]
        );
        // {"a": 27 (long), "b": "foo"}: 36 06 66 6f 6f.
        assert_eq!(
            enc(|o| {
                long(o, 27);
                string(o, "foo")
            }),
            vec![0x36, 0x06, 0x66, 0x6f, 0x6f]
        );
        assert_eq!(enc(|o| double(o, 1.0)), 1.0f64.to_le_bytes());
        assert_eq!(enc(|o| float(o, -2.5)), (-2.5f32).to_le_bytes());
        assert_eq!(enc(|o| boolean(o, true)), vec![1]);
    }

    #[test]
    fn decimals_are_minimal_big_endian_twos_complement() {
        let cases: [(&str, &[u8]); 9] = [
            ("0", &[0x00]),
            ("1", &[0x01]),
            ("-1", &[0xff]),
            ("127", &[0x7f]),
            ("128", &[0x00, 0x80]),
            ("-128", &[0x80]),
            ("-129", &[0xff, 0x7f]),
            ("255", &[0x00, 0xff]),
            (
                "12345678901234567890",
                &[0x00, 0xab, 0x54, 0xa9, 0x8c, 0xeb, 0x1f, 0x0a, 0xd2],
            ),
        ];
        for (digits, want) in cases {
            assert_eq!(decimal_bytes(digits).unwrap(), want, "{digits}");
        }
        // Java's BigInteger.toByteArray() of -12345678901234567890.
        assert_eq!(
            decimal_bytes("-12345678901234567890").unwrap(),
            vec![0xff, 0x54, 0xab, 0x56, 0x73, 0x14, 0xe0, 0xf5, 0x2e]
        );
        assert!(decimal_bytes("1.5").is_none());
        assert!(decimal_bytes("").is_none());
    }
}
