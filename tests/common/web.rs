//! The operator's side of the pages: GET over plain TCP, headless Chromium
//! rendering a page (its DOM and a screenshot), and a reader of the
//! screenshot's pixels to check that the charts were drawn.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// GET `path`: (status code, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"));
    let code = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1.to_string();
    (code, body)
}

/// `url` rendered by headless Chromium in a `width` x `height` window: its
/// DOM, and a screenshot kept as `target/NAME` (path and bytes).
pub fn render(url: &str, name: &str, size: (u32, u32)) -> (String, std::path::PathBuf, Vec<u8>) {
    let shot = super::root().join("target").join(name);
    let _ = std::fs::remove_file(&shot);
    let window = format!("--window-size={},{}", size.0, size.1);
    let dom = chromium(url, &[&window, "--dump-dom"]);
    chromium(url, &[&window, &format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5000,
        "a real PNG"
    );
    (dom, shot, png)
}

/// Headless Chromium on `url` with `extra` arguments; its stdout.
fn chromium(url: &str, extra: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium (scripts/testenv installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pixels of the screenshot within `tolerance` of `rgb` on every channel:
/// a chart's line drawn in that colour shows up here.
pub fn pixels_of_colour(png: &[u8], rgb: (u8, u8, u8), tolerance: u8) -> usize {
    let (width, channels, data) = decode_png(png);
    let stride = width * channels;
    data.chunks(stride)
        .flat_map(|row| row.chunks(channels))
        .filter(|p| {
            p[0].abs_diff(rgb.0) <= tolerance
                && p[1].abs_diff(rgb.1) <= tolerance
                && p[2].abs_diff(rgb.2) <= tolerance
        })
        .count()
}

/// A PNG as Chromium writes it (8-bit RGB or RGBA, not interlaced): its
/// width, channels and unfiltered pixel rows.
fn decode_png(png: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut at = 8;
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let body = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(body[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
                assert_eq!(body[8], 8, "8-bit samples");
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("PNG colour type {t}"),
                };
                assert_eq!(body[12], 0, "not interlaced");
            }
            b"IDAT" => idat.extend_from_slice(body),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    let mut out = vec![0u8; stride * height];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                out[y * stride + x - channels]
            } else {
                0
            };
            let b = if y > 0 { out[(y - 1) * stride + x] } else { 0 };
            let c = if x >= channels && y > 0 {
                out[(y - 1) * stride + x - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = (
                        (p - a as i16).abs(),
                        (p - b as i16).abs(),
                        (p - c as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            out[y * stride + x] = line[x].wrapping_add(predicted);
        }
    }
    (width, channels, out)
}
