//! Shared input shapes of Microscope's fuzz targets (`fuzz_targets/`).
//!
//! Every target takes the fuzzer's bytes *as the parser would see them* (a
//! socket stream, a recording file, a format file, manifest text), so real
//! files are seeds as they are (`cargo xtask fuzz` writes them). Where a
//! parser guards its input with a length or a checksum, the first byte of
//! the input can ask for a *repaired* input: the same bytes with every
//! length prefix clamped to what follows and every CRC recomputed, so
//! mutated bodies reach the decoder behind the guard instead of being
//! refused at it. Hand-structured rather than `arbitrary`-derived for that
//! reason: a seed stays a valid input in both modes.

use microscope_wire::{
    FOOTER_MAGIC, FrameDecoder, RECORDING_MAGIC, RECORDING_VERSION, encode_frame,
};
use serde::{Serialize, de::DeserializeOwned};

/// How a target treats its input, from the input's first byte.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    /// Repair length prefixes and checksums before parsing.
    pub repair: bool,
    /// Feed a stream in pieces of this many bytes (1 to 32 768), to
    /// exercise decoders that are pushed partial input.
    pub chunk: usize,
}

/// Splits `data` into its mode byte and the rest.
pub fn split_mode(data: &[u8]) -> Option<(Mode, &[u8])> {
    let (&first, rest) = data.split_first()?;
    let mode = Mode {
        repair: first & 1 == 1,
        chunk: 1 << ((first >> 1) & 0x0f),
    };
    Some((mode, rest))
}

/// Rewrites every frame's `u32` length prefix so that it fits in what
/// follows and under `max_frame`: a stream of whole frames around
/// arbitrary bodies.
pub fn repair_wire_stream(stream: &mut [u8], max_frame: u32) {
    let mut at = 0;
    while let Some(prefix) = stream.get(at..at + 4) {
        let announced = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let room = u32::try_from(stream.len() - at - 4).unwrap_or(u32::MAX);
        let len = announced.min(room).min(max_frame);
        stream[at..at + 4].copy_from_slice(&len.to_le_bytes());
        at += 4 + len as usize;
    }
}

/// The whole of a wire target: mode byte, optional repair, then
/// [`decode_stream`] with the frame limit the receiving side uses
/// (`MAX_CLIENT_FRAME_BYTES` in the helper, `MAX_FRAME_BYTES` in clients).
pub fn fuzz_wire<T>(data: &[u8], max_frame: u32)
where
    T: Serialize + DeserializeOwned,
{
    let Some((mode, stream)) = split_mode(data) else {
        return;
    };
    let mut stream = stream.to_vec();
    if mode.repair {
        repair_wire_stream(&mut stream, max_frame);
    }
    decode_stream::<T>(&stream, mode.chunk, max_frame);
}

/// Pushes `stream` into a [`FrameDecoder`] in `chunk`-byte pieces and
/// decodes every message; each decoded message must survive a round trip
/// (encode, decode, encode gives the same bytes).
pub fn decode_stream<T>(stream: &[u8], chunk: usize, max_frame: u32)
where
    T: Serialize + DeserializeOwned,
{
    let mut decoder = FrameDecoder::<T>::with_max_frame(max_frame);
    for piece in stream.chunks(chunk.max(1)) {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => check_round_trip(&message, max_frame),
                Ok(None) => break,
                Err(err) => {
                    // The connection would be closed with this sentence.
                    assert!(!err.to_string().is_empty());
                    return;
                }
            }
        }
    }
    if let Err(err) = decoder.finish() {
        assert!(!err.to_string().is_empty());
    }
}

fn check_round_trip<T>(message: &T, max_frame: u32)
where
    T: Serialize + DeserializeOwned,
{
    let mut first = Vec::new();
    encode_frame(message, &mut first).expect("a decoded message encodes again");
    let mut decoder = FrameDecoder::<T>::with_max_frame(max_frame);
    decoder.push(&first);
    let again = decoder
        .next_message()
        .expect("a re-encoded message decodes")
        .expect("a re-encoded message is one whole frame");
    assert_eq!(decoder.buffered(), 0, "a frame decodes to its last byte");
    let mut second = Vec::new();
    encode_frame(&again, &mut second).expect("a decoded message encodes again");
    assert_eq!(first, second, "encode(decode(encode(m))) == encode(m)");
}

/// Bytes of a recording's header prefix: magic, version, length, CRC.
const HEADER_PREFIX: usize = 16;
/// Bytes before a recording frame's body: length, CRC.
const FRAME_PREFIX: usize = 8;
/// Bytes of a recording's footer.
const FOOTER_LEN: usize = 16;

/// Makes `file` a recording that passes every guard of the reader: magic
/// and version, header length and CRC, each frame's length (clamped to what
/// follows) and CRC, and — when the file ends with the footer magic — the
/// footer's CRC, pointing at the last frame (where a writer puts the index).
pub fn repair_recording(file: &mut [u8]) {
    if file.len() < HEADER_PREFIX {
        return;
    }
    let has_footer = file.len() >= HEADER_PREFIX + FOOTER_LEN
        && file[file.len() - FOOTER_LEN..].starts_with(&FOOTER_MAGIC);
    let frames_end = if has_footer {
        file.len() - FOOTER_LEN
    } else {
        file.len()
    };
    file[..4].copy_from_slice(&RECORDING_MAGIC);
    file[4..8].copy_from_slice(&RECORDING_VERSION.to_le_bytes());
    let header_len = fix_length(file, 8, frames_end - HEADER_PREFIX);
    let header_crc = crc32fast::hash(&file[HEADER_PREFIX..HEADER_PREFIX + header_len]);
    file[12..16].copy_from_slice(&header_crc.to_le_bytes());

    let mut at = HEADER_PREFIX + header_len;
    let mut last_frame = None;
    while at + FRAME_PREFIX <= frames_end {
        let len = fix_length(file, at, frames_end - at - FRAME_PREFIX);
        let body = at + FRAME_PREFIX..at + FRAME_PREFIX + len;
        let crc = crc32fast::hash(&file[body.clone()]);
        file[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        last_frame = Some(at);
        at = body.end;
    }
    if has_footer {
        let footer = file.len() - FOOTER_LEN;
        if let Some(index_at) = last_frame {
            file[footer + 4..footer + 12].copy_from_slice(&(index_at as u64).to_le_bytes());
        }
        let crc = crc32fast::hash(&file[footer..footer + 12]);
        file[footer + 12..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Clamps the `u32` length at `at` to `room` and to the frame limit;
/// returns it.
fn fix_length(file: &mut [u8], at: usize, room: usize) -> usize {
    let announced = u32::from_le_bytes([file[at], file[at + 1], file[at + 2], file[at + 3]]);
    let room = u32::try_from(room).unwrap_or(u32::MAX);
    let len = announced.min(room).min(microscope_wire::MAX_FRAME_BYTES);
    file[at..at + 4].copy_from_slice(&len.to_le_bytes());
    len as usize
}
