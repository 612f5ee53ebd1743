//! Client → helper: what a hostile local user can send the root helper.
//!
//! Input: a mode byte (see `microscope_fuzz::split_mode`), then the bytes
//! after the preamble, as they come off the socket.

#![no_main]

use libfuzzer_sys::fuzz_target;
use microscope_fuzz::fuzz_wire;
use microscope_wire::{ClientMessage, MAX_CLIENT_FRAME_BYTES};

fuzz_target!(|data: &[u8]| fuzz_wire::<ClientMessage>(data, MAX_CLIENT_FRAME_BYTES));
