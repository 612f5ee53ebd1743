//! Framing: preamble, length-prefixed frames, and the push-based decoder.

use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

/// First four bytes of every connection, in both directions.
pub const MAGIC: [u8; 4] = *b"MSCP";
/// Version of the protocol in this crate. Bump it on any change to
/// the messages; peers with another version refuse each other clearly.
/// v3: the process filter is each client's own ([`crate::ClientMessage::SetFilter`]),
/// client frames are limited to [`MAX_CLIENT_FRAME_BYTES`], and frame-name
/// tables may arrive in several stack batches.
/// v4: probe packs: [`crate::HelperMessage::PackData`] (counters and histograms of a
/// pack's maps), verifier logs on request, named field values.
/// v5: what tracing costs: [`crate::ClientMessage::WatchCost`],
/// [`crate::HelperMessage::CostWatch`] and [`crate::HelperMessage::Cost`]
/// (BPF run time and runs per program, events, ring-buffer fill and drops
/// per probe, the helper's CPU and memory). Both enums only gained
/// variants at their end, so recordings (which store helper messages)
/// made before decode unchanged.
/// v5 also: [`crate::ProbeOptions::count_only`] (a tracepoint counted in the kernel,
/// reported in [`crate::Aggregates::functions`]).
/// v6: pack stacks: [`crate::ProbeKind::TimeStacks`] (a pack probe whose stack
/// counts are nanoseconds); pack probes' stacks arrive in
/// [`crate::HelperMessage::Stacks`] like the profiler's.
pub const PROTOCOL_VERSION: u32 = 6;
/// Largest frame a client accepts from the helper (16 MiB). The helper
/// splits batches and frame-name tables well below this; a larger length
/// prefix means a corrupt or hostile peer.
pub const MAX_FRAME_BYTES: u32 = 16 << 20;
/// Largest frame the helper accepts from a client (16 KiB). Client messages
/// are small (a probe id, a filter), so a connection can never make the
/// helper buffer more than this for a half-sent frame.
pub const MAX_CLIENT_FRAME_BYTES: u32 = 16 << 10;

/// What went wrong while decoding the byte stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// The peer does not speak this protocol at all.
    #[error(
        "the peer is not a Microscope helper or client (expected magic {expected:?}, got {found:?})"
    )]
    BadMagic {
        /// [`MAGIC`].
        expected: [u8; 4],
        /// What arrived instead.
        found: [u8; 4],
    },
    /// The peer speaks another version of the protocol.
    #[error(
        "protocol version mismatch: this side speaks v{ours}, the peer speaks v{theirs}; \
         run a helper and an app built from the same Microscope release"
    )]
    VersionMismatch {
        /// [`PROTOCOL_VERSION`].
        ours: u32,
        /// The peer's version.
        theirs: u32,
    },
    /// A frame announced a length above the decoder's limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit; the stream is corrupt")]
    FrameTooLarge {
        /// Announced length.
        len: u32,
        /// The limit ([`MAX_FRAME_BYTES`] or [`MAX_CLIENT_FRAME_BYTES`]).
        max: u32,
    },
    /// A frame's bytes do not decode as a message.
    #[error("malformed frame of {len} bytes: {reason}")]
    Malformed {
        /// Length of the frame body.
        len: usize,
        /// postcard's description of the problem.
        reason: String,
    },
    /// A message could not be encoded (a bug on the sending side).
    #[error("could not encode a message: {reason}")]
    Encode {
        /// postcard's description of the problem.
        reason: String,
    },
    /// The stream ended in the middle of a frame.
    #[error("the stream ended inside a frame ({buffered} bytes of an unfinished frame)")]
    Truncated {
        /// Bytes held when the stream ended.
        buffered: usize,
    },
}

/// The 8 bytes that open a connection: [`MAGIC`] then a little-endian version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preamble {
    /// Protocol version of the sender.
    pub version: u32,
}

impl Preamble {
    /// Size of an encoded preamble.
    pub const LEN: usize = 8;

    /// This build's preamble.
    pub fn current() -> Self {
        Self {
            version: PROTOCOL_VERSION,
        }
    }

    /// Encodes the preamble.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..].copy_from_slice(&self.version.to_le_bytes());
        out
    }

    /// Decodes a preamble without judging its version.
    pub fn parse(bytes: [u8; Self::LEN]) -> Result<Self, WireError> {
        let [m0, m1, m2, m3, v0, v1, v2, v3] = bytes;
        let found = [m0, m1, m2, m3];
        if found != MAGIC {
            return Err(WireError::BadMagic {
                expected: MAGIC,
                found,
            });
        }
        Ok(Self {
            version: u32::from_le_bytes([v0, v1, v2, v3]),
        })
    }

    /// Decodes a preamble and checks that it speaks [`PROTOCOL_VERSION`].
    pub fn check(bytes: [u8; Self::LEN]) -> Result<Self, WireError> {
        let preamble = Self::parse(bytes)?;
        if preamble.version != PROTOCOL_VERSION {
            return Err(WireError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: preamble.version,
            });
        }
        Ok(preamble)
    }
}

/// Appends `message` to `out` as one frame (length prefix + postcard body).
pub fn encode_frame<T: Serialize>(message: &T, out: &mut Vec<u8>) -> Result<(), WireError> {
    let body = postcard::to_allocvec(message).map_err(|err| WireError::Encode {
        reason: err.to_string(),
    })?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME_BYTES)
        .ok_or(WireError::FrameTooLarge {
            len: u32::MAX,
            max: MAX_FRAME_BYTES,
        })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// Push-based frame decoder: [`push`](Self::push) bytes, then call
/// [`next_message`](Self::next_message) until it returns `Ok(None)`.
///
/// It never does I/O and never panics on any input; after an error the stream
/// is unusable and the connection should be closed.
#[derive(Debug)]
pub struct FrameDecoder<T> {
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
    /// Largest frame body accepted.
    max_frame: u32,
    _message: PhantomData<fn() -> T>,
}

impl<T> Default for FrameDecoder<T> {
    fn default() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            max_frame: MAX_FRAME_BYTES,
            _message: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> FrameDecoder<T> {
    /// An empty decoder accepting frames up to [`MAX_FRAME_BYTES`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty decoder accepting frames up to `max_frame` bytes (the helper
    /// reads clients with [`MAX_CLIENT_FRAME_BYTES`]).
    pub fn with_max_frame(max_frame: u32) -> Self {
        Self {
            max_frame,
            ..Self::default()
        }
    }

    /// Adds bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        // Compact before growing so a long-lived connection's buffer stays
        // about one frame in size.
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next whole message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<T>, WireError> {
        let rest = &self.buf[self.pos..];
        let Some((len_bytes, body)) = rest.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(*len_bytes);
        if len > self.max_frame {
            return Err(WireError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let len = len as usize;
        let Some(body) = body.get(..len) else {
            return Ok(None);
        };
        let message = postcard::from_bytes(body).map_err(|err| WireError::Malformed {
            len,
            reason: err.to_string(),
        })?;
        self.pos += 4 + len;
        Ok(Some(message))
    }

    /// Call when the peer closed the stream: an error if it stopped mid-frame.
    pub fn finish(&self) -> Result<(), WireError> {
        match self.buffered() {
            0 => Ok(()),
            buffered => Err(WireError::Truncated { buffered }),
        }
    }
}
