//! Sorting export keys: by their 16 bytes (`bytes.Compare`, as the reference server does), then
//! any run of equal keys by metadata, so the order is total and depends only on the set of keys.
//! The same order as `sort_unstable_by(|a, b| compare(a, b))`, which the tests hold it to.
//!
//! A most-significant-digit radix sort, because a comparison sort of a million 36-byte keys was
//! most of the export's "sort + protobuf" time (~40 ms of ~85 on one core of the project
//! machine; `benches/export.rs`), and the random keys suit a radix sort perfectly:
//! - one in-place American-flag pass on the first byte (no second buffer: a million keys are
//!   36 MB, and fresh memory costs ~0.35 ms per MB in page faults here);
//! - each of the 256 buckets (~4,000 keys, in L2 cache) is then distributed on the next 8 to 12
//!   bits through a small scratch buffer, reused from bucket to bucket, and the tiny groups left
//!   (one or two keys each) are insertion-sorted;
//! - each finished bucket is handed to the caller while it is still in cache, so `export.bin` is
//!   written from cache, not from memory ([`sort_in_runs`]).
//!
//! Skewed keys (shared prefixes, duplicates) only cost speed: buckets too large for the scratch
//! buffer are split in place again, groups too large for insertion sort are distributed again,
//! and keys equal in all 128 bits are ordered by metadata; every step is O(n) per digit.
//!
//! Measured (`benches/export.rs`, a million keys): "sort + protobuf" 82-87 -> 56-58 ms on one
//! core, 49-52 -> 29-31 ms on two.
//!
//! Hand-written (~170 lines) rather than a crate: `radsort` sorts least-significant digit first
//! through a second buffer (16 passes over 36 MB for a 16-byte key, and 36 MB more against the
//! 256 MB bar); `rdst` (3,000 lines, rayon optional, last release 2024-02) could sort in place by
//! the key bytes and the metadata as further levels, but not hand each bucket over while it is in
//! cache, which is what makes writing `export.bin` cheap, nor fit our own two-thread split
//! (`build.rs`).

use std::cmp::Ordering;

use super::ExportKey;

/// Groups this small are insertion-sorted.
const INSERTION_MAX: usize = 16;
/// Buckets up to this many keys (576 KB) are distributed through the scratch buffer; larger
/// ones in place.
const SCRATCH_MAX: usize = 1 << 14;
/// Bits of an in-place pass (256 buckets).
const IN_PLACE_BITS: u32 = 8;
/// Most bits of one scratch pass: 4,096 groups for a ~4,000-key bucket.
const MAX_BITS: u32 = 12;
const KEY_BITS: u32 = 128;

/// The order of export files: key bytes, then metadata.
pub(super) fn compare(a: &ExportKey, b: &ExportKey) -> Ordering {
    key_number(a)
        .cmp(&key_number(b))
        .then_with(|| metadata(a).cmp(&metadata(b)))
}

/// Sorts `keys` (see the module documentation).
pub(super) fn sort(keys: &mut [ExportKey]) {
    sort_in_runs(keys, |_| true);
}

/// Sorts `keys` and hands `done` the sorted slice in consecutive runs, first to last, each as
/// soon as it is final. Stops handing runs over when `done` returns false; returns whether it
/// never did.
pub(super) fn sort_in_runs(
    keys: &mut [ExportKey],
    mut done: impl FnMut(&[ExportKey]) -> bool,
) -> bool {
    // One allocation, the size of the largest group the scratch buffer takes.
    let mut scratch = Vec::with_capacity(keys.len().min(SCRATCH_MAX));
    if keys.len() <= SCRATCH_MAX {
        sort_group(keys, &mut scratch, 0);
        return done(keys);
    }
    let ends = distribute_in_place(keys, 0);
    let mut start = 0;
    for end in ends {
        let Some(bucket) = keys.get_mut(start..end) else {
            return false;
        };
        sort_group(bucket, &mut scratch, IN_PLACE_BITS);
        if !done(bucket) {
            return false;
        }
        start = end;
    }
    true
}

/// Sorts `keys`, which all agree on their first `shift` bits.
fn sort_group(keys: &mut [ExportKey], scratch: &mut Vec<ExportKey>, shift: u32) {
    if keys.len() <= INSERTION_MAX {
        insertion_sort(keys);
        return;
    }
    if shift >= KEY_BITS {
        // All the same key.
        keys.sort_unstable_by_key(metadata);
        return;
    }
    if keys.len() > SCRATCH_MAX {
        let ends = distribute_in_place(keys, shift);
        let mut start = 0;
        for end in ends {
            if let Some(bucket) = keys.get_mut(start..end) {
                sort_group(bucket, scratch, shift + IN_PLACE_BITS);
            }
            start = end;
        }
        return;
    }
    // About one group per key, 256 to 4,096 groups.
    let bits = (usize::BITS - keys.len().leading_zeros()).clamp(IN_PLACE_BITS, MAX_BITS);
    let mut ends = [0u32; 1 << MAX_BITS];
    let ends = ends.get_mut(..1 << bits).unwrap_or_default();
    for key in keys.iter() {
        if let Some(count) = ends.get_mut(digit(key, shift, bits)) {
            *count += 1;
        }
    }
    if ends.iter().any(|&count| count as usize == keys.len()) {
        // One group: nothing to move.
        sort_group(keys, scratch, shift + bits);
        return;
    }
    let mut next = 0;
    for slot in ends.iter_mut() {
        let count = *slot;
        *slot = next;
        next += count;
    }
    // Counting sort through the scratch buffer; `ends[d]` ends up just past group `d`.
    scratch.clear();
    scratch.extend_from_slice(keys);
    for key in scratch.iter() {
        if let Some(head) = ends.get_mut(digit(key, shift, bits)) {
            if let Some(slot) = keys.get_mut(*head as usize) {
                *slot = *key;
            }
            *head += 1;
        }
    }
    let mut start = 0;
    for &end in ends.iter() {
        let end = end as usize;
        if end > start + 1
            && let Some(group) = keys.get_mut(start..end)
        {
            sort_group(group, scratch, shift + bits);
        }
        start = end;
    }
}

/// One American-flag pass on the 8 bits after the first `shift`: moves every key into its
/// bucket, in place, and returns where each bucket ends. Sweeps each bucket's unplaced part and
/// swaps every key there to the next free place of its own bucket, repeating until all are
/// placed (ska_sort's loop: the swaps of one sweep do not wait on each other).
fn distribute_in_place(keys: &mut [ExportKey], shift: u32) -> [usize; 256] {
    let mut ends = [0usize; 256];
    for key in keys.iter() {
        if let Some(count) = ends.get_mut(digit(key, shift, IN_PLACE_BITS)) {
            *count += 1;
        }
    }
    let mut heads = [0usize; 256];
    let mut next = 0;
    for (head, end) in heads.iter_mut().zip(ends.iter_mut()) {
        *head = next;
        next += *end;
        *end = next;
    }
    loop {
        let mut unplaced = false;
        for bucket in 0..256 {
            let (Some(&start), Some(&end)) = (heads.get(bucket), ends.get(bucket)) else {
                break;
            };
            for position in start..end {
                let Some(to) = keys
                    .get(position)
                    .and_then(|key| heads.get_mut(digit(key, shift, IN_PLACE_BITS)))
                else {
                    break;
                };
                // Within the key's bucket, which has room for it (the counts say so).
                if *to < keys.len() {
                    keys.swap(position, *to);
                }
                *to += 1;
                unplaced = true;
            }
        }
        if !unplaced {
            return ends;
        }
    }
}

/// `bits` bits of the key after its first `shift` (zeros past the end).
fn digit(key: &ExportKey, shift: u32, bits: u32) -> usize {
    let rest = key_number(key).checked_shl(shift).unwrap_or(0);
    (rest >> (KEY_BITS - bits)) as usize
}

fn insertion_sort(keys: &mut [ExportKey]) {
    for next in 1..keys.len() {
        let mut at = next;
        while at > 0
            && let (Some(before), Some(here)) = (keys.get(at - 1), keys.get(at))
            && compare(before, here) == Ordering::Greater
        {
            keys.swap(at - 1, at);
            at -= 1;
        }
    }
}

/// The key bytes as one big-endian integer, which orders like the bytes.
fn key_number(key: &ExportKey) -> u128 {
    u128::from_be_bytes(*key.key_data.as_bytes())
}

fn metadata(key: &ExportKey) -> (u32, u32, u8, Option<u8>, Option<i32>) {
    (
        key.rolling_start_number,
        key.rolling_period,
        key.transmission_risk,
        key.report_type.map(|report_type| report_type.value()),
        key.days_since_onset,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::exposure_key::{KeyData, ReportType};

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .expect("random");
        bytes
    }

    /// Random keys with random metadata; `prefix` bytes of every key are fixed to `0xA5`.
    fn keys(count: usize, prefix: usize) -> Vec<ExportKey> {
        random_bytes(count * 19)
            .chunks_exact(19)
            .map(|draw| {
                let mut data = [0xA5; 16];
                data[prefix..].copy_from_slice(&draw[prefix..16]);
                ExportKey {
                    key_data: KeyData::new(data),
                    rolling_start_number: 2_944_512 + 144 * u32::from(draw[16] % 3),
                    rolling_period: 1 + u32::from(draw[17] % 144),
                    transmission_risk: draw[18] % 9,
                    report_type: ReportType::new(u32::from(draw[16] % 7)),
                    days_since_onset: (draw[17] % 3 != 0).then(|| i32::from(draw[18] % 5) - 2),
                }
            })
            .collect()
    }

    /// Sorts a copy both ways, checks the orders agree, and that the runs cover it in order.
    fn check(mut keys: Vec<ExportKey>, what: &str) {
        let mut expected = keys.clone();
        expected.sort_by(compare);
        let mut by_bytes = keys.clone();
        by_bytes.sort_unstable_by_key(|key| key.key_data);
        let mut runs = Vec::new();
        assert!(sort_in_runs(&mut keys, |run| {
            runs.extend_from_slice(run);
            true
        }));
        assert!(keys == expected, "{what}: the standard sort's order");
        assert!(
            runs == keys,
            "{what}: the runs are the sorted slice, in order"
        );
        assert!(
            keys.iter()
                .zip(&by_bytes)
                .all(|(a, b)| a.key_data == b.key_data),
            "{what}: by key bytes first"
        );
    }

    #[test]
    fn random_keys_of_every_size_sort_as_the_standard_sort() {
        for count in [
            0,
            1,
            2,
            15,
            16,
            17,
            100,
            255,
            256,
            4_000,
            SCRATCH_MAX,
            SCRATCH_MAX + 1,
        ] {
            check(keys(count, 0), &format!("{count} random keys"));
        }
        check(keys(300_000, 0), "300,000 random keys");
    }

    #[test]
    fn shared_prefixes_and_duplicates_sort_as_the_standard_sort() {
        // Keys that agree on 1 to 16 leading bytes (16: all the same key, metadata decides), in
        // groups too small and too large for insertion sort and for the scratch buffer.
        for prefix in [1, 2, 3, 7, 8, 14, 15, 16] {
            for count in [20, 3_000, SCRATCH_MAX + 100] {
                check(
                    keys(count, prefix),
                    &format!("{count} keys sharing {prefix} bytes"),
                );
            }
        }
        // Exact duplicates (metadata too), mixed with random keys and near-duplicates.
        let mut mixed = keys(40_000, 0);
        let copies: Vec<ExportKey> = mixed.iter().take(5_000).copied().collect();
        mixed.extend(copies);
        mixed.extend(keys(5_000, 15));
        mixed.extend(vec![mixed[7]; 20_000]);
        check(mixed, "duplicates");
    }

    #[test]
    fn keys_differing_only_in_the_last_bit_or_in_metadata_are_ordered() {
        let key = |last: u8, rolling_start_number: u32, days: Option<i32>| {
            let mut data = [0x11; 16];
            data[15] = last;
            ExportKey {
                key_data: KeyData::new(data),
                rolling_start_number,
                rolling_period: 144,
                transmission_risk: 4,
                report_type: None,
                days_since_onset: days,
            }
        };
        let mut many = Vec::new();
        for round in 0..40u32 {
            many.extend([
                key(1, 5 + round, Some(0)),
                key(0, 5, Some(1)),
                key(0, 5, None),
                key(0, 4, Some(-1)),
            ]);
        }
        check(many.clone(), "near-duplicates");
        let mut sorted = many;
        sort(&mut sorted);
        assert_eq!(sorted[0], key(0, 4, Some(-1)));
        assert_eq!(sorted[40], key(0, 5, None), "None before Some");
        assert_eq!(sorted[80], key(0, 5, Some(1)));
        assert!(sorted[120..].iter().all(|k| k.key_data.as_bytes()[15] == 1));
    }

    #[test]
    fn a_refused_run_stops_the_handover() {
        let mut keys = keys(SCRATCH_MAX * 2, 0);
        let mut runs = 0;
        assert!(!sort_in_runs(&mut keys, |_| {
            runs += 1;
            runs < 3
        }));
        assert_eq!(runs, 3);
    }
}
