//! The probe pack parser: `Pack::from_files` on a `pack.toml` and subsystem
//! files, then merging the pack with the built-in one.
//!
//! Input: the text of `pack.toml`, then each other file's text, separated
//! by NUL bytes (which TOML text cannot contain).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microscope_catalogue::{Catalogue, PACK_MANIFEST, Pack};

fn builtin() -> &'static Pack {
    static PACK: OnceLock<Pack> = OnceLock::new();
    PACK.get_or_init(Pack::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let manifest = parts.next().unwrap_or_default();
    let names: Vec<String> = (0..).map(|i| format!("file{i}.toml")).take(16).collect();
    let mut files = vec![(PACK_MANIFEST, manifest)];
    files.extend(names.iter().map(String::as_str).zip(parts));
    let pack = match Pack::from_files("fuzz", &files) {
        Ok(pack) => pack,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    if let Err(err) = Catalogue::from_packs(vec![builtin().clone(), pack]) {
        assert!(!err.to_string().is_empty());
    }
});
