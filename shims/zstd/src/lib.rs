//! A pure-Rust stand-in for the two functions of the `zstd` crate that
//! `mysql_common` calls to inflate MySQL 8 TRANSACTION_PAYLOAD events.
//!
//! The real `zstd` crate compiles libzstd from C; binlog2kafka must build as
//! a static musl binary with no C toolchain, so the workspace patches `zstd`
//! to this crate, which decodes with `ruzstd`. Only decompression exists
//! here: binlog2kafka never compresses with zstd.

use std::io::{self, BufRead, Read, Write};
use std::marker::PhantomData;

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

/// A streaming zstd decoder over a buffered reader, with the signature of
/// `zstd::stream::read::Decoder`.
pub struct Decoder<'a, R: BufRead> {
    inner: StreamingDecoder<R, FrameDecoder>,
    _borrow: PhantomData<&'a ()>,
}

impl<R: BufRead> Decoder<'_, R> {
    /// Starts decoding one zstd frame from `reader`.
    pub fn with_buffer(reader: R) -> io::Result<Self> {
        let inner = StreamingDecoder::new(reader)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
        Ok(Self {
            inner,
            _borrow: PhantomData,
        })
    }
}

impl<R: BufRead> Read for Decoder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

pub mod stream {
    use super::*;

    /// Decodes all of `source` into `destination`.
    pub fn copy_decode<R: Read, W: Write>(source: R, mut destination: W) -> io::Result<()> {
        let mut decoder = StreamingDecoder::new(source)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
        io::copy(&mut decoder, &mut destination)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zstd frame made by the reference `zstd` tool from the bytes
    /// "binlog2kafka binlog2kafka binlog2kafka\n".
    const FRAME: &[u8] = &[
        0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0xa5, 0x00, 0x00, 0x70, 0x62, 0x69, 0x6e, 0x6c, 0x6f,
        0x67, 0x32, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x20, 0x0a, 0x01, 0x00, 0xb0, 0xcc, 0x2f, 0x31,
        0x87, 0x36, 0x24,
    ];

    #[test]
    fn decodes_a_reference_frame() {
        let mut out = Vec::new();
        Decoder::with_buffer(FRAME)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"binlog2kafka binlog2kafka binlog2kafka\n");
        let mut copied = Vec::new();
        stream::copy_decode(FRAME, &mut copied).unwrap();
        assert_eq!(copied, out);
    }

    #[test]
    fn rejects_garbage_with_an_error() {
        assert!(Decoder::with_buffer(&b"not zstd at all"[..]).is_err());
    }
}
