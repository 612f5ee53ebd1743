//! The recording reader: `Recording::open`, then every frame, then reading
//! from each seek point, on a file made of the input.
//!
//! Input: a mode byte (see `microscope_fuzz::split_mode`; with `repair`,
//! lengths and checksums are made right), then the file.
//!
//! Beyond "never panics": when the index was rebuilt by scanning, the
//! frames the iterator decodes must add up to exactly the totals the scan
//! computed (the scan decodes through borrowed mirrors of the message
//! types, which must agree with the real ones byte for byte).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microscope_fuzz::{repair_recording, split_mode};
use microscope_wire::{IndexSource, Recording, RecordingTotals};

/// One scratch file per fuzzing process.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("microscope-fuzz-{}.mscr", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, file)) = split_mode(data) else {
        return;
    };
    let mut file = file.to_vec();
    if mode.repair {
        repair_recording(&mut file);
    }
    let path = scratch();
    std::fs::write(path, &file).expect("write the scratch recording");
    read_all(path);
    let _ = std::fs::remove_file(path);
});

fn read_all(path: &PathBuf) {
    let recording = match Recording::open(path) {
        Ok(recording) => recording,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    let summary = recording.summary();
    if let Some(damage) = &summary.damage {
        assert!(!damage.to_string().is_empty());
    }
    let mut totals = RecordingTotals::default();
    let mut failed = false;
    for frame in recording.frames().expect("reopen the scratch recording") {
        match frame {
            Ok(frame) => totals.add(frame.recv_ns, &frame.message),
            Err(err) => {
                assert!(!err.to_string().is_empty());
                failed = true;
            }
        }
    }
    if recording.index_source() == IndexSource::Scan {
        assert!(!failed, "a frame the scan accepted fails to decode");
        assert_eq!(totals, recording.index().totals, "scan totals differ");
    }
    for entry in recording.index().entries.iter().take(8) {
        let frames = recording
            .frames_from(entry.offset)
            .expect("reopen the scratch recording");
        for frame in frames.take(2) {
            if let Err(err) = frame {
                assert!(!err.to_string().is_empty());
            }
        }
    }
}
