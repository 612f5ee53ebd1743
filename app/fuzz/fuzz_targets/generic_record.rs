//! The generic tracepoint record decoder (`microscoped::decode_fields`):
//! any record, read by any format.
//!
//! Input: a mode byte, then either
//! - (even mode byte) a format file's text, a NUL byte, and the record; or
//! - (odd mode byte) a count byte, that many 4-byte field specs (C type,
//!   offset, size, sign), and the record: well-formed formats with
//!   arbitrary offsets and sizes, which reach the decoder every time.

#![no_main]

use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use microscoped::tracefs::parse_full_format;

/// Declarations the kernel uses, each shape the decoder distinguishes.
const C_TYPES: [(&str, &str); 16] = [
    ("int", ""),
    ("unsigned int", ""),
    ("long", ""),
    ("u8", ""),
    ("unsigned short", ""),
    ("pid_t", ""),
    ("const char *", ""),
    ("void *", ""),
    ("char", "[16]"),
    ("unsigned char", "[6]"),
    ("u64", "[4]"),
    ("__data_loc char", "[]"),
    ("__data_loc u8", "[]"),
    ("__rel_loc char", "[]"),
    ("__rel_loc unsigned long", "[]"),
    ("struct foo", ""),
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (text, record) = if mode & 1 == 0 {
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return;
        };
        let Ok(text) = std::str::from_utf8(&rest[..nul]) else {
            return;
        };
        (text.to_owned(), &rest[nul + 1..])
    } else {
        let Some((&count, rest)) = rest.split_first() else {
            return;
        };
        let specs = usize::from(count % 24);
        let Some(spec_bytes) = rest.get(..specs * 4) else {
            return;
        };
        (format_of(spec_bytes), &rest[specs * 4..])
    };
    let Some(format) = parse_full_format("fuzz:record", &text) else {
        return;
    };
    let values = microscoped::decode_fields(&format, record);
    assert_eq!(values.len(), format.own_fields().count());
});

/// A format file with one field per 4-byte spec.
fn format_of(specs: &[u8]) -> String {
    let mut text = String::from("name: record\nID: 7\nformat:\n");
    for (i, spec) in specs.chunks_exact(4).enumerate() {
        let (c_type, array) = C_TYPES[usize::from(spec[0] % 16)];
        let offset = u16::from_le_bytes([spec[1], spec[2] & 0x01]);
        let size = spec[3] & 0x7f;
        let signed = spec[3] >> 7;
        let _ = writeln!(
            text,
            "\tfield:{c_type} f{i}{array};\toffset:{offset};\tsize:{size};\tsigned:{signed};"
        );
    }
    text
}
