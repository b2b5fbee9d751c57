//! DOUBLE and FLOAT values as text: the shortest digits that read back as
//! the same number, laid out exactly as Rust's `{}` and `{:e}` print them
//! (the output the formats have always had), without the generic formatter.
//!
//! The digits come from `zmij` (Schubfach; pure Rust, already built for
//! `serde_json`): about a tenth of the instructions of `core::fmt`'s Grisu
//! with its Dragon fallback. Both find the shortest digits and, of those,
//! the nearest to the exact value; they differ only on an exact tie, a
//! value lying halfway between the two nearest candidates (1658206780088562.25
//! between …562.2 and …562.3): `zmij` rounds to even, `core::fmt` upward.
//! [`tie_rounds_up`] finds those exactly and takes the upper one, so the
//! text is the same byte for byte (tested against `format!` over random
//! values of every binade and in the binades where ties happen).

/// A float `zmij` formats, with the parts of its binary value.
pub trait Float: zmij::Float + Copy {
    /// `(m, e)` with the magnitude equal to `m * 2^e`.
    fn binary(self) -> (u64, i32);
    fn negative(self) -> bool;
}

impl Float for f64 {
    fn binary(self) -> (u64, i32) {
        let bits = self.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1 << 52) - 1);
        if exp == 0 {
            (frac, -1074)
        } else {
            (frac | 1 << 52, exp - 1075)
        }
    }
    fn negative(self) -> bool {
        self.is_sign_negative()
    }
}

impl Float for f32 {
    fn binary(self) -> (u64, i32) {
        let bits = self.to_bits();
        let exp = ((bits >> 23) & 0xff) as i32;
        let frac = (bits & ((1 << 23) - 1)) as u64;
        if exp == 0 {
            (frac, -149)
        } else {
            (frac | 1 << 23, exp - 150)
        }
    }
    fn negative(self) -> bool {
        self.is_sign_negative()
    }
}

/// Appends finite `v` as `{}` prints it (`exponent` false: `0.1`, `123`,
/// `0.0000012`) or as `{:e}` does (`1.5e300`, `1e-7`).
pub fn write<F: Float>(out: &mut Vec<u8>, v: F, exponent: bool) {
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(v).as_bytes();
    let (m, e) = v.binary();
    // The common case: `zmij` wrote the plain form (`0.1`, `123.0`) and no
    // tie can arise; `{}` prints the same text without a trailing `.0`.
    // An exponent (`e-324` at the longest) lies in the last five bytes.
    let tail = &text[text.len().saturating_sub(5)..];
    if !exponent && !tie_possible(m, e) && tail.iter().all(|&c| c != b'e') {
        let text = text.strip_suffix(b".0").unwrap_or(text);
        super::json::put(out, text);
        return;
    }
    let (d, k) = parse(text);
    let (d, k) = if tie_rounds_up(m, e, d, k) {
        strip_zeros(d + 1, k)
    } else {
        (d, k)
    };
    if v.negative() {
        out.push(b'-');
    }
    if d == 0 {
        out.extend_from_slice(if exponent { b"0e0" } else { b"0" });
        return;
    }
    let mut digits = [0u8; 20];
    let n = digits_of(d, &mut digits);
    let s = &digits[20 - n..];
    let n = n as i32;
    // The decimal point sits after `point` digits of `s`.
    let point = n + k;
    if exponent {
        out.push(s[0]);
        if n > 1 {
            out.push(b'.');
            super::json::put(out, &s[1..]);
        }
        out.push(b'e');
        super::json::write_i64(out, (point - 1) as i64);
    } else if point <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-point) as usize, b'0');
        super::json::put(out, s);
    } else if point < n {
        super::json::put(out, &s[..point as usize]);
        out.push(b'.');
        super::json::put(out, &s[point as usize..]);
    } else {
        super::json::put(out, s);
        out.resize(out.len() + (point - n) as usize, b'0');
    }
}

/// `zmij`'s text (`0.1`, `123.0`, `1e+16`, `5e-324`) as `(d, k)`, the value
/// being `d * 10^k` with `d` free of trailing zeros (0 for zero).
fn parse(s: &[u8]) -> (u64, i32) {
    let mut d: u64 = 0;
    let mut k: i32 = 0;
    let mut after_point = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            c @ b'0'..=b'9' => {
                d = d * 10 + (c - b'0') as u64;
                if after_point {
                    k -= 1;
                }
            }
            b'.' => after_point = true,
            b'e' => {
                let negative = s.get(i + 1) == Some(&b'-');
                let mut e: i32 = 0;
                for &c in &s[i + 1..] {
                    if c.is_ascii_digit() {
                        e = e * 10 + (c - b'0') as i32;
                    }
                }
                k += if negative { -e } else { e };
                break;
            }
            _ => {}
        }
        i += 1;
    }
    if d == 0 {
        return (0, 0);
    }
    strip_zeros(d, k)
}

fn strip_zeros(mut d: u64, mut k: i32) -> (u64, i32) {
    while d.is_multiple_of(10) {
        d /= 10;
        k += 1;
    }
    (d, k)
}

/// Whether `m * 2^e` lies exactly halfway between `d * 10^k` and
/// `(d + 1) * 10^k`: then `core::fmt` prints `d + 1` where `zmij` may have
/// printed `d`.
///
/// With `m` made odd, the value is `m * 2^e`; halfway is `(2d + 1) * 10^k
/// / 2 = (2d + 1) * 5^k * 2^(k - 1)`, and `2d + 1` is odd, so the powers of
/// two agree only when `e == k - 1`; then the odd parts must be equal:
/// `m == (2d + 1) * 5^k`, or `m * 5^-k == 2d + 1` for negative `k`. Every
/// product is checked, and one that overflows cannot be equal (each side is
/// below 2^64).
pub(crate) fn tie_rounds_up(m: u64, e: i32, d: u64, k: i32) -> bool {
    if !tie_possible(m, e) {
        return false;
    }
    let zeros = m.trailing_zeros();
    let (m, e) = (m >> zeros, e + zeros as i32);
    if k != e + 1 {
        return false;
    }
    let Some(t) = d.checked_mul(2).and_then(|x| x.checked_add(1)) else {
        return false;
    };
    let Some(five) = 5u64.checked_pow(k.unsigned_abs()) else {
        return false;
    };
    if k >= 0 {
        t.checked_mul(five) == Some(m)
    } else {
        m.checked_mul(five) == Some(t)
    }
}

/// Whether `m * 2^e` can be a tie at all, before its digits are known: the
/// last digit's place `k` must be `e + 1` (`m` made odd), and `5^|k|`
/// must fit the products of [`tie_rounds_up`] (each below 2^64): `5^28`
/// does not, and `m * 5^k` for `k` from 23 up is over the 2^53 of a
/// mantissa. Most values (all with a fraction of more than 27 bits) are
/// ruled out here.
fn tie_possible(m: u64, e: i32) -> bool {
    m != 0 && (-27..=22).contains(&(e + m.trailing_zeros() as i32 + 1))
}

/// Writes the decimal digits of `d` at the end of `buf`; returns how many.
fn digits_of(mut d: u64, buf: &mut [u8; 20]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (d % 10) as u8;
        d /= 10;
        if d == 0 {
            return buf.len() - i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<F: Float>(v: F, exponent: bool) -> String {
        let mut out = Vec::new();
        write(&mut out, v, exponent);
        String::from_utf8(out).unwrap()
    }

    /// A xorshift sequence: the same values on every run.
    fn randoms(n: usize) -> impl Iterator<Item = u64> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n).map(move |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
    }

    #[test]
    fn doubles_print_as_core_fmt_prints_them() {
        for bits in randoms(200_000) {
            // Any binade, then the binades from 2^40 to 2^70 where ties
            // between two shortest candidates are common.
            let tie_prone =
                (bits & 0x800F_FFFF_FFFF_FFFF) | ((1023 + 40 + (bits >> 52) % 30) << 52);
            for v in [f64::from_bits(bits), f64::from_bits(tie_prone)] {
                if v.is_finite() {
                    assert_eq!(text(v, false), format!("{v}"), "{v:e}");
                    assert_eq!(text(v, true), format!("{v:e}"), "{v:e}");
                }
            }
            let decimal =
                (bits % 10_000_000) as f64 / [1.0, 7.0, 100.0, 1000.0][(bits >> 60) as usize % 4];
            assert_eq!(text(decimal, false), format!("{decimal}"));
        }
    }

    #[test]
    fn floats_print_as_core_fmt_prints_them() {
        for bits in randoms(200_000) {
            let v = f32::from_bits(bits as u32);
            if v.is_finite() {
                assert_eq!(text(v, false), format!("{v}"), "{v:e}");
                assert_eq!(text(v, true), format!("{v:e}"), "{v:e}");
            }
        }
    }

    #[test]
    fn ties_take_the_upper_candidate_as_core_fmt_does() {
        // 1658206780088562.25: halfway between …562.2 and …562.3.
        let v = 1658206780088562.0f64 + 0.25;
        assert!(tie_rounds_up(
            v.binary().0,
            v.binary().1,
            16582067800885622,
            -1
        ));
        assert_eq!(text(v, false), "1658206780088562.3");
        // 312985.125f32: halfway between 312985.12 and 312985.13.
        assert_eq!(text(312985.0f32 + 0.125, false), "312985.13");
        assert_eq!(text(312985.0f32 + 0.125, true), "3.1298513e5");
    }

    #[test]
    fn edges() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e15,
            1e16,
            1e-6,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(text(v, false), format!("{v}"));
            assert_eq!(text(v, true), format!("{v:e}"));
        }
        for v in [0.0f32, -0.0, 1.0, 16777216.0, 1e-45, f32::MAX] {
            assert_eq!(text(v, false), format!("{v}"));
            assert_eq!(text(v, true), format!("{v:e}"));
        }
    }
}
