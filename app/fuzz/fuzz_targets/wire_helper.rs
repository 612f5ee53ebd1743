//! Helper → client: what the app reads from whatever listens on the socket.
//!
//! Input: a mode byte (see `microscope_fuzz::split_mode`), then the bytes
//! after the preamble, as they come off the socket.

#![no_main]

use libfuzzer_sys::fuzz_target;
use microscope_fuzz::fuzz_wire;
use microscope_wire::{HelperMessage, MAX_FRAME_BYTES};

fuzz_target!(|data: &[u8]| fuzz_wire::<HelperMessage>(data, MAX_FRAME_BYTES));
