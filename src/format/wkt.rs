//! GEOMETRY values as WKT text, the way `ST_AsText` prints them.
//!
//! The binlog stores a geometry as a 4-byte SRID followed by its WKB
//! (well-known binary). WKT is what people read and what most sinks parse;
//! the SRID is dropped, as `ST_AsText` drops it.

use std::fmt::Write;

/// The WKT of a binlog GEOMETRY value, or None when the bytes are not a
/// well-formed geometry.
pub fn geometry_to_wkt(b: &[u8]) -> Option<String> {
    let wkb = b.get(4..)?;
    let mut r = Wkb { b: wkb, at: 0 };
    let mut out = String::with_capacity(wkb.len());
    r.geometry(&mut out, 0)?;
    (r.at == wkb.len()).then_some(out)
}

struct Wkb<'a> {
    b: &'a [u8],
    at: usize,
}

/// Collections nest; a bound keeps damaged input from recursing deeply.
const MAX_DEPTH: usize = 32;

impl Wkb<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.at..self.at.checked_add(N)?)?;
        self.at += N;
        s.try_into().ok()
    }

    fn u32(&mut self, le: bool) -> Option<u32> {
        let a = self.take::<4>()?;
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    fn f64(&mut self, le: bool) -> Option<f64> {
        let a = self.take::<8>()?;
        Some(if le {
            f64::from_le_bytes(a)
        } else {
            f64::from_be_bytes(a)
        })
    }

    /// A count that cannot exceed what the remaining bytes could hold.
    fn count(&mut self, le: bool, min_item: usize) -> Option<usize> {
        let n = self.u32(le)? as usize;
        (n.checked_mul(min_item)? <= self.b.len() - self.at).then_some(n)
    }

    fn point(&mut self, out: &mut String, le: bool) -> Option<()> {
        let (x, y) = (self.f64(le)?, self.f64(le)?);
        write!(out, "{} {}", num(x), num(y)).ok()
    }

    /// A count of at least `min_item`-byte items, written as `(a,b,...)`.
    fn list(
        &mut self,
        out: &mut String,
        le: bool,
        min_item: usize,
        mut item: impl FnMut(&mut Self, &mut String) -> Option<()>,
    ) -> Option<()> {
        let n = self.count(le, min_item)?;
        out.push('(');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            item(self, out)?;
        }
        out.push(')');
        Some(())
    }

    fn points(&mut self, out: &mut String, le: bool) -> Option<()> {
        self.list(out, le, 16, |r, out| r.point(out, le))
    }

    fn rings(&mut self, out: &mut String, le: bool) -> Option<()> {
        self.list(out, le, 4, |r, out| r.points(out, le))
    }

    /// Reads one WKB geometry (byte order, type, body) and writes its WKT.
    fn geometry(&mut self, out: &mut String, depth: usize) -> Option<()> {
        let (le, kind) = self.header(depth)?;
        let name = match kind {
            1 => "POINT",
            2 => "LINESTRING",
            3 => "POLYGON",
            4 => "MULTIPOINT",
            5 => "MULTILINESTRING",
            6 => "MULTIPOLYGON",
            7 => "GEOMETRYCOLLECTION",
            _ => return None,
        };
        out.push_str(name);
        match kind {
            1 => {
                out.push('(');
                self.point(out, le)?;
                out.push(')');
            }
            2 => self.points(out, le)?,
            3 => self.rings(out, le)?,
            // MULTI members are bare bodies of the matching single type.
            4..=6 => self.list(out, le, 9, |r, out| {
                let (mle, member) = r.header(depth + 1)?;
                if member != kind - 3 {
                    return None;
                }
                match member {
                    1 => r.point(out, mle),
                    2 => r.points(out, mle),
                    _ => r.rings(out, mle),
                }
            })?,
            _ => self.list(out, le, 9, |r, out| r.geometry(out, depth + 1))?,
        }
        Some(())
    }

    fn header(&mut self, depth: usize) -> Option<(bool, u32)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let [order] = self.take::<1>()?;
        let le = match order {
            1 => true,
            0 => false,
            _ => return None,
        };
        Some((le, self.u32(le)?))
    }
}

/// Coordinates as `ST_AsText` prints them: the shortest text of the double.
fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkb(parts: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0]; // SRID 0
        for p in parts {
            v.extend_from_slice(p);
        }
        v
    }

    fn pt(x: f64, y: f64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&x.to_le_bytes());
        v.extend_from_slice(&y.to_le_bytes());
        v
    }

    fn head(kind: u32) -> Vec<u8> {
        let mut v = vec![1];
        v.extend_from_slice(&kind.to_le_bytes());
        v
    }

    fn n(k: u32) -> Vec<u8> {
        k.to_le_bytes().to_vec()
    }

    #[test]
    fn points_lines_and_polygons() {
        let p = wkb(&[&head(1), &pt(1.5, -2.0)]);
        assert_eq!(geometry_to_wkt(&p).unwrap(), "POINT(1.5 -2)");
        let l = wkb(&[&head(2), &n(2), &pt(0.0, 0.0), &pt(1.0, 1.0)]);
        assert_eq!(geometry_to_wkt(&l).unwrap(), "LINESTRING(0 0,1 1)");
        let ring = [n(4), pt(0.0, 0.0), pt(1.0, 0.0), pt(0.0, 1.0), pt(0.0, 0.0)].concat();
        let poly = wkb(&[&head(3), &n(1), &ring]);
        assert_eq!(
            geometry_to_wkt(&poly).unwrap(),
            "POLYGON((0 0,1 0,0 1,0 0))"
        );
    }

    #[test]
    fn multi_geometries_and_collections() {
        let mp = wkb(&[
            &head(4),
            &n(2),
            &head(1),
            &pt(1.0, 2.0),
            &head(1),
            &pt(3.0, 4.0),
        ]);
        assert_eq!(geometry_to_wkt(&mp).unwrap(), "MULTIPOINT(1 2,3 4)");
        let gc = wkb(&[
            &head(7),
            &n(2),
            &head(1),
            &pt(1.0, 1.0),
            &head(2),
            &n(2),
            &pt(0.0, 0.0),
            &pt(2.0, 2.0),
        ]);
        assert_eq!(
            geometry_to_wkt(&gc).unwrap(),
            "GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,2 2))"
        );
    }

    #[test]
    fn damaged_geometries_are_refused_not_misread() {
        let p = wkb(&[&head(1), &pt(1.0, 2.0)]);
        for cut in 0..p.len() {
            assert_eq!(geometry_to_wkt(&p[..cut]), None, "cut at {cut}");
        }
        let huge = wkb(&[&head(2), &n(u32::MAX)]);
        assert_eq!(geometry_to_wkt(&huge), None);
        let mut trailing = p.clone();
        trailing.push(0);
        assert_eq!(geometry_to_wkt(&trailing), None);
        let wrong_member = wkb(&[&head(4), &n(1), &head(2), &n(0)]);
        assert_eq!(geometry_to_wkt(&wrong_member), None);
    }
}
