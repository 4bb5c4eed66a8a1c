//! Raw deflate for the export zip, fast enough for a million keys: SPEC §7 allows building,
//! signing and zipping them 10× the time of one SHA-256 pass over `export.bin`, at most 20.2
//! bytes per key.
//!
//! Measured on the project machine (2 cores, x86_64, the release profile) for 1,000,000 keys
//! (31 MB of `export.bin`; one SHA-256 pass ≈ 17 ms):
//!
//! | compressor                | time    | bytes/key |
//! |---------------------------|---------|-----------|
//! | libdeflate level 1        | ~160 ms | 20.06     |
//! | libdeflate level 2        | ~230 ms | 19.85     |
//! | zlib-rs level 1           | ~180 ms | 21.58 (static Huffman codes: over the bar) |
//! | zlib-rs level 2           | ~320 ms | 20.10     |
//! | miniz_oxide level 1       | ~135 ms | 20.46 (over the bar) |
//!
//! libdeflate level 1 is the cheapest compressor under the size bar, but on one core it alone is
//! already ~9.5 hashes. So a large `export.bin` is compressed in two parts at once: the leading
//! part by zlib-rs at level 2, ended with a sync flush (an empty stored block, so it ends on a byte
//! boundary in a non-final block), the rest by libdeflate, which can only write complete streams
//! and so takes the final part. Their concatenation is one valid deflate stream (RFC 1951 §3.2.3:
//! blocks simply follow one another); the only loss is that no match crosses the seam. SHA-256 (for
//! the signature) and CRC-32 (for the zip) are computed alongside. `build.rs` runs the two parts as
//! two pipelines (sort, write, compress); together: about 155 ms, 8-9x the hash, 20.07 bytes per
//! key, the compressors about three quarters of it (`cargo bench -p shared --bench export`).

use flate2::{Compress, Compression, FlushCompress};
use libdeflater::{CompressionLvl, Compressor};
use ring::digest;

/// One compressed zip entry: the raw deflate stream (no zlib or gzip wrapper, as zip method 8
/// stores it) is `buf[start..]`; the bytes before it are room left for the zip's local header.
pub(super) struct Deflated {
    pub buf: Vec<u8>,
    pub start: usize,
    pub crc32: u32,
    pub uncompressed_len: usize,
}

impl Deflated {
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub(super) enum DeflateError {
    #[error("libdeflate: {0}")]
    Libdeflate(String),
    #[error("zlib-rs: {0}")]
    Zlib(#[from] flate2::CompressError),
    #[error("zlib-rs made no progress")]
    Stalled,
}

/// See the module documentation for the measurements behind both levels.
const LIBDEFLATE_LEVEL: i32 = 1;
const ZLIB_LEVEL: u32 = 2;

/// Deflates `data` on the calling thread with libdeflate, after `reserve` spare bytes.
pub(super) fn deflate(data: &[u8], reserve: usize) -> Result<Deflated, DeflateError> {
    let mut compressor = libdeflate_compressor()?;
    let mut buf = vec![0; reserve + compressor.deflate_compress_bound(data.len())];
    let out = buf.get_mut(reserve..).unwrap_or_default();
    let written = compressor
        .deflate_compress(data, out)
        .map_err(|error| DeflateError::Libdeflate(format!("{error:?}")))?;
    buf.truncate(reserve + written);
    Ok(Deflated {
        buf,
        start: reserve,
        crc32: crc32(data),
        uncompressed_len: data.len(),
    })
}

/// One output buffer for a stream compressed in two parts at once: the leading part by zlib-rs
/// ([`zlib_sync_flushed`]), the final part by libdeflate ([`libdeflate_into`]). The final part is
/// written at a distance the leading part cannot overrun, then moved up behind it: each output
/// byte lands in fresh memory about once (first touches of fresh pages cost about 0.4 ms per MB
/// on the project VM).
pub(super) struct TwoParts {
    buf: Vec<u8>,
    reserve: usize,
    lead_room: usize,
}

impl TwoParts {
    /// Room for `reserve` spare bytes, then the compressed forms of `lead_len` and `tail_len`
    /// input bytes.
    pub fn new(reserve: usize, lead_len: usize, tail_len: usize) -> Result<Self, DeflateError> {
        // Above zlib's deflateBound for raw deflate (len + len/4096 + len/16384 + len/2^25 + 7),
        // with room for the sync flush; were it ever short, compression fails, it never overruns.
        let lead_room = reserve + lead_len + lead_len / 1024 + 64;
        let tail_room = libdeflate_compressor()?.deflate_compress_bound(tail_len);
        Ok(Self {
            buf: vec![0; lead_room + tail_room],
            reserve,
            lead_room,
        })
    }

    /// Where the two parts go.
    pub fn outputs(&mut self) -> (&mut [u8], &mut [u8]) {
        let (lead, tail) = self.buf.split_at_mut(self.lead_room);
        (lead.get_mut(self.reserve..).unwrap_or_default(), tail)
    }

    /// Joins the parts, each given as (bytes written, CRC-32 of its input, input length).
    pub fn finish(mut self, lead: (usize, u32, usize), tail: (usize, u32, usize)) -> Deflated {
        let (lead_written, lead_crc, lead_len) = lead;
        let (tail_written, tail_crc, tail_len) = tail;
        let tail_written = tail_written.min(self.buf.len().saturating_sub(self.lead_room));
        let start = self.reserve + lead_written;
        self.buf
            .copy_within(self.lead_room..self.lead_room + tail_written, start);
        self.buf.truncate(start + tail_written);
        let mut crc = crc32fast::Hasher::new_with_initial_len(lead_crc, lead_len as u64);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            tail_crc,
            tail_len as u64,
        ));
        Deflated {
            buf: self.buf,
            start: self.reserve,
            crc32: crc.finalize(),
            uncompressed_len: lead_len + tail_len,
        }
    }
}

pub(super) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

pub(super) fn sha256(data: &[u8]) -> [u8; 32] {
    sha256_of(&[data])
}

/// SHA-256 of the concatenation of `parts`.
pub(super) fn sha256_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

fn libdeflate_compressor() -> Result<Compressor, DeflateError> {
    let level = CompressionLvl::new(LIBDEFLATE_LEVEL)
        .map_err(|error| DeflateError::Libdeflate(format!("{error:?}")))?;
    Ok(Compressor::new(level))
}

/// A complete (final) raw deflate stream of `data` into `out`; returns the length written.
pub(super) fn libdeflate_into(data: &[u8], out: &mut [u8]) -> Result<usize, DeflateError> {
    libdeflate_compressor()?
        .deflate_compress(data, out)
        .map_err(|error| DeflateError::Libdeflate(format!("{error:?}")))
}

/// Raw deflate of `data` into `out`, ending in a sync flush: non-final blocks, byte-aligned at
/// the end, so that another deflate stream may follow. Returns the length written.
pub(super) fn zlib_sync_flushed(data: &[u8], out: &mut [u8]) -> Result<usize, DeflateError> {
    let mut compress = Compress::new(Compression::new(ZLIB_LEVEL), false);
    let total = |count: u64, limit: usize| usize::try_from(count).map_or(limit, |n| n.min(limit));
    loop {
        let consumed = total(compress.total_in(), data.len());
        let written = total(compress.total_out(), out.len());
        let input = data.get(consumed..).unwrap_or_default();
        let output = out.get_mut(written..).unwrap_or_default();
        let room = output.len();
        compress.compress(input, output, FlushCompress::Sync)?;
        let now_consumed = total(compress.total_in(), data.len());
        let now_written = total(compress.total_out(), out.len());
        // zlib's contract: the flush is complete once a call leaves output space unused.
        if now_consumed == data.len() && now_written.saturating_sub(written) < room {
            return Ok(now_written);
        }
        if now_consumed == consumed && now_written == written {
            return Err(DeflateError::Stalled);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn inflate(compressed: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(compressed)
            .read_to_end(&mut out)
            .expect("a valid deflate stream");
        out
    }

    /// Key-like data: random-ish 16 bytes and repetitive metadata, as in `export.bin`.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
            data.extend_from_slice(&[0x10, 0x04, 0x18, 0xC0, 0xB6, 0xA6, 0x01, 0x28, 0x01]);
        }
        data.truncate(len);
        data
    }

    #[test]
    fn two_parts_make_one_stream_of_the_input() {
        for (data, split) in [
            (sample(3 << 20), 1 << 20),
            (sample(100_000), 0),
            (sample(100_000), 100_000),
            (Vec::new(), 0),
        ] {
            let (lead, tail) = data.split_at(split);
            let mut parts = TwoParts::new(40, lead.len(), tail.len()).expect("room");
            let (lead_out, tail_out) = parts.outputs();
            let lead_written = zlib_sync_flushed(lead, lead_out).expect("compresses");
            let tail_written = libdeflate_into(tail, tail_out).expect("compresses");
            let deflated = parts.finish(
                (lead_written, crc32(lead), lead.len()),
                (tail_written, crc32(tail), tail.len()),
            );
            assert_eq!(deflated.start, 40);
            assert_eq!(inflate(deflated.data()), data);
            assert_eq!(deflated.crc32, crc32(&data));
            assert_eq!(deflated.uncompressed_len, data.len());
        }
    }

    #[test]
    fn one_part_and_the_hash_of_parts() {
        for data in [Vec::new(), b"x".to_vec(), sample(10_000)] {
            let deflated = deflate(&data, 7).expect("compresses");
            assert_eq!(deflated.start, 7);
            assert_eq!(inflate(deflated.data()), data);
            assert_eq!(deflated.crc32, crc32fast::hash(&data));
        }
        let data = sample(1_000);
        let (a, b) = data.split_at(333);
        assert_eq!(sha256_of(&[a, b]), sha256(&data));
        assert_eq!(
            sha256(b"abc").to_vec(),
            digest::digest(&digest::SHA256, b"abc").as_ref()
        );
    }

    #[test]
    fn a_sync_flushed_part_may_be_followed_by_any_stream() {
        let data = sample(200_000);
        let (head, tail) = data.split_at(70_001);
        // A tiny output slice is an error, not a panic.
        assert!(zlib_sync_flushed(head, &mut [0; 16]).is_err());
        let mut stream = vec![0; head.len() + 1024];
        let len = zlib_sync_flushed(head, &mut stream).expect("compresses");
        stream.truncate(len);
        assert_eq!(&stream[stream.len() - 4..], &[0, 0, 0xFF, 0xFF]);
        stream.extend_from_slice(deflate(tail, 0).expect("compresses").data());
        assert_eq!(inflate(&stream), data);
    }
}
