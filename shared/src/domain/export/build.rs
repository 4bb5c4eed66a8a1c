//! Writing one export file: `export.bin`, its signature, and the zip.

use std::fmt;

use prost::Message as _;

use super::{
    DEFAULT_ROLLING_PERIOD, EXPORT_BIN_NAME, EXPORT_SIG_NAME, ExportHeader, ExportKey, HEADER,
    SignatureInfo, deflate, parallel, proto, sort, zip,
};
use crate::domain::exposure_key::{KEY_LENGTH, MAX_ROLLING_PERIOD};
use crate::ports::{ExportSigner, SignError};

/// Field number of `TemporaryExposureKeyExport.keys`.
const KEYS_FIELD: u32 = 7;
/// Every file is batch 1 of 1: since 2020-11 the file is the unit of atomicity, and iOS never
/// supported anything else (google-en-server.md §1.6).
const BATCH_NUM: i32 = 1;
const BATCH_SIZE: i32 = 1;
/// Readers reject higher transmission risks (google-en-server.md §1.4).
const MAX_TRANSMISSION_RISK: u8 = 8;

/// Why a file could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A key that readers would reject; `index` is its position in the caller's slice.
    #[error("key {index} cannot be exported: {reason}")]
    InvalidKey { index: usize, reason: &'static str },
    /// A key id or version outside `[a-zA-Z0-9_]`, which phones do not accept.
    #[error("signature info {field} must match [a-zA-Z0-9_]")]
    InvalidSignatureInfo { field: &'static str },
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("export compression failed: {0}")]
    Compression(String),
    /// Over 4 GiB: beyond a zip without zip64 (and far beyond any sane file).
    #[error("export too large for a zip without zip64")]
    TooLarge,
    /// A worker thread could not run, or an internal length check failed: a bug, not bad input.
    #[error("internal error while building the export")]
    Internal,
}

impl From<deflate::DeflateError> for BuildError {
    fn from(error: deflate::DeflateError) -> Self {
        Self::Compression(error.to_string())
    }
}

impl From<parallel::ThreadError> for BuildError {
    fn from(_: parallel::ThreadError) -> Self {
        Self::Internal
    }
}

/// A signed export file, ready to upload.
pub struct BuiltExport {
    /// The zip: `export.bin` then `export.sig`, both deflated.
    pub zip: Vec<u8>,
    pub key_count: usize,
    /// Length of `export.bin` (header included).
    pub export_bin_len: usize,
    /// SHA-256 of `export.bin`, as signed.
    pub digest: [u8; 32],
    /// The DER ECDSA signature in `export.sig`.
    pub signature: Vec<u8>,
}

/// Shows sizes only: the zip holds key material.
impl fmt::Debug for BuiltExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltExport")
            .field("zip_len", &self.zip.len())
            .field("key_count", &self.key_count)
            .field("export_bin_len", &self.export_bin_len)
            .finish_non_exhaustive()
    }
}

/// Builds one signed export file from `keys` (which it sorts in place by key bytes; after an
/// error they may be in any order).
///
/// Steps: sort and encode `export.bin` ([`encode_export_bin`]'s bytes), deflate it and compute
/// its SHA-256; sign the digest through `signer` (KMS `Sign` with `MessageType=DIGEST` in
/// production: the key never leaves KMS, and KMS never sees the keys); [`encode_export_sig`];
/// the zip. Pad and split the release first ([`pad_release`](super::pad_release),
/// [`split_release`](super::split_release)).
///
/// With two cores and many keys, the work runs as two pipelines at once (see `deflate.rs` for
/// why): keys whose first byte is below `ZLIB_PART_BELOW` (a third) are sorted, written and compressed
/// by zlib-rs on one thread, which then hashes the whole `export.bin`; the others are sorted,
/// written and compressed by libdeflate on the other.
pub async fn build_export<S>(
    header: &ExportHeader,
    keys: &mut [ExportKey],
    signer: &S,
) -> Result<BuiltExport, BuildError>
where
    S: ExportSigner + ?Sized,
{
    let layout = Layout::new(header, keys, ZLIB_PART_BELOW)?;
    let export_bin_len = layout.total_len();
    // The compressed export.bin is written after room for its zip header, so the zip is built
    // around it without copying 20 MB.
    let reserve = zip::local_header_len(EXPORT_BIN_NAME);
    let (bin_entry, digest) = if layout.parallel {
        compress_in_two_parts(&layout, keys, reserve)?
    } else {
        let bin = layout.write(keys)?;
        (deflate::deflate(&bin, reserve)?, deflate::sha256(&bin))
    };
    let signature = signer.sign_digest(&digest).await?;
    let sig = encode_export_sig(&header.signature_info, &signature);
    let sig_entry = deflate::deflate(&sig, 0)?;
    let zip = zip::write_zip(
        (EXPORT_BIN_NAME, bin_entry),
        &[(EXPORT_SIG_NAME, &sig_entry)],
    )
    .ok_or(BuildError::TooLarge)?;
    Ok(BuiltExport {
        zip,
        key_count: keys.len(),
        export_bin_len,
        digest,
        signature,
    })
}

/// `export.bin`: [`HEADER`] + `TemporaryExposureKeyExport` (region, window, batch 1 of 1, the
/// signature info, the keys). Sorts `keys` by key bytes first, "to scramble keys to ensure no
/// associations" (google-en-server.md §1.7); ties (the same key twice) are ordered by metadata,
/// so the output depends only on the set of keys.
///
/// Per key: `key_data`, `transmission_risk_level` and `rolling_start_interval_number` always;
/// `rolling_period` only when not 144 (the proto default); `report_type` and
/// `days_since_onset_of_symptoms` only when known. `revised_keys` stays empty.
///
/// The bytes are exactly prost's encoding of the whole message (fields in number order, field 8
/// empty): fields 1..=6 by prost, then each key as field 7 by `write_keys`, which a test holds
/// byte for byte to prost. Many keys are sorted and written on two threads (see `Layout`).
pub fn encode_export_bin(
    header: &ExportHeader,
    keys: &mut [ExportKey],
) -> Result<Vec<u8>, BuildError> {
    Layout::new(header, keys, HALVES_BELOW)?.write(keys)
}

/// Below this many keys one thread sorts and writes them all.
const PARALLEL_MIN_KEYS: usize = 1 << 16;
/// In [`build_export`], keys with a first byte below this (about 33% of random keys) go to the
/// zlib-rs thread, which also hashes everything; this balances it against the libdeflate thread
/// on the project machine (benches/export.rs).
const ZLIB_PART_BELOW: u16 = 0x55;
/// In [`encode_export_bin`] and [`sort_keys`], the two threads take halves.
const HALVES_BELOW: u16 = 0x80;

/// Where everything goes in `export.bin`: the head (header and fields 1..=6), then the "low" keys
/// (first byte below a threshold), then the others. The keys are checked and partitioned, and
/// both parts' encoded lengths summed, before anything is sorted, so two threads can each sort
/// and write their part straight into its place.
struct Layout {
    head: Vec<u8>,
    /// Number of low keys: they come first in the partitioned slice.
    split: usize,
    low_len: usize,
    high_len: usize,
    parallel: bool,
}

impl Layout {
    fn new(header: &ExportHeader, keys: &mut [ExportKey], below: u16) -> Result<Self, BuildError> {
        check_signature_info(&header.signature_info)?;
        let parallel = keys.len() >= PARALLEL_MIN_KEYS && parallel::two_cores();
        let (split, low_len, high_len) = if parallel {
            // Each thread checks, measures and partitions one half; then the parts are joined.
            let half = keys.len() / 2;
            let (front, back) = keys.split_at_mut(half);
            let (front, back) = parallel::join(
                || check_and_partition(front, below, 0),
                || check_and_partition(back, below, half),
            )?;
            let (front, back) = (front?, back?);
            let split = join_parts(keys, half, front.low, back.low)?;
            (
                split,
                front.low_len + back.low_len,
                front.high_len + back.high_len,
            )
        } else {
            // One part: every key is "low", nothing moves.
            let all = check_and_partition(keys, 0x100, 0)?;
            (all.low, all.low_len, all.high_len)
        };
        let mut head = HEADER.to_vec();
        proto::TemporaryExposureKeyExport {
            start_timestamp: Some(header.start_timestamp),
            end_timestamp: Some(header.end_timestamp),
            region: Some(header.region.clone()),
            batch_num: Some(BATCH_NUM),
            batch_size: Some(BATCH_SIZE),
            signature_infos: vec![header.signature_info.to_proto()],
            keys: Vec::new(),
            revised_keys: Vec::new(),
        }
        .encode_raw(&mut head);
        Ok(Self {
            head,
            split,
            low_len,
            high_len,
            parallel,
        })
    }

    fn total_len(&self) -> usize {
        self.head.len() + self.low_len + self.high_len
    }

    /// `export.bin` with only the head written yet. Zeroed memory from the allocator: its pages
    /// are first touched by whichever thread writes them.
    fn allocate(&self) -> Vec<u8> {
        let mut bin = vec![0; self.total_len()];
        if let Some(head) = bin.get_mut(..self.head.len()) {
            head.copy_from_slice(&self.head);
        }
        bin
    }

    /// Sorts and writes both parts (on two threads when parallel).
    fn write(&self, keys: &mut [ExportKey]) -> Result<Vec<u8>, BuildError> {
        let mut bin = self.allocate();
        let (lead, high_out) = bin.split_at_mut(self.head.len() + self.low_len);
        let low_out = lead.get_mut(self.head.len()..).unwrap_or_default();
        let (low, high) = keys.split_at_mut(self.split);
        let written = if self.parallel {
            let (low_done, high_done) = parallel::join(
                || sort_and_write(low, low_out),
                || sort_and_write(high, high_out),
            )?;
            low_done && high_done
        } else {
            sort_and_write(low, low_out) && sort_and_write(high, high_out)
        };
        if written {
            Ok(bin)
        } else {
            Err(BuildError::Internal)
        }
    }
}

/// [`build_export`]'s two pipelines: (low keys: sort, write, zlib-rs, then SHA-256 of all) and
/// (high keys: sort, write, libdeflate). The libdeflate thread hands its finished bytes to the
/// other for hashing; both only read them from then on.
fn compress_in_two_parts(
    layout: &Layout,
    keys: &mut [ExportKey],
    reserve: usize,
) -> Result<(deflate::Deflated, [u8; 32]), BuildError> {
    let mut bin = layout.allocate();
    let head_len = layout.head.len();
    let lead_len = head_len + layout.low_len;
    let (lead, high_out) = bin.split_at_mut(lead_len);
    let (low, high) = keys.split_at_mut(layout.split);
    let mut parts = deflate::TwoParts::new(reserve, lead_len, layout.high_len)?;
    let (lead_compressed, tail_compressed) = parts.outputs();
    let (handover, handed) = std::sync::mpsc::sync_channel::<&[u8]>(1);
    let (lead_done, tail_done) = parallel::join(
        move || -> Result<_, BuildError> {
            let low_out = lead.get_mut(head_len..).unwrap_or_default();
            if !sort_and_write(low, low_out) {
                return Err(BuildError::Internal);
            }
            let lead: &[u8] = lead;
            let written = deflate::zlib_sync_flushed(lead, lead_compressed)?;
            let tail = handed.recv().map_err(|_| BuildError::Internal)?;
            Ok((
                written,
                deflate::crc32(lead),
                deflate::sha256_of(&[lead, tail]),
            ))
        },
        move || -> Result<_, BuildError> {
            if !sort_and_write(high, high_out) {
                return Err(BuildError::Internal);
            }
            let tail: &[u8] = high_out;
            handover.send(tail).map_err(|_| BuildError::Internal)?;
            let written = deflate::libdeflate_into(tail, tail_compressed)?;
            Ok((written, deflate::crc32(tail)))
        },
    )?;
    let (lead_written, lead_crc, digest) = lead_done?;
    let (tail_written, tail_crc) = tail_done?;
    drop(bin);
    let entry = parts.finish(
        (lead_written, lead_crc, lead_len),
        (tail_written, tail_crc, layout.high_len),
    );
    Ok((entry, digest))
}

/// [`partition`] on two threads: each partitions one half, then [`join_parts`]. Returns the
/// number of low keys.
fn partition_on_two_threads(keys: &mut [ExportKey], below: u16) -> Result<usize, BuildError> {
    let half = keys.len() / 2;
    let (front, back) = keys.split_at_mut(half);
    let (front_low, back_low) =
        parallel::join(|| partition(front, below), || partition(back, below))?;
    join_parts(keys, half, front_low, back_low)
}

/// Turns two partitioned halves (`[front low | front high | back low | back high]`, the front
/// `half` keys long) into one partitioned slice: the front half's high keys and the back half's
/// low keys trade places, as few as there are of the rarer (each part is sorted next, so the
/// order within it does not matter). Returns the number of low keys.
fn join_parts(
    keys: &mut [ExportKey],
    half: usize,
    front_low: usize,
    back_low: usize,
) -> Result<usize, BuildError> {
    let front_high = half.checked_sub(front_low).ok_or(BuildError::Internal)?;
    let moved = front_high.min(back_low);
    let middle = keys
        .get_mut(front_low..half + back_low)
        .ok_or(BuildError::Internal)?;
    let (first, rest) = middle.split_at_mut(moved);
    let last = rest
        .get_mut(rest.len() - moved..)
        .ok_or(BuildError::Internal)?;
    first.swap_with_slice(last);
    Ok(front_low + back_low)
}

/// `export.sig`: a `TEKSignatureList` with one `TEKSignature` (the same signature info as in
/// `export.bin`, batch 1 of 1, the DER signature).
pub fn encode_export_sig(info: &SignatureInfo, signature: &[u8]) -> Vec<u8> {
    proto::TekSignatureList {
        signatures: vec![proto::TekSignature {
            signature_info: Some(info.to_proto()),
            batch_num: Some(BATCH_NUM),
            batch_size: Some(BATCH_SIZE),
            signature: Some(signature.to_vec()),
        }],
    }
    .encode_to_vec()
}

/// Orders keys by their bytes (`bytes.Compare` on the 16 bytes, as the reference server does),
/// ties by metadata (see `sort.rs`), on two threads for large slices (see [`encode_export_bin`]).
pub(super) fn sort_keys(keys: &mut [ExportKey]) {
    if keys.len() < PARALLEL_MIN_KEYS || !parallel::two_cores() {
        sort::sort(keys);
        return;
    }
    let Ok(split) = partition_on_two_threads(keys, HALVES_BELOW) else {
        sort::sort(keys);
        return;
    };
    let (low, high) = keys.split_at_mut(split);
    if parallel::join(|| sort::sort(low), || sort::sort(high)).is_err() {
        sort::sort(keys);
    }
}

/// Sorts `keys` and writes them one after the other into `out`, each sorted bucket as soon as it
/// is final (while it is still in cache); false unless they fill it exactly (which
/// [`encoded_key_len`] guarantees).
fn sort_and_write(keys: &mut [ExportKey], out: &mut [u8]) -> bool {
    let mut position = 0;
    let all_written = sort::sort_in_runs(keys, |run| {
        match out
            .get_mut(position..)
            .and_then(|rest| write_keys(run, rest))
        {
            Some(len) => {
                position += len;
                true
            }
            None => false,
        }
    });
    all_written && position == out.len()
}

/// What [`check_and_partition`] found in its keys.
#[derive(Debug)]
struct Part {
    /// Number of low keys, now first.
    low: usize,
    low_len: usize,
    high_len: usize,
}

/// [`partition`], checking every key (`first` = the caller's index of `keys[0]`) and summing
/// both parts' encoded lengths on the way: one pass over the keys instead of two. Every key is
/// checked before it can move, so a refused key is still where the caller put it, and the one
/// reported is the first refused in the caller's order (the keys may have been reordered).
fn check_and_partition(
    keys: &mut [ExportKey],
    below: u16,
    first: usize,
) -> Result<Part, BuildError> {
    let (mut front, mut back) = (0, keys.len());
    let (mut low_len, mut high_len) = (0, 0);
    let mut refused = false;
    'scan: loop {
        // Invariant: keys before `front` are low, keys from `back` on are high, all checked;
        // keys in between are unchecked and unmoved.
        while let Some(key) = keys.get(front).filter(|_| front < back) {
            if check_key(key).is_err() {
                refused = true;
                break 'scan;
            }
            if !is_low(key, below) {
                break;
            }
            low_len += encoded_key_len(key);
            front += 1;
        }
        while let Some(key) = back
            .checked_sub(1)
            .filter(|last| *last > front)
            .and_then(|last| keys.get(last))
        {
            if check_key(key).is_err() {
                refused = true;
                break 'scan;
            }
            if is_low(key, below) {
                break;
            }
            high_len += encoded_key_len(key);
            back -= 1;
        }
        if back <= front + 1 {
            // Done; a key left at `front` (checked: high) belongs to the high part.
            if let Some(key) = keys.get(front).filter(|_| front < back) {
                high_len += encoded_key_len(key);
            }
            break;
        }
        // keys[front] is high and keys[back - 1] low, both checked: they trade places.
        if let (Some(high), Some(low)) = (keys.get(front), keys.get(back - 1)) {
            high_len += encoded_key_len(high);
            low_len += encoded_key_len(low);
        }
        keys.swap(front, back - 1);
        front += 1;
        back -= 1;
    }
    if refused {
        // The first refused key among those not yet checked (which have not moved).
        let (index, reason) = keys
            .get(front..back)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .find_map(|(offset, key)| check_key(key).err().map(|reason| (front + offset, reason)))
            .ok_or(BuildError::Internal)?;
        return Err(BuildError::InvalidKey {
            index: first + index,
            reason,
        });
    }
    Ok(Part {
        low: front,
        low_len,
        high_len,
    })
}

fn is_low(key: &ExportKey, below: u16) -> bool {
    u16::from(key.key_data.as_bytes()[0]) < below
}

/// Moves the keys whose first byte is below `below` to the front; returns how many there are.
/// Keys are random, so the parts have the expected sizes; skewed keys only lose speed.
fn partition(keys: &mut [ExportKey], below: u16) -> usize {
    let (mut front, mut back) = (0, keys.len());
    loop {
        while front < back && is_low(&keys[front], below) {
            front += 1;
        }
        while front < back && !is_low(&keys[back - 1], below) {
            back -= 1;
        }
        if front >= back {
            return front;
        }
        keys.swap(front, back - 1);
        front += 1;
        back -= 1;
    }
}

/// Longest encoded key: tag and length 2, key_data 18, transmission risk 2, rolling start 6,
/// rolling period 3, report type 2, days since onset 6 (typically 31 in all).
const MAX_KEY_LEN: usize = 39;
/// [`write_keys`] writes each key into a window of `out` this long (at least [`MAX_KEY_LEN`], a
/// fixed-size array, so the bytes go straight in without a check each); only the key's own
/// bytes are written, the rest of the window is the next key's.
const KEY_WINDOW: usize = 48;
/// Field 7 (`keys`), length-delimited.
const KEYS_TAG: u8 = (KEYS_FIELD << 3 | 2) as u8;

/// Length of `key`'s encoding by [`write_keys`] (field 7 tag and length included).
fn encoded_key_len(key: &ExportKey) -> usize {
    let mut len = 2 + 2 + KEY_LENGTH;
    len += 1 + varint_len(u32::from(key.transmission_risk));
    len += 1 + varint_len(key.rolling_start_number);
    if key.rolling_period != DEFAULT_ROLLING_PERIOD {
        len += 1 + varint_len(key.rolling_period);
    }
    if let Some(report_type) = key.report_type {
        len += 1 + varint_len(u32::from(report_type.value()));
    }
    if let Some(days) = key.days_since_onset {
        len += 1 + varint_len(zigzag(days));
    }
    len
}

/// Writes each of `keys` as field 7 (`keys`) of a `TemporaryExposureKeyExport`, one after the
/// other from the start of `out`, as prost would (see [`to_proto_key`]), without building a
/// message: straight into `out` (no buffer per key, whose copy out stalled on its own stores),
/// the message length computed first. Returns the length written, or `None` when `out` is too
/// short. The keys must have passed [`check_key`].
fn write_keys(keys: &[ExportKey], out: &mut [u8]) -> Option<usize> {
    let mut position = 0;
    for key in keys {
        let len = encoded_key_len(key);
        if len > MAX_KEY_LEN {
            return None;
        }
        let window = out
            .get_mut(position..position + KEY_WINDOW)
            .and_then(|window| <&mut [u8; KEY_WINDOW]>::try_from(window).ok());
        if let Some(window) = window {
            encode_key(window, key, len);
        } else {
            // The last few keys: through a copy.
            let mut window = [0; KEY_WINDOW];
            encode_key(&mut window, key, len);
            out.get_mut(position..position + len)?
                .copy_from_slice(window.get(..len)?);
        }
        position += len;
    }
    Some(position)
}

/// `key`, of encoded length `len` (at most [`MAX_KEY_LEN`]), at the start of `window`.
fn encode_key(window: &mut [u8; KEY_WINDOW], key: &ExportKey, len: usize) {
    window[0] = KEYS_TAG;
    // The message length: at most 37, a one-byte varint.
    window[1] = (len - 2) as u8;
    window[2] = 0x0A; // 1: key_data, length-delimited
    window[3] = KEY_LENGTH as u8;
    window[4..4 + KEY_LENGTH].copy_from_slice(key.key_data.as_bytes());
    let mut at = 4 + KEY_LENGTH;
    at = put(window, at, 0x10); // 2: transmission_risk_level, varint
    at = put_varint(window, at, u32::from(key.transmission_risk));
    at = put(window, at, 0x18); // 3: rolling_start_interval_number, varint
    at = put_varint(window, at, key.rolling_start_number);
    if key.rolling_period != DEFAULT_ROLLING_PERIOD {
        at = put(window, at, 0x20); // 4: rolling_period, varint
        at = put_varint(window, at, key.rolling_period);
    }
    if let Some(report_type) = key.report_type {
        at = put(window, at, 0x28); // 5: report_type, varint
        at = put_varint(window, at, u32::from(report_type.value()));
    }
    if let Some(days) = key.days_since_onset {
        at = put(window, at, 0x30); // 6: days_since_onset_of_symptoms, sint32 (zig-zag varint)
        put_varint(window, at, zigzag(days));
    }
}

/// Puts `byte` at `at` (nothing past the window); returns the next position.
fn put(window: &mut [u8; KEY_WINDOW], at: usize, byte: u8) -> usize {
    if let Some(slot) = window.get_mut(at) {
        *slot = byte;
    }
    at + 1
}

fn put_varint(window: &mut [u8; KEY_WINDOW], mut at: usize, mut value: u32) -> usize {
    while value >= 0x80 {
        at = put(window, at, (value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    put(window, at, value as u8)
}

fn varint_len(value: u32) -> usize {
    // One byte per started group of 7 bits, at least one.
    (32 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// sint32's zig-zag mapping: 0, -1, 1, -2 ... → 0, 1, 2, 3 ...
fn zigzag(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

fn check_key(key: &ExportKey) -> Result<(), &'static str> {
    if i32::try_from(key.rolling_start_number).is_err() {
        return Err("rolling start number beyond int32");
    }
    if !(1..=MAX_ROLLING_PERIOD).contains(&key.rolling_period) {
        return Err("rolling period outside 1..=144");
    }
    if key.transmission_risk > MAX_TRANSMISSION_RISK {
        return Err("transmission risk above 8");
    }
    Ok(())
}

fn check_signature_info(info: &SignatureInfo) -> Result<(), BuildError> {
    let allowed = |text: &str| {
        text.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
    };
    if !allowed(&info.verification_key_id) {
        return Err(BuildError::InvalidSignatureInfo {
            field: "verification_key_id",
        });
    }
    if !allowed(&info.verification_key_version) {
        return Err(BuildError::InvalidSignatureInfo {
            field: "verification_key_version",
        });
    }
    Ok(())
}

/// The generated message of `key` (checked by [`check_key`]): what [`write_keys`] must encode.
#[cfg(test)]
#[allow(deprecated)] // transmission_risk_level: deprecated in GAEN v1.5, still written
fn to_proto_key(key: &ExportKey) -> proto::TemporaryExposureKey {
    let mut message = proto::TemporaryExposureKey {
        key_data: Some(key.key_data.as_bytes().to_vec()),
        ..Default::default()
    };
    message.transmission_risk_level = Some(i32::from(key.transmission_risk));
    message.rolling_start_interval_number =
        Some(i32::try_from(key.rolling_start_number).unwrap_or(i32::MAX));
    message.rolling_period = (key.rolling_period != DEFAULT_ROLLING_PERIOD)
        .then(|| i32::try_from(key.rolling_period).unwrap_or(i32::MAX));
    message.report_type = key
        .report_type
        .map(|report_type| i32::from(report_type.value()));
    message.days_since_onset_of_symptoms = key.days_since_onset;
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::exposure_key::{KeyData, ReportType};

    fn key(byte: u8, rolling_period: u32) -> ExportKey {
        ExportKey {
            key_data: KeyData::new([byte; 16]),
            rolling_start_number: 2_733_120,
            rolling_period,
            transmission_risk: 4,
            report_type: Some(ReportType::CONFIRMED_TEST),
            days_since_onset: Some(-3),
        }
    }

    /// The export's protobuf (without the header) as prost encodes it from `keys`, in order.
    fn prost_encoding(keys: &[ExportKey]) -> Vec<u8> {
        proto::TemporaryExposureKeyExport {
            start_timestamp: Some(header().start_timestamp),
            end_timestamp: Some(header().end_timestamp),
            region: Some(header().region),
            batch_num: Some(1),
            batch_size: Some(1),
            signature_infos: vec![header().signature_info.to_proto()],
            keys: keys.iter().map(to_proto_key).collect(),
            revised_keys: Vec::new(),
        }
        .encode_to_vec()
    }

    fn header() -> ExportHeader {
        ExportHeader {
            region: "440".into(),
            start_timestamp: 1_600_000_000,
            end_timestamp: 1_600_086_400,
            signature_info: SignatureInfo::ecdsa_p256_sha256("440", "v1"),
        }
    }

    #[test]
    fn export_bin_is_the_header_then_exactly_what_prost_encodes() {
        let mut keys = vec![
            key(9, 144),
            key(3, 72),
            ExportKey {
                report_type: None,
                days_since_onset: None,
                ..key(200, 1)
            },
            ExportKey {
                days_since_onset: Some(i32::MIN),
                rolling_start_number: i32::MAX as u32,
                ..key(0, 144)
            },
        ];
        let bin = encode_export_bin(&header(), &mut keys).expect("encodes");
        assert_eq!(&bin[..16], HEADER);

        let expected = proto::TemporaryExposureKeyExport {
            start_timestamp: Some(1_600_000_000),
            end_timestamp: Some(1_600_086_400),
            region: Some("440".into()),
            batch_num: Some(1),
            batch_size: Some(1),
            signature_infos: vec![header().signature_info.to_proto()],
            keys: keys.iter().map(to_proto_key).collect(),
            revised_keys: Vec::new(),
        };
        assert_eq!(&bin[16..], expected.encode_to_vec().as_slice());
        let first = [0u8, 3, 9, 200];
        for (key, byte) in keys.iter().zip(first) {
            assert_eq!(key.key_data.as_bytes()[0], byte, "sorted by key bytes");
        }
    }

    #[test]
    fn every_key_encodes_byte_for_byte_as_prost_does() {
        let rng = ring::rand::SystemRandom::new();
        let mut random = [0u8; 16];
        let starts = [0, 1, 127, 128, 16_383, 16_384, 2_733_120, i32::MAX as u32];
        let periods = [1, 2, 127, 128, 143, 144];
        let reports = [None, Some(0), Some(1), Some(5)];
        let onsets = [
            None,
            Some(0),
            Some(-1),
            Some(63),
            Some(-64),
            Some(14),
            Some(i32::MIN),
            Some(i32::MAX),
        ];
        let mut checked = 0;
        for start in starts {
            for period in periods {
                for risk in [0, 1, 4, 8] {
                    for report in reports {
                        for days in onsets {
                            ring::rand::SecureRandom::fill(&rng, &mut random).expect("random");
                            let key = ExportKey {
                                key_data: KeyData::new(random),
                                rolling_start_number: start,
                                rolling_period: period,
                                transmission_risk: risk,
                                report_type: report.and_then(ReportType::new),
                                days_since_onset: days,
                            };
                            let mut ours = vec![0; MAX_KEY_LEN];
                            let len = write_keys(&[key], &mut ours).expect("fits");
                            ours.truncate(len);
                            assert_eq!(len, encoded_key_len(&key));
                            let mut theirs = Vec::new();
                            prost::encoding::message::encode(7, &to_proto_key(&key), &mut theirs);
                            assert_eq!(ours, theirs, "{key:?}");
                            assert!(ours.len() <= MAX_KEY_LEN);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 8 * 6 * 4 * 4 * 8);
    }

    #[test]
    fn a_run_of_keys_encodes_as_prost_encodes_the_repeated_field() {
        // With and without report type and days since onset, full-day and partial periods, varint
        // boundaries; the last keys go through the copy instead of the window.
        let mut keys = random_keys(300);
        keys.extend([
            ExportKey {
                report_type: None,
                days_since_onset: None,
                ..key(1, 144)
            },
            ExportKey {
                report_type: None,
                ..key(2, 1)
            },
            ExportKey {
                days_since_onset: None,
                ..key(3, 143)
            },
            ExportKey {
                report_type: ReportType::new(0),
                days_since_onset: Some(0),
                ..key(4, 128)
            },
            ExportKey {
                days_since_onset: Some(i32::MIN),
                rolling_start_number: i32::MAX as u32,
                transmission_risk: 0,
                ..key(5, 127)
            },
            ExportKey {
                days_since_onset: Some(i32::MAX),
                rolling_start_number: 0,
                ..key(6, 144)
            },
        ]);
        for start in [0, keys.len() - 8, keys.len() - 1, keys.len()] {
            let run = &keys[start..];
            let len: usize = run.iter().map(encoded_key_len).sum();
            let mut ours = vec![0xEE; len];
            assert_eq!(write_keys(run, &mut ours), Some(len));
            let mut theirs = Vec::new();
            for key in run {
                prost::encoding::message::encode(7, &to_proto_key(key), &mut theirs);
            }
            assert_eq!(ours, theirs, "keys {start}..");
            if len > 0 {
                // One byte short: refused, and nothing written past the end.
                let mut short = vec![0xEE; len];
                assert_eq!(write_keys(run, &mut short[..len - 1]), None);
                assert_eq!(short[len - 1], 0xEE);
            }
        }
    }

    #[test]
    fn skewed_and_duplicate_keys_give_prost_of_the_standard_order() {
        // Enough keys for two threads; a third share their first 15 bytes, some keys appear
        // several times with different metadata, some exactly twice.
        let mut keys = random_keys(90_000);
        for (index, key) in keys.iter_mut().enumerate() {
            let mut data = *key.key_data.as_bytes();
            match index % 6 {
                0 | 1 => data[..15].copy_from_slice(&[0x80; 15]),
                2 => data = [(index % 7) as u8; 16],
                _ => {}
            }
            key.key_data = KeyData::new(data);
        }
        let twins: Vec<ExportKey> = keys.iter().step_by(97).copied().collect();
        keys.extend(twins);
        let mut expected = keys.clone();
        expected.sort_by(|a, b| {
            let meta = |key: &ExportKey| {
                (
                    key.rolling_start_number,
                    key.rolling_period,
                    key.transmission_risk,
                    key.report_type.map(ReportType::value),
                    key.days_since_onset,
                )
            };
            a.key_data.cmp(&b.key_data).then(meta(a).cmp(&meta(b)))
        });
        let bin = encode_export_bin(&header(), &mut keys).expect("encodes");
        assert!(keys == expected, "sorted as the standard sort does");
        assert!(
            bin[16..] == prost_encoding(&expected)[..],
            "as prost encodes it"
        );
    }

    #[test]
    fn large_slices_sort_on_two_threads_to_the_same_order() {
        let rng = ring::rand::SystemRandom::new();
        let mut random = vec![0u8; 200_000 * 16];
        ring::rand::SecureRandom::fill(&rng, &mut random).expect("random");
        let mut keys: Vec<ExportKey> = random
            .chunks_exact(16)
            .map(|bytes| {
                let mut data = [0; 16];
                data.copy_from_slice(bytes);
                ExportKey {
                    key_data: KeyData::new(data),
                    ..key(0, 144)
                }
            })
            .collect();
        // A skewed slice too: every key in the lower half.
        let mut skewed = keys.clone();
        for key in &mut skewed {
            let mut data = *key.key_data.as_bytes();
            data[0] &= 0x7F;
            key.key_data = KeyData::new(data);
        }
        for keys in [&mut keys, &mut skewed] {
            let mut expected = keys.clone();
            expected.sort_by_key(|key| key.key_data);
            sort_keys(keys);
            assert!(*keys == expected);
        }
    }

    #[test]
    fn checking_while_partitioning_sums_lengths_and_reports_the_first_refused_key() {
        for below in [0x00, 0x01, 0x55, 0x80, 0xFF, 0x100] {
            for count in [0, 1, 2, 3, 10, 1_000] {
                let keys = random_keys(count);
                let mut parted = keys.clone();
                let part = check_and_partition(&mut parted, below, 7).expect("all valid");
                let (low, high) = parted.split_at(part.low);
                assert!(low.iter().all(|key| is_low(key, below)));
                assert!(high.iter().all(|key| !is_low(key, below)));
                assert_eq!(part.low_len, low.iter().map(encoded_key_len).sum::<usize>());
                assert_eq!(
                    part.high_len,
                    high.iter().map(encoded_key_len).sum::<usize>()
                );
                let (mut a, mut b) = (keys, parted);
                a.sort_by(sort::compare);
                b.sort_by(sort::compare);
                assert!(a == b, "the same keys");
            }
            // Refused keys anywhere: the first in the caller's order is reported.
            for bad in [
                vec![0],
                vec![999],
                vec![500, 3],
                vec![998, 999, 1],
                vec![640, 641],
            ] {
                let mut keys = random_keys(1_000);
                for (n, index) in bad.iter().enumerate() {
                    keys[*index].rolling_period = if n % 2 == 0 { 0 } else { 145 };
                }
                let first = *bad.iter().min().expect("one");
                match check_and_partition(&mut keys, below, 10) {
                    Err(BuildError::InvalidKey { index, .. }) => {
                        assert_eq!(index, 10 + first, "{below:#x} {bad:?}")
                    }
                    other => panic!("expected InvalidKey, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn large_exports_report_the_first_refused_key_in_either_half() {
        for bad in [
            vec![80_000],
            vec![80_000, 70_000],
            vec![99_999, 20_000],
            vec![0],
        ] {
            let mut keys = random_keys(100_000);
            for index in &bad {
                keys[*index].transmission_risk = 9;
            }
            let first = *bad.iter().min().expect("one");
            match encode_export_bin(&header(), &mut keys) {
                Err(BuildError::InvalidKey { index, .. }) => assert_eq!(index, first, "{bad:?}"),
                other => panic!("expected InvalidKey at {first}, got {other:?}"),
            }
        }
    }

    /// Random keys with varied metadata, as many as asked.
    fn random_keys(count: usize) -> Vec<ExportKey> {
        let mut random = vec![0u8; count * 18];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .expect("random");
        random
            .chunks_exact(18)
            .map(|draw| {
                let mut data = [0; 16];
                data.copy_from_slice(&draw[..16]);
                ExportKey {
                    key_data: KeyData::new(data),
                    rolling_start_number: 2_944_512 + 144 * u32::from(draw[16] % 14),
                    rolling_period: if draw[17] < 200 {
                        144
                    } else {
                        1 + u32::from(draw[17] % 144)
                    },
                    transmission_risk: draw[17] % 9,
                    report_type: ReportType::new(u32::from(draw[16] % 7)),
                    days_since_onset: (draw[17] % 5 != 0).then(|| i32::from(draw[17] % 28) - 14),
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn built_exports_read_back_verify_and_equal_prost_encoding() {
        let signer = crate::adapters::local_signer::LocalSigner::generate().expect("key");
        // Small (one thread) and large (two threads for sorting, writing and deflating).
        for count in [0, 1, 3, 200_000] {
            let mut keys = random_keys(count);
            let built = build_export(&header(), &mut keys, &signer)
                .await
                .expect("builds");
            assert_eq!(built.key_count, count);
            let parsed = super::super::parse_export_zip(&built.zip).expect("reads back");
            assert_eq!(parsed.export_bin.len(), built.export_bin_len);
            assert!(parsed.verify(signer.public_key()).is_ok());
            assert!(
                signer
                    .public_key()
                    .verify_digest(&built.digest, &built.signature)
            );

            let mut expected_order = keys.clone();
            expected_order.sort_by_key(|key| key.key_data);
            assert!(keys == expected_order, "the caller's keys end up sorted");
            assert!(
                parsed.contents.keys == keys,
                "every key, in order, as stored"
            );
            assert!(
                parsed.export_bin[16..] == prost_encoding(&keys)[..],
                "as prost encodes it"
            );
        }
    }

    #[test]
    fn period_144_is_omitted_and_unknown_metadata_is_absent() {
        let full_day = to_proto_key(&key(1, 144));
        assert_eq!(full_day.rolling_period, None);
        assert_eq!(full_day.rolling_period(), 144);
        let partial = to_proto_key(&key(1, 72));
        assert_eq!(partial.rolling_period, Some(72));
        let unknown = to_proto_key(&ExportKey {
            report_type: None,
            days_since_onset: None,
            ..key(1, 144)
        });
        assert_eq!(unknown.report_type, None);
        assert_eq!(unknown.days_since_onset_of_symptoms, None);
        #[allow(deprecated)]
        let risk = unknown.transmission_risk_level;
        assert_eq!(risk, Some(4));
        assert_eq!(unknown.rolling_start_interval_number, Some(2_733_120));
    }

    #[test]
    fn sorting_compares_bytes_lexicographically_and_is_total() {
        let mut low = [0xFFu8; 16];
        low[0] = 0x01;
        let mut high = [0u8; 16];
        high[0] = 0x02;
        let mut keys = vec![
            ExportKey {
                key_data: KeyData::new(high),
                ..key(0, 144)
            },
            ExportKey {
                rolling_start_number: 5,
                key_data: KeyData::new(low),
                ..key(0, 144)
            },
            ExportKey {
                rolling_start_number: 4,
                key_data: KeyData::new(low),
                ..key(0, 144)
            },
        ];
        sort_keys(&mut keys);
        assert_eq!(keys[0].key_data.as_bytes(), &low);
        assert_eq!(keys[0].rolling_start_number, 4);
        assert_eq!(keys[1].rolling_start_number, 5);
        assert_eq!(keys[2].key_data.as_bytes(), &high);
    }

    #[test]
    fn keys_readers_would_reject_are_refused_with_their_index() {
        let mut keys = vec![key(1, 144), key(2, 0)];
        match encode_export_bin(&header(), &mut keys) {
            Err(BuildError::InvalidKey { index: 1, .. }) => {}
            other => panic!("expected InvalidKey at 1, got {other:?}"),
        }
        let mut keys = vec![ExportKey {
            transmission_risk: 9,
            ..key(1, 144)
        }];
        assert!(encode_export_bin(&header(), &mut keys).is_err());
        let mut keys = vec![ExportKey {
            rolling_start_number: u32::MAX,
            ..key(1, 144)
        }];
        assert!(encode_export_bin(&header(), &mut keys).is_err());
        let mut bad = header();
        bad.signature_info.verification_key_id = "44 0".into();
        assert!(matches!(
            encode_export_bin(&bad, &mut []),
            Err(BuildError::InvalidSignatureInfo { .. })
        ));
    }

    #[test]
    fn export_sig_holds_one_signature_for_batch_one_of_one() {
        let sig = encode_export_sig(&header().signature_info, &[0x30, 0x02, 0x01, 0x00]);
        let list = proto::TekSignatureList::decode(sig.as_slice()).expect("decodes");
        assert_eq!(list.signatures.len(), 1);
        let one = &list.signatures[0];
        assert_eq!((one.batch_num(), one.batch_size()), (1, 1));
        assert_eq!(one.signature(), &[0x30, 0x02, 0x01, 0x00]);
        assert_eq!(
            one.signature_info.as_ref().map(SignatureInfo::from_proto),
            Some(header().signature_info)
        );
    }
}
