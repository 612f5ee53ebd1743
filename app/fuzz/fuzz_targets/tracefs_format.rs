//! The tracefs `format` file parser (`microscoped::tracefs`).
//!
//! Input: the text of a format file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use microscoped::tracefs::{parse_format, parse_full_format};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fields = parse_format(text);
    let Some(format) = parse_full_format("fuzz:format", text) else {
        return;
    };
    assert!(
        format
            .fields
            .windows(2)
            .all(|pair| pair[0].field.offset <= pair[1].field.offset),
        "fields are in offset order"
    );
    for field in &format.fields {
        assert!(!field.name.is_empty());
        assert!(
            fields.contains_key(&field.name),
            "both parsers see {}",
            field.name
        );
    }
});
