//! Shaping a release into files: random padding keys for small releases (so a file's size says
//! little about how many people reported), and several files for large ones.

use std::collections::HashSet;

use ring::rand::SecureRandom;

use super::ExportKey;
use super::build::sort_keys;
use crate::domain::exposure_key::{KEY_LENGTH, KeyData};

/// Random bytes drawn per padding key: the key, then a template index.
const DRAW_LEN: usize = KEY_LENGTH + 8;

/// The system's random number generator failed (ring's `SystemRandom`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// Pads a release of at least one and fewer than `minimum` real keys up to exactly `minimum`
/// keys, appending random ones; returns how many it added (google-en-server.md §1.9).
///
/// Each padding key has 16 fresh random bytes, different from every other key of the release, and
/// copies the metadata (rolling start, rolling period, transmission risk, report type, days since
/// onset) of a real key chosen uniformly at random, so padding cannot be told apart by its
/// metadata either. An empty release stays empty: there is no metadata to copy, and an empty
/// release publishes nothing. The keys are left unsorted; building the file sorts them, which
/// scatters the padding among the real keys.
pub fn pad_release(
    keys: &mut Vec<ExportKey>,
    minimum: usize,
    rng: &dyn SecureRandom,
) -> Result<usize, RandomError> {
    let real = keys.len();
    if real == 0 || real >= minimum {
        return Ok(0);
    }
    let missing = minimum - real;
    let mut taken: HashSet<KeyData> = keys.iter().map(|key| key.key_data).collect();
    let mut random = vec![0; missing * DRAW_LEN];
    rng.fill(&mut random).map_err(|_| RandomError)?;
    keys.reserve(missing);
    for draw in random.chunks_exact(DRAW_LEN) {
        let (key_bytes, index_bytes) = draw.split_at(KEY_LENGTH);
        let key_data = fresh_key(key_bytes, &mut taken, rng)?;
        let index = uniform_index(index_bytes, real, rng)?;
        let template = keys.get(index).copied().ok_or(RandomError)?;
        keys.push(ExportKey {
            key_data,
            ..template
        });
    }
    Ok(missing)
}

/// How many keys each file of a release gets: none for an empty release, otherwise as few files
/// as `max_per_file` allows (at least one key each), balanced so that sizes differ by at most one
/// (a tiny last file would stand out). A `max_per_file` of 0 counts as 1.
pub fn split_sizes(total: usize, max_per_file: usize) -> Vec<usize> {
    let max = max_per_file.max(1);
    let files = total.div_ceil(max);
    if files == 0 {
        return Vec::new();
    }
    let (base, larger) = (total / files, total % files);
    (0..files)
        .map(|file| base + usize::from(file < larger))
        .collect()
}

/// Sorts a whole release by key bytes and cuts it into the files [`split_sizes`] gives, so a
/// rerun over the same keys groups them the same way (google-en-server.md §1.7).
pub fn split_release(keys: &mut [ExportKey], max_per_file: usize) -> Vec<&mut [ExportKey]> {
    sort_keys(keys);
    let mut files = Vec::new();
    let mut rest = keys;
    for size in split_sizes(rest.len(), max_per_file) {
        let (file, tail) = rest.split_at_mut(size);
        files.push(file);
        rest = tail;
    }
    files
}

/// `candidate` if no key of the release has it yet, otherwise fresh random bytes until one is
/// new (for 16 random bytes, practically never).
fn fresh_key(
    candidate: &[u8],
    taken: &mut HashSet<KeyData>,
    rng: &dyn SecureRandom,
) -> Result<KeyData, RandomError> {
    let mut bytes = [0; KEY_LENGTH];
    bytes.copy_from_slice(candidate);
    loop {
        let key = KeyData::new(bytes);
        if taken.insert(key) {
            return Ok(key);
        }
        rng.fill(&mut bytes).map_err(|_| RandomError)?;
    }
}

/// A uniform index below `len` (> 0) from 8 random bytes, redrawing the few values that would
/// bias the remainder.
fn uniform_index(first: &[u8], len: usize, rng: &dyn SecureRandom) -> Result<usize, RandomError> {
    let len = u64::try_from(len).map_err(|_| RandomError)?;
    if len == 0 {
        return Err(RandomError);
    }
    let limit = u64::MAX / len * len;
    let mut bytes = [0; 8];
    bytes.copy_from_slice(first);
    loop {
        let value = u64::from_le_bytes(bytes);
        if value < limit {
            return usize::try_from(value % len).map_err(|_| RandomError);
        }
        rng.fill(&mut bytes).map_err(|_| RandomError)?;
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;

    use super::*;
    use crate::domain::exposure_key::ReportType;

    fn real_keys() -> Vec<ExportKey> {
        (0u8..5)
            .map(|i| ExportKey {
                key_data: KeyData::new([i; 16]),
                rolling_start_number: 2_733_120 + 144 * u32::from(i),
                rolling_period: if i == 0 { 72 } else { 144 },
                transmission_risk: if i % 2 == 0 { 4 } else { 1 },
                report_type: if i == 3 {
                    None
                } else {
                    Some(ReportType::CONFIRMED_TEST)
                },
                days_since_onset: if i == 4 { None } else { Some(i32::from(i) - 3) },
            })
            .collect()
    }

    type Metadata = (u32, u32, u8, Option<ReportType>, Option<i32>);

    fn metadata(key: &ExportKey) -> Metadata {
        (
            key.rolling_start_number,
            key.rolling_period,
            key.transmission_risk,
            key.report_type,
            key.days_since_onset,
        )
    }

    #[test]
    fn a_small_release_is_padded_to_exactly_the_minimum() {
        let mut keys = real_keys();
        let added = pad_release(&mut keys, 1_000, &SystemRandom::new()).expect("random");
        assert_eq!(added, 995);
        assert_eq!(keys.len(), 1_000);
    }

    #[test]
    fn padding_copies_the_metadata_of_randomly_chosen_real_keys() {
        let real = real_keys();
        let mut keys = real.clone();
        pad_release(&mut keys, 1_000, &SystemRandom::new()).expect("random");
        let real_metadata: Vec<Metadata> = real.iter().map(metadata).collect();
        let mut used = HashSet::new();
        for key in &keys[real.len()..] {
            let copied = metadata(key);
            let template = real_metadata.iter().position(|m| *m == copied);
            assert!(template.is_some(), "padding metadata comes from a real key");
            used.extend(template);
        }
        // 995 uniform draws over 5 templates miss one with probability about 5 · 0.8^995.
        assert_eq!(
            used.len(),
            real.len(),
            "every real key serves as a template"
        );
    }

    #[test]
    fn no_padding_key_repeats_a_real_or_another_padding_key() {
        let real = real_keys();
        let mut keys = real.clone();
        pad_release(&mut keys, 2_000, &SystemRandom::new()).expect("random");
        let distinct: HashSet<KeyData> = keys.iter().map(|key| key.key_data).collect();
        assert_eq!(distinct.len(), keys.len());
        assert_eq!(&keys[..real.len()], &real[..], "real keys are untouched");
    }

    #[test]
    fn a_taken_candidate_is_redrawn() {
        let mut taken = HashSet::from([KeyData::new([7; 16])]);
        let key = fresh_key(&[7; 16], &mut taken, &SystemRandom::new()).expect("random");
        assert_ne!(key, KeyData::new([7; 16]));
        assert!(taken.contains(&key));
    }

    #[test]
    fn empty_and_large_enough_releases_are_left_alone() {
        let rng = SystemRandom::new();
        let mut empty = Vec::new();
        assert_eq!(pad_release(&mut empty, 1_000, &rng), Ok(0));
        assert!(empty.is_empty());
        let mut enough = real_keys();
        assert_eq!(pad_release(&mut enough, 5, &rng), Ok(0));
        assert_eq!(enough, real_keys());
    }

    #[test]
    fn uniform_index_stays_in_range() {
        let rng = SystemRandom::new();
        assert_eq!(uniform_index(&[0xFF; 8], 1, &rng), Ok(0));
        for len in [1, 2, 3, 5, 1_000] {
            let index = uniform_index(&u64::MAX.to_le_bytes(), len, &rng).expect("random");
            assert!(index < len);
        }
        assert_eq!(uniform_index(&[0; 8], 0, &rng), Err(RandomError));
    }

    #[test]
    fn split_sizes_are_balanced_and_never_above_the_maximum() {
        assert_eq!(split_sizes(0, 250_000), Vec::<usize>::new());
        assert_eq!(split_sizes(1, 250_000), vec![1]);
        assert_eq!(split_sizes(250_000, 250_000), vec![250_000]);
        assert_eq!(split_sizes(250_001, 250_000), vec![125_001, 125_000]);
        assert_eq!(split_sizes(1_000_000, 250_000), vec![250_000; 4]);
        assert_eq!(split_sizes(500_001, 250_000), vec![166_667; 3]);
        assert_eq!(split_sizes(3, 0), vec![1, 1, 1]);
        for total in [7, 999, 1_000, 1_001, 123_457] {
            let sizes = split_sizes(total, 100);
            assert_eq!(sizes.iter().sum::<usize>(), total);
            assert_eq!(sizes.len(), total.div_ceil(100));
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            assert!(max <= Some(&100));
            assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1));
        }
    }

    #[test]
    fn split_release_cuts_the_sorted_keys_into_those_sizes() {
        let mut keys: Vec<ExportKey> = (0u8..=250)
            .rev()
            .map(|i| ExportKey {
                key_data: KeyData::new([i; 16]),
                ..real_keys()[1]
            })
            .collect();
        let files = split_release(&mut keys, 100);
        let sizes: Vec<usize> = files.iter().map(|file| file.len()).collect();
        assert_eq!(sizes, vec![84, 84, 83]);
        assert_eq!(files[0][0].key_data, KeyData::new([0; 16]));
        assert_eq!(files[1][0].key_data, KeyData::new([84; 16]));
        assert_eq!(files[2][82].key_data, KeyData::new([250; 16]));
    }
}
