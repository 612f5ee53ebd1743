//! Decoding any tracepoint record by its `format` file.
//!
//! The generic eBPF program (`tracepoint_generic`) copies the first
//! [`TP_RECORD_BYTES`] of a record without knowing what is in it. Here each
//! field is read by the name, offset, size, type and sign the kernel
//! publishes in tracefs, so a tracepoint Microscope has never heard of is
//! shown field by field:
//!
//! - integers of 1, 2, 4 or 8 bytes (pointers too) → [`FieldValue::Int`] or
//!   [`FieldValue::Uint`] by the format's `signed:` flag;
//! - `char[N]` arrays → [`FieldValue::Str`] up to the first NUL;
//! - `__data_loc T[]` (a `u32`: low 16 bits the offset of the data from the
//!   start of the record, high 16 bits its length) and `__rel_loc T[]` (the
//!   same, the offset counted from the end of the field) → a string for
//!   `char`, bytes otherwise;
//! - anything else (other arrays, structs) → [`FieldValue::Bytes`].
//!
//! A field that lies beyond the copied bytes is [`FieldValue::Missing`]; a
//! dynamic array cut off by the copy keeps what was copied. The `common_*`
//! fields are never decoded: the kernel overwrites them with a pointer
//! before BPF programs run (see [`probes_common::TP_SLOTS`]); the event's
//! header carries the pid instead.

use crate::tracefs::{Format, FormatField};
use microscope_wire::{FieldInfo, FieldValue};
use probes_common::TP_RECORD_BYTES;

/// The fields a client sees for `format`: every non-`common_*` field, with
/// the meaning `meaning` knows for it (or none).
pub fn field_infos(format: &Format, meaning: impl Fn(&str) -> Option<String>) -> Vec<FieldInfo> {
    format
        .own_fields()
        .map(|f| FieldInfo {
            name: f.name.clone(),
            c_type: f.field.c_type.clone(),
            meaning: meaning(&f.name).unwrap_or_default(),
        })
        .collect()
}

/// Decodes `record` (the copied bytes of one record) field by field, in the
/// order of [`field_infos`].
pub fn decode_fields(format: &Format, record: &[u8]) -> Vec<FieldValue> {
    let record = &record[..record.len().min(TP_RECORD_BYTES)];
    format
        .own_fields()
        .map(|f| decode_field(f, record))
        .collect()
}

fn decode_field(f: &FormatField, record: &[u8]) -> FieldValue {
    let offset = f.field.offset as usize;
    let size = f.field.size as usize;
    let c_type = f.field.c_type.as_str();
    let Some(raw) = record.get(offset..offset + size) else {
        return FieldValue::Missing;
    };
    let data_loc = c_type.starts_with("__data_loc");
    let rel_loc = c_type.starts_with("__rel_loc");
    if (data_loc || rel_loc) && size == 4 {
        let loc = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mut start = (loc & 0xffff) as usize;
        if rel_loc {
            start += offset + size;
        }
        let len = (loc >> 16) as usize;
        if start >= record.len() {
            return FieldValue::Missing;
        }
        let bytes = &record[start..(start + len).min(record.len())];
        return if c_type.contains("char") {
            FieldValue::Str(c_str(bytes))
        } else {
            FieldValue::Bytes(bytes.to_vec())
        };
    }
    if c_type.ends_with(']') {
        return if c_type.starts_with("char") || c_type.contains(" char") {
            FieldValue::Str(c_str(raw))
        } else {
            FieldValue::Bytes(raw.to_vec())
        };
    }
    let unsigned = match size {
        1 => u64::from(raw[0]),
        2 => u64::from(u16::from_le_bytes([raw[0], raw[1]])),
        4 => u64::from(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
        8 => u64::from_le_bytes([
            raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
        ]),
        _ => return FieldValue::Bytes(raw.to_vec()),
    };
    if f.signed && !c_type.contains('*') {
        // Sign-extend from the field's width.
        let shift = 64 - 8 * size as u32;
        FieldValue::Int(((unsigned << shift) as i64) >> shift)
    } else {
        FieldValue::Uint(unsigned)
    }
}

/// Bytes up to the first NUL, as text (invalid UTF-8 replaced).
fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracefs::parse_full_format;

    /// `block:block_rq_issue` on 6.18, abridged.
    const RQ_ISSUE: &str = "name: block_rq_issue\nID: 1234\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\tfield:dev_t dev;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:sector_t sector;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:unsigned int nr_sector;\toffset:24;\tsize:4;\tsigned:0;\n\
\tfield:int error;\toffset:28;\tsize:4;\tsigned:1;\n\
\tfield:char rwbs[8];\toffset:32;\tsize:8;\tsigned:0;\n\
\tfield:char comm[16];\toffset:40;\tsize:16;\tsigned:0;\n\
\tfield:__data_loc char[] cmd;\toffset:56;\tsize:4;\tsigned:0;\n\
\tfield:__rel_loc u8[] blob;\toffset:60;\tsize:4;\tsigned:0;\n\
\tfield:const char * name;\toffset:64;\tsize:8;\tsigned:0;\n\
\tfield:long far;\toffset:300;\tsize:8;\tsigned:1;\n";

    fn record() -> Vec<u8> {
        let mut r = vec![0u8; 128];
        r[0..2].copy_from_slice(&1234u16.to_le_bytes());
        r[8..12].copy_from_slice(&0x0080_0001u32.to_le_bytes());
        r[16..24].copy_from_slice(&987_654_321u64.to_le_bytes());
        r[24..28].copy_from_slice(&8u32.to_le_bytes());
        r[28..32].copy_from_slice(&(-5i32).to_le_bytes());
        r[32..34].copy_from_slice(b"WS");
        r[40..44].copy_from_slice(b"kcat");
        // cmd: 4 bytes "abc\0" at 80.
        r[56..60].copy_from_slice(&((4u32 << 16) | 80).to_le_bytes());
        r[80..84].copy_from_slice(b"abc\0");
        // blob: 3 bytes, 20 bytes after the end of the field (64 + 20 = 84).
        r[60..64].copy_from_slice(&((3u32 << 16) | 20).to_le_bytes());
        r[84..87].copy_from_slice(&[7, 8, 9]);
        r[64..72].copy_from_slice(&0xffff_8880_0000_1000u64.to_le_bytes());
        r
    }

    #[test]
    fn decodes_every_field_shape() {
        let format = parse_full_format("block:block_rq_issue", RQ_ISSUE).unwrap();
        let infos = field_infos(&format, |name| {
            (name == "nr_sector").then(|| "sectors".into())
        });
        let names: Vec<&str> = infos.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "sector",
                "nr_sector",
                "error",
                "rwbs",
                "comm",
                "cmd",
                "blob",
                "name",
                "far"
            ]
        );
        assert_eq!(infos[2].meaning, "sectors");
        assert_eq!(infos[0].meaning, "");
        let values = decode_fields(&format, &record());
        assert_eq!(
            values,
            [
                FieldValue::Uint(0x0080_0001),
                FieldValue::Uint(987_654_321),
                FieldValue::Uint(8),
                FieldValue::Int(-5),
                FieldValue::Str("WS".into()),
                FieldValue::Str("kcat".into()),
                FieldValue::Str("abc".into()),
                FieldValue::Bytes(vec![7, 8, 9]),
                FieldValue::Uint(0xffff_8880_0000_1000),
                FieldValue::Missing,
            ]
        );
    }

    #[test]
    fn short_or_hostile_records_never_panic() {
        let format = parse_full_format("block:block_rq_issue", RQ_ISSUE).unwrap();
        for len in 0..record().len() {
            let values = decode_fields(&format, &record()[..len]);
            assert_eq!(values.len(), 10);
        }
        // A data_loc pointing far past the copy, with a huge length.
        let mut r = record();
        r[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_fields(&format, &r)[6], FieldValue::Missing);
        // A length running past the copy keeps what was copied.
        let mut r = record();
        r[56..60].copy_from_slice(&((500u32 << 16) | 120).to_le_bytes());
        assert_eq!(
            decode_fields(&format, &r)[6],
            FieldValue::Str(String::new())
        );
    }
}
