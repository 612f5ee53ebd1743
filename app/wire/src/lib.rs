//! Microscope's wire protocol between the helper (`microscoped`) and its
//! clients (the app, the `microscope` command line, tests).
//!
//! A connection starts with each side sending an 8-byte [`Preamble`]: the
//! magic `MSCP` and a protocol version. After that every message is a frame:
//! a little-endian `u32` length, then that many bytes of a `postcard`-encoded
//! [`ClientMessage`] or [`HelperMessage`].
//!
//! [`FrameDecoder`] is a push-based state machine that does no I/O: feed it
//! bytes as they arrive and pull whole messages out. [`Connection`] is a thin
//! blocking client on top of a Unix socket.
//!
//! A recording ([`RecordingWriter`], [`Recording`]) stores the messages a
//! client received, in a file with its own magic (`MSCR`), version,
//! checksummed frames and an index; the format is described at the top of
//! `src/recording.rs`. Only that module touches files; its frame decoding
//! ([`decode_frame`]) is a pure function over bytes. Checksums use
//! `crc32fast` (small, SIMD-accelerated, widely used).
//!
//! Serialization uses [`postcard`]: serde-driven, compact, stable and well
//! maintained, so messages are plain Rust types rather than hand-written byte
//! layouts. These are the wire types; the app converts them into its own model
//! types.
//!
//! # Dependencies and why
//!
//! - `serde` + `postcard`: the messages (above); `crc32fast`: frame checksums.
//! - `nix`: [`monotonic_ns`] and [`thread_cpu_ns`], a safe `clock_gettime`
//!   that the helper and the app share, since the helper's times are
//!   `CLOCK_MONOTONIC` on the wire and std does not expose that clock.
//! - `thiserror`: this library's errors.
//! - `fastrand` (dev): seeded random bodies for the decoders' garbage tests;
//!   `tempfile` (dev): throwaway recordings.

mod client;
mod clock;
mod codec;
mod messages;
mod recording;

pub use client::{ClientError, Connection, DEFAULT_SOCKET_PATH, Writer};
pub use clock::{monotonic_ns, thread_cpu_ns};
pub use codec::{
    FrameDecoder, MAGIC, MAX_CLIENT_FRAME_BYTES, MAX_FRAME_BYTES, PROTOCOL_VERSION, Preamble,
    WireError, encode_frame,
};
pub use messages::{
    Aggregates, Availability, COST_INTERVAL_MS, Capabilities, ClientMessage, CostReport, Event,
    EventBatch, EventData, FieldInfo, FieldValue, Frame, FunctionStats, HelperCost, HelperInfo,
    HelperMessage, MAX_LISTED_FUNCTIONS, PackData, PackHistogram, PackTable, ProbeCost, ProbeInfo,
    ProbeKey, ProbeKind, ProbeOptions, ProbeStats, ProcessFilter, ProgramCost, StackBatch,
    StackCount,
};
pub use recording::{
    Damage, DamageReason, DecodedFrame, EventGlance, FLUSH_INTERVAL, FOOTER_LEN, FOOTER_MAGIC,
    FinishedRecording, FrameBody, Frames, INDEX_INTERVAL_BYTES, INDEX_INTERVAL_FRAMES, IndexEntry,
    IndexSource, ProbeDropTotals, RECORDING_MAGIC, RECORDING_VERSION, RecordedFrame, Recording,
    RecordingError, RecordingHeader, RecordingIndex, RecordingSummary, RecordingTotals,
    RecordingWriter, SwitchGlance, decode_frame,
};
