//! The zip container of an export file, written directly: the entries arrive already deflated
//! (in parallel, see `deflate.rs`), which the `zip` crate's writer cannot take. Reading uses the
//! `zip` crate (`parse.rs`).
//!
//! Layout (APPNOTE.TXT 6.3.10 §4.3): per entry a local file header and the deflated data, then
//! the central directory, then the end-of-central-directory record. Sizes and CRC-32 are known
//! up front, so there is no data descriptor; no extra fields, comments or zip64. The DOS time is
//! fixed at 1980-01-01 00:00, so the same keys and signature give the same bytes.

use super::deflate::Deflated;

const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY_SIGNATURE: u32 = 0x0605_4b50;
/// Version 2.0 (deflate), made on MS-DOS (no Unix permissions to carry).
const VERSION: u16 = 20;
const METHOD_DEFLATE: u16 = 8;
const DOS_TIME: u16 = 0;
/// 1980-01-01: day 1, month 1, year 0 (= 1980).
const DOS_DATE: u16 = (1 << 5) | 1;
const LOCAL_HEADER_LEN: usize = 30;

/// Length of the local file header of an entry called `name`: the room to leave in front of
/// its compressed data for [`write_zip`].
pub(super) fn local_header_len(name: &str) -> usize {
    LOCAL_HEADER_LEN + name.len()
}

/// The zip of `first` and `rest` (name, deflated data), in that order; `None` when a size or
/// offset does not fit the 32-bit fields (over 4 GiB) or a name is over 64 KiB. When `first`
/// left exactly [`local_header_len`] bytes in front of its data, the zip is built in its buffer.
pub(super) fn write_zip(first: (&str, Deflated), rest: &[(&str, &Deflated)]) -> Option<Vec<u8>> {
    let (first_name, first_entry) = first;
    let mut central = Vec::new();
    let fields = EntryFields::of(first_name, &first_entry)?;
    let mut header = Vec::with_capacity(local_header_len(first_name));
    put_local_header(&mut header, first_name, &fields);
    put_central_header(&mut central, first_name, &fields, 0);
    let mut zip = if first_entry.start == header.len() {
        let mut buf = first_entry.buf;
        buf.get_mut(..header.len())?.copy_from_slice(&header);
        buf
    } else {
        [&header[..], first_entry.data()].concat()
    };
    for (name, entry) in rest {
        let fields = EntryFields::of(name, entry)?;
        let offset = u32::try_from(zip.len()).ok()?;
        put_local_header(&mut zip, name, &fields);
        zip.extend_from_slice(entry.data());
        put_central_header(&mut central, name, &fields, offset);
    }
    let count = u16::try_from(rest.len() + 1).ok()?;
    let central_offset = u32::try_from(zip.len()).ok()?;
    let central_len = u32::try_from(central.len()).ok()?;
    zip.extend_from_slice(&central);
    put32(&mut zip, END_OF_CENTRAL_DIRECTORY_SIGNATURE);
    put16(&mut zip, 0); // this disk
    put16(&mut zip, 0); // disk with the central directory
    put16(&mut zip, count); // entries on this disk
    put16(&mut zip, count); // entries in total
    put32(&mut zip, central_len);
    put32(&mut zip, central_offset);
    put16(&mut zip, 0); // comment length
    Some(zip)
}

fn put_local_header(out: &mut Vec<u8>, name: &str, fields: &EntryFields) {
    put32(out, LOCAL_HEADER_SIGNATURE);
    put16(out, VERSION);
    fields.put_common(out);
    put16(out, 0); // extra field length
    out.extend_from_slice(name.as_bytes());
}

fn put_central_header(out: &mut Vec<u8>, name: &str, fields: &EntryFields, offset: u32) {
    put32(out, CENTRAL_HEADER_SIGNATURE);
    put16(out, VERSION); // made by
    put16(out, VERSION); // needed to extract
    fields.put_common(out);
    put16(out, 0); // extra field length
    put16(out, 0); // comment length
    put16(out, 0); // disk number
    put16(out, 0); // internal attributes
    put32(out, 0); // external attributes
    put32(out, offset);
    out.extend_from_slice(name.as_bytes());
}

/// The fields local and central headers share, from "general purpose flags" to "name length".
struct EntryFields {
    name_len: u16,
    crc32: u32,
    compressed: u32,
    uncompressed: u32,
}

impl EntryFields {
    fn of(name: &str, entry: &Deflated) -> Option<Self> {
        Some(Self {
            name_len: u16::try_from(name.len()).ok()?,
            crc32: entry.crc32,
            compressed: u32::try_from(entry.data().len()).ok()?,
            uncompressed: u32::try_from(entry.uncompressed_len).ok()?,
        })
    }

    fn put_common(&self, out: &mut Vec<u8>) {
        put16(out, 0); // general purpose flags: no data descriptor, no encryption
        put16(out, METHOD_DEFLATE);
        put16(out, DOS_TIME);
        put16(out, DOS_DATE);
        put32(out, self.crc32);
        put32(out, self.compressed);
        put32(out, self.uncompressed);
        put16(out, self.name_len);
    }
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read as _};

    use super::super::deflate::deflate;
    use super::*;

    #[test]
    fn the_zip_crate_reads_both_entries_in_order() {
        let bin = deflate(b"EK Export v1    some protobuf", 40).expect("compresses");
        let sig = deflate(b"signature list", 0).expect("compresses");
        let bytes = write_zip(("export.bin", bin), &[("export.sig", &sig)]).expect("fits");
        let mut archive = ::zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        assert_eq!(archive.len(), 2);
        let names: Vec<_> = archive.file_names().collect();
        assert!(names.contains(&"export.bin") && names.contains(&"export.sig"));
        for (index, (name, content)) in [
            ("export.bin", &b"EK Export v1    some protobuf"[..]),
            ("export.sig", b"signature list"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut file = archive.by_index(index).expect("entry");
            assert_eq!(file.name(), name);
            assert_eq!(file.compression(), ::zip::CompressionMethod::Deflated);
            let mut read = Vec::new();
            file.read_to_end(&mut read).expect("inflates, CRC matches");
            assert_eq!(read, content);
        }
    }

    #[test]
    fn an_entry_without_room_in_front_is_copied_behind_its_header() {
        let bin = deflate(b"EK Export v1    x", 0).expect("compresses");
        let sig = deflate(b"s", 0).expect("compresses");
        let bytes = write_zip(("export.bin", bin), &[("export.sig", &sig)]).expect("fits");
        let mut archive = ::zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let mut read = Vec::new();
        archive
            .by_name("export.bin")
            .expect("entry")
            .read_to_end(&mut read)
            .expect("inflates");
        assert_eq!(read, b"EK Export v1    x");
    }
}
