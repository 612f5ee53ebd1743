//! A pack's BPF object: the map sizes an `[[object]]` sets written into its
//! BTF (`object::prepare`), then the pre-load checks (`object::inspect`).
//! Both read offsets and lengths out of the file, which `check-pack` runs
//! on whatever it is given.
//!
//! Input: the object's bytes.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microscope_catalogue::{ObjectDef, PACK_MANIFEST, Pack, object};

/// An `[[object]]` that sets both sizes of a map named `stackmap` (the
/// name in bcc's offcputime) and of one named `stacks` (the C example's).
fn def() -> &'static ObjectDef {
    static DEF: OnceLock<ObjectDef> = OnceLock::new();
    DEF.get_or_init(|| {
        let manifest = "[pack]\nid = \"fuzz\"\nname = \"Fuzz\"\ndescription = \"Fuzz.\"\nversion = \"0\"\n\n\
            [[object]]\nid = \"o\"\nfile = \"o.bpf.o\"\n\
            maps = { stackmap = { value_size = 1016, max_entries = 16384 }, stacks = { value_size = 64 } }\n";
        let pack = Pack::from_files("fuzz", &[(PACK_MANIFEST, manifest)]).expect("a valid pack");
        pack.objects()[0].clone()
    })
}

fuzz_target!(|data: &[u8]| {
    match object::prepare(def(), data.to_vec()) {
        Ok(bytes) => {
            if let Err(problems) = object::inspect("o.bpf.o", &bytes) {
                assert!(problems.iter().all(|p| !p.is_empty()));
            }
        }
        Err(problems) => assert!(problems.iter().all(|p| !p.is_empty())),
    }
});
