//! Recordings: the stream of [`HelperMessage`]s a client received, in a file
//! that opens anywhere, without root and without a helper.
//!
//! # Format (version 1)
//!
//! All integers are little-endian.
//!
//! ```text
//! "MSCR"  u32 version  u32 header_len  u32 crc32(header)  header
//! frame*
//! [index frame  footer]            only when the writer finished cleanly
//!
//! frame  = u32 len  u32 crc32(body)  body          (len = body bytes)
//! body   = postcard(FrameBody)                     Message | Index
//! footer = "MSCI"  u64 offset of the index frame  u32 crc32(the 12 bytes before)
//! ```
//!
//! - The header is a postcard [`RecordingHeader`]: when it was made, the
//!   helper and kernel ([`HelperInfo`]), the probe catalogue in use (so
//!   [`Event::probe`](crate::Event::probe) keys resolve to ids) and a note.
//! - A message frame holds a [`RecordedFrame`]: the [`HelperMessage`] exactly
//!   as the client received it (batches, aggregates, probe states, errors)
//!   and `recv_ns`, when it arrived, in ns since the recording started.
//! - Frames are append-only and each carries a CRC-32 of its body, so a file
//!   cut off mid-write (a crash, a full disk, a killed process) still opens
//!   up to its last whole frame; see [`Damage`].
//! - On [`RecordingWriter::finish`] the writer appends an index frame and a
//!   fixed 16-byte footer pointing at it. The index holds an entry about
//!   every [`INDEX_INTERVAL_BYTES`] (frame offset, `recv_ns`, events before
//!   it) for seeking, and the [`RecordingTotals`] (events and drops per
//!   probe, time span) so that opening a large file reads only its header,
//!   footer and index. Without a valid footer (the writer never finished)
//!   [`Recording::open`] scans every frame once, in constant memory, and
//!   rebuilds the same index and totals.
//!
//! # Loss accounting
//!
//! The wire reports losses per probe, not per CPU: every batch carries each
//! streamed probe's kernel drops (ring buffer full) and client drops (this
//! client read too slowly) as running totals. [`RecordingTotals::drops`]
//! keeps, per probe, the first and the latest totals seen, so the losses
//! during the recording are their difference. Per-CPU loss would need a
//! protocol change first.
//!
//! # What is trusted
//!
//! A frame whose CRC does not match is never decoded: reading stops there
//! and the rest of the file is reported as damage. When a valid footer makes
//! the scan unnecessary, a corrupted frame in the middle surfaces as a
//! [`RecordingError::Corrupt`] from [`Frames`] when iteration reaches it.
//!
//! The frame logic ([`decode_frame`]) is a pure function over bytes; only
//! [`RecordingWriter`], [`Recording`] and [`Frames`] touch files.

use crate::ProbeKey;
use crate::{HelperInfo, HelperMessage, MAX_FRAME_BYTES, ProbeInfo, ProbeStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// First four bytes of every recording.
pub const RECORDING_MAGIC: [u8; 4] = *b"MSCR";
/// First four bytes of the footer.
pub const FOOTER_MAGIC: [u8; 4] = *b"MSCI";
/// The format version this build writes and the newest it reads.
pub const RECORDING_VERSION: u32 = 2;
/// The writer adds an index entry when this many bytes of frames were
/// written since the last one (or [`INDEX_INTERVAL_FRAMES`] frames).
pub const INDEX_INTERVAL_BYTES: u64 = 1 << 20;
/// See [`INDEX_INTERVAL_BYTES`].
pub const INDEX_INTERVAL_FRAMES: u64 = 4096;
/// How often the writer pushes buffered frames to the file, bounding what a
/// crash can lose.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Size of the footer: magic, index offset, CRC.
pub const FOOTER_LEN: u64 = 16;
/// Bytes before a frame's body: length and CRC.
const FRAME_PREFIX: usize = 8;
/// Bytes before the header's body: magic, version, length, CRC.
const HEADER_PREFIX: u64 = 16;

/// What a recording says about itself, written once at its start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingHeader {
    /// When the recording started, ms since the Unix epoch (wall clock).
    pub created_unix_ms: u64,
    /// The helper and kernel that produced the data.
    pub helper: HelperInfo,
    /// The probe catalogue in use: maps [`Event::probe`](crate::Event::probe)
    /// keys to ids and kinds.
    pub probes: Vec<ProbeInfo>,
    /// Free text, e.g. the command that made the recording.
    pub note: String,
}

impl RecordingHeader {
    /// A header stamped with the current wall-clock time.
    pub fn new(helper: HelperInfo, probes: Vec<ProbeInfo>, note: impl Into<String>) -> Self {
        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        Self {
            created_unix_ms,
            helper,
            probes,
            note: note.into(),
        }
    }

    /// The catalogue entry for a probe key.
    pub fn probe(&self, key: ProbeKey) -> Option<&ProbeInfo> {
        self.probes.iter().find(|probe| probe.key == key)
    }
}

/// One received message and when it arrived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedFrame {
    /// ns of the client's monotonic clock since the recording started.
    pub recv_ns: u64,
    /// The message, as the helper sent it.
    pub message: HelperMessage,
}

/// Borrowed twin of [`RecordedFrame`]; serde encodes both identically.
#[derive(Serialize)]
struct RecordedFrameRef<'a> {
    recv_ns: u64,
    message: &'a HelperMessage,
}

/// Where to seek: one entry about every [`INDEX_INTERVAL_BYTES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// File offset of a message frame (pass it to [`Recording::frames_from`]).
    pub offset: u64,
    /// That frame's [`RecordedFrame::recv_ns`].
    pub recv_ns: u64,
    /// Events in all frames before it.
    pub events_before: u64,
}

/// First and latest running drop totals of one probe seen in the recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeDropTotals {
    /// The first totals seen (they count from when the helper loaded its
    /// programs, so they may predate the recording).
    pub first: ProbeStats,
    /// The latest totals seen.
    pub last: ProbeStats,
}

impl ProbeDropTotals {
    /// Records lost in the kernel while recording.
    pub fn kernel_drops_during(&self) -> u64 {
        self.last
            .kernel_drops
            .saturating_sub(self.first.kernel_drops)
    }

    /// Events the helper dropped for this slow client while recording.
    pub fn client_drops_during(&self) -> u64 {
        self.last
            .client_drops
            .saturating_sub(self.first.client_drops)
    }
}

/// Counts over every message frame of a recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingTotals {
    /// Message frames.
    pub frames: u64,
    /// `recv_ns` of the first and the last frame.
    pub recv_span_ns: Option<(u64, u64)>,
    /// Smallest and largest [`Event::ts_ns`](crate::Event::ts_ns) (kernel
    /// `CLOCK_MONOTONIC`).
    pub event_span_ns: Option<(u64, u64)>,
    /// Streamed events, all probes.
    pub events: u64,
    /// Streamed events per probe key.
    pub events_per_probe: BTreeMap<ProbeKey, u64>,
    /// Drop totals per probe key.
    pub drops: BTreeMap<ProbeKey, ProbeDropTotals>,
    /// [`HelperMessage::Aggregates`] frames.
    pub aggregates: u64,
    /// [`HelperMessage::Stacks`] frames.
    pub stack_batches: u64,
    /// [`HelperMessage::Error`] frames.
    pub errors: u64,
}

impl RecordingTotals {
    /// Adds one message frame.
    pub fn add(&mut self, recv_ns: u64, message: &HelperMessage) {
        self.add_frame(recv_ns);
        match message {
            HelperMessage::Batch(batch) => self.add_batch(
                batch.events.iter().map(|event| (event.probe, event.ts_ns)),
                &batch.stats,
            ),
            // A pack probe's maps are aggregates too.
            HelperMessage::Aggregates(_) | HelperMessage::PackData(_) => self.aggregates += 1,
            HelperMessage::Stacks(_) => self.stack_batches += 1,
            HelperMessage::Error { .. } => self.errors += 1,
            HelperMessage::Hello(_)
            | HelperMessage::Probes(_)
            | HelperMessage::ProbeState { .. }
            | HelperMessage::ProbeAdded(_)
            | HelperMessage::Tracepoints(_)
            | HelperMessage::KernelFunctions { .. }
            | HelperMessage::Filter(_)
            | HelperMessage::VerifierLog { .. }
            | HelperMessage::CostWatch { .. }
            | HelperMessage::Cost(_) => {}
        }
    }

    /// Counts a frame received at `recv_ns`.
    fn add_frame(&mut self, recv_ns: u64) {
        self.frames += 1;
        self.recv_span_ns = Some(match self.recv_span_ns {
            Some((first, last)) => (first.min(recv_ns), last.max(recv_ns)),
            None => (recv_ns, recv_ns),
        });
    }

    /// Counts a batch's events, given as `(probe, ts_ns)`, and its stats.
    fn add_batch(&mut self, events: impl Iterator<Item = (ProbeKey, u64)>, stats: &[ProbeStats]) {
        let mut run: Option<(ProbeKey, u64)> = None;
        for (probe, ts_ns) in events {
            self.events += 1;
            self.event_span_ns = Some(match self.event_span_ns {
                Some((min, max)) => (min.min(ts_ns), max.max(ts_ns)),
                None => (ts_ns, ts_ns),
            });
            // Batches come in runs of one probe; count a run at once.
            match &mut run {
                Some((current, count)) if *current == probe => *count += 1,
                _ => {
                    if let Some((done, count)) = run {
                        *self.events_per_probe.entry(done).or_default() += count;
                    }
                    run = Some((probe, 1));
                }
            }
        }
        if let Some((done, count)) = run {
            *self.events_per_probe.entry(done).or_default() += count;
        }
        for stats in stats {
            self.drops
                .entry(stats.probe)
                .and_modify(|totals| totals.last = stats.clone())
                .or_insert_with(|| ProbeDropTotals {
                    first: stats.clone(),
                    last: stats.clone(),
                });
        }
    }
}

/// The index frame's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingIndex {
    /// Seek points in file order.
    pub entries: Vec<IndexEntry>,
    /// Totals over every message frame.
    pub totals: RecordingTotals,
}

impl RecordingIndex {
    /// The offset of the last seek point at or before `recv_ns`; iterate
    /// from there and skip frames before `recv_ns`. `None` when the
    /// recording has no frames.
    pub fn offset_at_or_before(&self, recv_ns: u64) -> Option<u64> {
        let after = self
            .entries
            .partition_point(|entry| entry.recv_ns <= recv_ns);
        self.entries
            .get(after.saturating_sub(1))
            .map(|entry| entry.offset)
    }
}

/// What a frame body is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FrameBody {
    /// A received message.
    Message(RecordedFrame),
    /// The index, written last by a clean finish.
    Index(RecordingIndex),
}

/// Borrowed twin of [`FrameBody`]; serde encodes both identically.
#[derive(Serialize)]
enum FrameBodyRef<'a> {
    Message(RecordedFrameRef<'a>),
    Index(&'a RecordingIndex),
}

/// Why the data of a recording ends before its last byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DamageReason {
    /// The file ends inside the frame that starts at `offset`.
    Truncated {
        /// Offset of the unfinished frame.
        offset: u64,
    },
    /// The frame at `offset` does not match its checksum.
    Checksum {
        /// Offset of the frame.
        offset: u64,
    },
    /// The frame at `offset` announces an impossible length.
    BadLength {
        /// Offset of the frame.
        offset: u64,
        /// Announced body length.
        len: u32,
    },
    /// The frame at `offset` matches its checksum but does not decode
    /// (written by another format version, or by a bug).
    Undecodable {
        /// Offset of the frame.
        offset: u64,
        /// postcard's description.
        reason: String,
    },
    /// Bytes follow the index frame that are not a valid footer.
    BadFooter {
        /// Offset of the bytes after the index frame.
        offset: u64,
    },
}

impl fmt::Display for DamageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset } => write!(
                f,
                "the file ends inside the frame at byte {offset} (the writer stopped mid-write)"
            ),
            Self::Checksum { offset } => write!(
                f,
                "the frame at byte {offset} does not match its checksum (the file is corrupted there)"
            ),
            Self::BadLength { offset, len } => write!(
                f,
                "the frame at byte {offset} announces an impossible length of {len} bytes \
                 (the file is corrupted there)"
            ),
            Self::Undecodable { offset, reason } => write!(
                f,
                "the frame at byte {offset} does not decode ({reason}); it may come from \
                 another Microscope version"
            ),
            Self::BadFooter { offset } => {
                write!(f, "the footer at byte {offset} is torn or corrupted")
            }
        }
    }
}

/// Part of a file that could not be read: everything from `valid_bytes` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Bytes from the start of the file up to the end of the last whole,
    /// valid frame: what was recovered.
    pub valid_bytes: u64,
    /// Bytes after that, ignored.
    pub trailing_bytes: u64,
    /// What is wrong with the first ignored byte.
    pub reason: DamageReason,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recovered {} of {} bytes; the last {} bytes were ignored: {}",
            self.valid_bytes,
            self.valid_bytes + self.trailing_bytes,
            self.trailing_bytes,
            self.reason
        )
    }
}

/// What went wrong with a recording file, phrased for the person at the keyboard.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The writer was asked to create a file that exists.
    #[error(
        "{} already exists; choose another name, or ask to overwrite it \
         (`--force` on the command line)",
        path.display()
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// There is no such file.
    #[error("there is no file {}; check the name", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be created or opened.
    #[error("could not open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing failed part-way.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with [`RECORDING_MAGIC`].
    #[error(
        "{} is not a Microscope recording (it starts with \"{found}\", not \"MSCR\"); \
         make one with `microscope record`",
        path.display()
    )]
    NotARecording {
        /// The file.
        path: PathBuf,
        /// Its first bytes, shown escaped.
        found: String,
    },
    /// The file was written by a newer Microscope.
    #[error(
        "{} is a recording in format v{version}, newer than this Microscope reads \
         (up to v{supported}); upgrade Microscope to open it",
        path.display()
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        version: u32,
        /// [`RECORDING_VERSION`].
        supported: u32,
    },
    /// The file was written by an older Microscope whose messages this build
    /// no longer decodes.
    #[error(
        "{} is a recording in format v{version}, from an older Microscope; this one reads \
         v{supported} only. Open it with the Microscope that made it, or record it again",
        path.display()
    )]
    OlderVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        version: u32,
        /// [`RECORDING_VERSION`].
        supported: u32,
    },
    /// The file claims a version this build never wrote.
    #[error(
        "{} claims recording format v{version}, which no Microscope release wrote; \
         the file is corrupted",
        path.display()
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The file ends before its header does.
    #[error(
        "{} ends inside its header ({len} bytes): the recording was cut off as it \
         started and holds no data",
        path.display()
    )]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The header's checksum or content is wrong.
    #[error(
        "the header of {} is corrupted ({reason}); without it the recording cannot be read",
        path.display()
    )]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A frame read after opening is damaged (see [`Frames`]).
    #[error("{}: {reason}; frames before it are intact", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: DamageReason,
    },
    /// A message could not be encoded (a bug, or a message over the frame limit).
    #[error("could not encode a frame for {}: {reason}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The result of [`decode_frame`] on the bytes at a frame boundary.
#[derive(Debug, PartialEq)]
pub enum DecodedFrame<B = FrameBody> {
    /// A whole, valid frame of `len` bytes (prefix included).
    Frame {
        /// The decoded body.
        body: B,
        /// Bytes the frame occupies.
        len: usize,
    },
    /// The bytes end before the frame does; `needed` bytes in total would
    /// hold it.
    Incomplete {
        /// Total bytes the frame needs from its start (at least the prefix).
        needed: usize,
    },
    /// The frame is damaged; `offset` in the reason is relative to `bytes`.
    Damaged(DamageReason),
}

/// Decodes the frame at the start of `bytes`. Pure: no I/O, never panics.
pub fn decode_frame(bytes: &[u8]) -> DecodedFrame {
    decode_frame_as(bytes)
}

/// [`decode_frame`] into any body type that shares [`FrameBody`]'s encoding.
fn decode_frame_as<'a, B: Deserialize<'a>>(bytes: &'a [u8]) -> DecodedFrame<B> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<FRAME_PREFIX>() else {
        return DecodedFrame::Incomplete {
            needed: FRAME_PREFIX,
        };
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *prefix;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > MAX_FRAME_BYTES {
        return DecodedFrame::Damaged(DamageReason::BadLength { offset: 0, len });
    }
    let body_len = len as usize;
    let Some(body) = rest.get(..body_len) else {
        return DecodedFrame::Incomplete {
            needed: FRAME_PREFIX + body_len,
        };
    };
    if crc32fast::hash(body) != crc {
        return DecodedFrame::Damaged(DamageReason::Checksum { offset: 0 });
    }
    match postcard::from_bytes(body) {
        Ok(body) => DecodedFrame::Frame {
            body,
            len: FRAME_PREFIX + body_len,
        },
        Err(err) => DecodedFrame::Damaged(DamageReason::Undecodable {
            offset: 0,
            reason: err.to_string(),
        }),
    }
}

/// Appends one frame (prefix + postcard body) to `out`.
fn encode_frame_into(body: &FrameBodyRef<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let body = postcard::to_allocvec(body).map_err(|err| err.to_string())?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME_BYTES)
        .ok_or_else(|| {
            format!(
                "a frame of {} bytes exceeds the {MAX_FRAME_BYTES}-byte limit",
                body.len()
            )
        })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// The file's first bytes: magic, version, header length and CRC, header.
fn encode_file_header(header: &RecordingHeader) -> Result<Vec<u8>, String> {
    let body = postcard::to_allocvec(header).map_err(|err| err.to_string())?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME_BYTES)
        .ok_or_else(|| format!("a header of {} bytes is too large", body.len()))?;
    let mut out = Vec::with_capacity(HEADER_PREFIX as usize + body.len());
    out.extend_from_slice(&RECORDING_MAGIC);
    out.extend_from_slice(&RECORDING_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn encode_footer(index_offset: u64) -> [u8; FOOTER_LEN as usize] {
    let mut out = [0; FOOTER_LEN as usize];
    out[..4].copy_from_slice(&FOOTER_MAGIC);
    out[4..12].copy_from_slice(&index_offset.to_le_bytes());
    let crc = crc32fast::hash(&out[..12]);
    out[12..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The index offset in a footer, if the footer is valid.
fn decode_footer(bytes: [u8; FOOTER_LEN as usize]) -> Option<u64> {
    let (head, crc) = bytes.split_first_chunk::<12>()?;
    let (magic, offset) = head.split_first_chunk::<4>()?;
    let crc = u32::from_le_bytes(crc.first_chunk::<4>().copied()?);
    (*magic == FOOTER_MAGIC && crc32fast::hash(head) == crc)
        .then(|| u64::from_le_bytes(offset.first_chunk::<8>().copied().unwrap_or_default()))
}

/// Appends frames to a new recording file.
///
/// Frames go through a buffer that is flushed at least every
/// [`FLUSH_INTERVAL`]; [`finish`](Self::finish) writes the index and footer.
/// Dropping the writer without finishing flushes what is buffered and leaves
/// a file that opens by scanning.
#[derive(Debug)]
pub struct RecordingWriter {
    path: PathBuf,
    file: BufWriter<File>,
    /// File offset where the next frame goes.
    offset: u64,
    started: Instant,
    last_flush: Instant,
    index: RecordingIndex,
    bytes_since_entry: u64,
    frames_since_entry: u64,
    scratch: Vec<u8>,
}

/// What [`RecordingWriter::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedRecording {
    /// File size in bytes.
    pub bytes: u64,
    /// Totals over every frame.
    pub totals: RecordingTotals,
}

impl RecordingWriter {
    /// Creates `path` and writes the header. Refuses if the file exists
    /// unless `overwrite` is true.
    pub fn create(
        path: impl AsRef<Path>,
        header: &RecordingHeader,
        overwrite: bool,
    ) -> Result<Self, RecordingError> {
        let path = path.as_ref().to_owned();
        let mut options = OpenOptions::new();
        options.write(true);
        if overwrite {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let file = options.open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                RecordingError::Exists { path: path.clone() }
            } else {
                RecordingError::Open {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let head = encode_file_header(header).map_err(|reason| RecordingError::Encode {
            path: path.clone(),
            reason,
        })?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.write_all(&head).map_err(|source| RecordingError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        let now = Instant::now();
        Ok(Self {
            path,
            file,
            offset: head.len() as u64,
            started: now,
            last_flush: now,
            index: RecordingIndex::default(),
            bytes_since_entry: 0,
            frames_since_entry: 0,
            scratch: Vec::new(),
        })
    }

    /// ns since [`create`](Self::create), the `recv_ns` of a message
    /// received now.
    pub fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Bytes written so far (buffered included).
    pub fn bytes(&self) -> u64 {
        self.offset
    }

    /// Totals over the frames written so far.
    pub fn totals(&self) -> &RecordingTotals {
        &self.index.totals
    }

    /// Appends a message received now.
    pub fn write_received(&mut self, message: &HelperMessage) -> Result<(), RecordingError> {
        let recv_ns = self.elapsed_ns();
        self.write(recv_ns, message)
    }

    /// Appends a message received `recv_ns` after the recording started.
    pub fn write(&mut self, recv_ns: u64, message: &HelperMessage) -> Result<(), RecordingError> {
        self.scratch.clear();
        let body = FrameBodyRef::Message(RecordedFrameRef { recv_ns, message });
        encode_frame_into(&body, &mut self.scratch).map_err(|reason| RecordingError::Encode {
            path: self.path.clone(),
            reason,
        })?;
        if self.index.entries.is_empty()
            || self.bytes_since_entry >= INDEX_INTERVAL_BYTES
            || self.frames_since_entry >= INDEX_INTERVAL_FRAMES
        {
            self.index.entries.push(IndexEntry {
                offset: self.offset,
                recv_ns,
                events_before: self.index.totals.events,
            });
            self.bytes_since_entry = 0;
            self.frames_since_entry = 0;
        }
        self.file
            .write_all(&self.scratch)
            .map_err(|source| self.io_error(source))?;
        let len = self.scratch.len() as u64;
        self.offset += len;
        self.bytes_since_entry += len;
        self.frames_since_entry += 1;
        self.index.totals.add(recv_ns, message);
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// Pushes buffered frames to the file.
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        self.last_flush = Instant::now();
        self.file.flush().map_err(|source| self.io_error(source))
    }

    /// Writes the index and the footer, flushes and syncs the file.
    pub fn finish(mut self) -> Result<FinishedRecording, RecordingError> {
        self.scratch.clear();
        encode_frame_into(&FrameBodyRef::Index(&self.index), &mut self.scratch).map_err(
            |reason| RecordingError::Encode {
                path: self.path.clone(),
                reason,
            },
        )?;
        let index_offset = self.offset;
        self.scratch.extend_from_slice(&encode_footer(index_offset));
        self.file
            .write_all(&self.scratch)
            .map_err(|source| self.io_error(source))?;
        self.offset += self.scratch.len() as u64;
        self.flush()?;
        self.file
            .get_ref()
            .sync_all()
            .map_err(|source| self.io_error(source))?;
        Ok(FinishedRecording {
            bytes: self.offset,
            totals: std::mem::take(&mut self.index.totals),
        })
    }

    fn io_error(&self, source: io::Error) -> RecordingError {
        RecordingError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        }
    }
}

/// How [`Recording::open`] found the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexSource {
    /// From the footer: only the header, index and footer were read.
    Footer,
    /// Rebuilt by scanning every frame (the writer did not finish, or the
    /// footer is damaged).
    Scan,
}

/// An opened recording: its header, index, totals and any damage. Frames
/// are read on demand with [`frames`](Self::frames) or
/// [`frames_from`](Self::frames_from).
#[derive(Clone, Debug)]
pub struct Recording {
    path: PathBuf,
    header: RecordingHeader,
    file_bytes: u64,
    /// Offset of the first frame.
    data_start: u64,
    /// End of the last message frame (where the index frame starts, if any).
    data_end: u64,
    index: RecordingIndex,
    index_source: IndexSource,
    damage: Option<Damage>,
}

/// A summary of a recording, for `microscope info` and the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSummary {
    /// File size.
    pub file_bytes: u64,
    /// Totals (events and drops per probe, time spans).
    pub totals: RecordingTotals,
    /// Whether the footer index was used.
    pub index_source: IndexSource,
    /// Seek points in the index.
    pub index_entries: usize,
    /// What could not be read, if anything.
    pub damage: Option<Damage>,
}

impl Recording {
    /// Opens a recording: reads its header and, when the writer finished
    /// cleanly, its footer and index; otherwise scans every frame once (in
    /// constant memory) to find where the valid data ends and to rebuild the
    /// index. Damage at the end is reported by [`damage`](Self::damage),
    /// not as an error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RecordingError> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => RecordingError::NotFound { path: path.clone() },
            _ => RecordingError::Open {
                path: path.clone(),
                source,
            },
        })?;
        let read_error = |source| RecordingError::Io {
            action: "read",
            path: path.clone(),
            source,
        };
        let file_bytes = file.metadata().map_err(read_error)?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let (header, data_start) = read_header(&mut reader, &path, file_bytes)?;

        let mut recording = Self {
            path,
            header,
            file_bytes,
            data_start,
            data_end: data_start,
            index: RecordingIndex::default(),
            index_source: IndexSource::Scan,
            damage: None,
        };
        if recording.open_from_footer(&mut reader)? {
            return Ok(recording);
        }
        recording.scan(&mut reader)?;
        Ok(recording)
    }

    /// Uses the footer and index if both are valid; `Ok(false)` otherwise.
    fn open_from_footer(&mut self, reader: &mut BufReader<File>) -> Result<bool, RecordingError> {
        let Some(footer_at) = self.file_bytes.checked_sub(FOOTER_LEN) else {
            return Ok(false);
        };
        if footer_at < self.data_start {
            return Ok(false);
        }
        let mut footer = [0; FOOTER_LEN as usize];
        self.read_at(reader, footer_at, &mut footer)?;
        let Some(index_offset) = decode_footer(footer) else {
            return Ok(false);
        };
        if index_offset < self.data_start || index_offset >= footer_at {
            return Ok(false);
        }
        let Ok(frame_len) = usize::try_from(footer_at - index_offset) else {
            return Ok(false);
        };
        if frame_len > MAX_FRAME_BYTES as usize + FRAME_PREFIX {
            return Ok(false);
        }
        let mut bytes = vec![0; frame_len];
        self.read_at(reader, index_offset, &mut bytes)?;
        match decode_frame(&bytes) {
            DecodedFrame::Frame {
                body: FrameBody::Index(index),
                len,
            } if len == frame_len => {
                self.index = index;
                self.data_end = index_offset;
                self.index_source = IndexSource::Footer;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Reads every frame from the start, rebuilding index and totals, and
    /// stops at the first damaged one.
    fn scan(&mut self, reader: &mut BufReader<File>) -> Result<(), RecordingError> {
        reader
            .seek(SeekFrom::Start(self.data_start))
            .map_err(|source| self.read_error(source))?;
        let mut offset = self.data_start;
        let mut buf = Vec::new();
        let mut index = RecordingIndex::default();
        let mut bytes_since_entry = 0;
        let mut frames_since_entry = 0;
        let mut damage_reason = None;
        while offset < self.file_bytes {
            // The scan decodes into borrowed mirrors of the messages
            // (`scan.rs`): no allocation per event.
            match read_frame(
                reader,
                offset,
                self.file_bytes,
                &mut buf,
                decode_frame_as::<scan::ScanBody<'_>>,
            )
            .map_err(|source| self.read_error(source))?
            {
                DecodedFrame::Frame {
                    body: scan::ScanBody::Message(frame),
                    len,
                } => {
                    if index.entries.is_empty()
                        || bytes_since_entry >= INDEX_INTERVAL_BYTES
                        || frames_since_entry >= INDEX_INTERVAL_FRAMES
                    {
                        index.entries.push(IndexEntry {
                            offset,
                            recv_ns: frame.recv_ns,
                            events_before: index.totals.events,
                        });
                        bytes_since_entry = 0;
                        frames_since_entry = 0;
                    }
                    frame.add_to(&mut index.totals);
                    offset += len as u64;
                    bytes_since_entry += len as u64;
                    frames_since_entry += 1;
                }
                DecodedFrame::Frame {
                    body: scan::ScanBody::Index(_),
                    len,
                } => {
                    // The data ends at the index; what follows should be the
                    // footer, which did not check out.
                    self.data_end = offset;
                    let after = offset + len as u64;
                    if after < self.file_bytes {
                        self.damage = Some(Damage {
                            valid_bytes: after,
                            trailing_bytes: self.file_bytes - after,
                            reason: DamageReason::BadFooter { offset: after },
                        });
                    }
                    self.index = index;
                    return Ok(());
                }
                DecodedFrame::Incomplete { .. } => {
                    damage_reason = Some(DamageReason::Truncated { offset });
                    break;
                }
                DecodedFrame::Damaged(reason) => {
                    damage_reason = Some(at_offset(reason, offset));
                    break;
                }
            }
        }
        self.data_end = offset;
        self.damage = damage_reason.map(|reason| Damage {
            valid_bytes: offset,
            trailing_bytes: self.file_bytes - offset,
            reason,
        });
        self.index = index;
        Ok(())
    }

    fn read_at(
        &self,
        reader: &mut BufReader<File>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), RecordingError> {
        reader
            .seek(SeekFrom::Start(offset))
            .and_then(|_| reader.read_exact(buf))
            .map_err(|source| self.read_error(source))
    }

    fn read_error(&self, source: io::Error) -> RecordingError {
        RecordingError::Io {
            action: "read",
            path: self.path.clone(),
            source,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header: helper, kernel, probe catalogue, note.
    pub fn header(&self) -> &RecordingHeader {
        &self.header
    }

    /// The index: seek points and totals.
    pub fn index(&self) -> &RecordingIndex {
        &self.index
    }

    /// Whether the index came from the footer or a scan.
    pub fn index_source(&self) -> IndexSource {
        self.index_source
    }

    /// What could not be read, if anything.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// File size in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Offset of the first frame.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Offset just past the last message frame.
    pub fn data_end(&self) -> u64 {
        self.data_end
    }

    /// Totals, index and damage in one value.
    pub fn summary(&self) -> RecordingSummary {
        RecordingSummary {
            file_bytes: self.file_bytes,
            totals: self.index.totals.clone(),
            index_source: self.index_source,
            index_entries: self.index.entries.len(),
            damage: self.damage.clone(),
        }
    }

    /// Every message frame, in file (arrival) order.
    pub fn frames(&self) -> Result<Frames, RecordingError> {
        self.frames_from(self.data_start)
    }

    /// Message frames from the frame at `offset` (an [`IndexEntry::offset`],
    /// [`data_start`](Self::data_start), or [`Frames::offset`]). An offset
    /// that is not a frame boundary yields a [`RecordingError::Corrupt`].
    pub fn frames_from(&self, offset: u64) -> Result<Frames, RecordingError> {
        let file = File::open(&self.path).map_err(|source| RecordingError::Open {
            path: self.path.clone(),
            source,
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let offset = offset.clamp(self.data_start, self.data_end);
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|source| self.read_error(source))?;
        Ok(Frames {
            path: self.path.clone(),
            reader,
            offset,
            end: self.data_end,
            buf: Vec::new(),
            failed: false,
        })
    }
}

/// Moves a reason's frame-relative offset to the file offset `at`.
fn at_offset(reason: DamageReason, at: u64) -> DamageReason {
    match reason {
        DamageReason::Truncated { .. } => DamageReason::Truncated { offset: at },
        DamageReason::Checksum { .. } => DamageReason::Checksum { offset: at },
        DamageReason::BadLength { len, .. } => DamageReason::BadLength { offset: at, len },
        DamageReason::Undecodable { reason, .. } => {
            DamageReason::Undecodable { offset: at, reason }
        }
        DamageReason::BadFooter { .. } => DamageReason::BadFooter { offset: at },
    }
}

/// Reads and checks the header; returns it and the offset of the first frame.
fn read_header(
    reader: &mut impl Read,
    path: &Path,
    file_bytes: u64,
) -> Result<(RecordingHeader, u64), RecordingError> {
    let truncated = || RecordingError::TruncatedHeader {
        path: path.to_owned(),
        len: file_bytes,
    };
    let mut prefix = [0; HEADER_PREFIX as usize];
    let got = read_up_to(reader, &mut prefix).map_err(|source| RecordingError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let [
        m0,
        m1,
        m2,
        m3,
        v0,
        v1,
        v2,
        v3,
        l0,
        l1,
        l2,
        l3,
        c0,
        c1,
        c2,
        c3,
    ] = prefix;
    let magic = [m0, m1, m2, m3];
    if magic.get(..got.min(4)) != RECORDING_MAGIC.get(..got.min(4)) || got == 0 {
        return Err(RecordingError::NotARecording {
            path: path.to_owned(),
            found: magic
                .get(..got.min(4))
                .unwrap_or_default()
                .escape_ascii()
                .to_string(),
        });
    }
    if got < prefix.len() {
        return Err(truncated());
    }
    let version = u32::from_le_bytes([v0, v1, v2, v3]);
    if version > RECORDING_VERSION {
        return Err(RecordingError::NewerVersion {
            path: path.to_owned(),
            version,
            supported: RECORDING_VERSION,
        });
    }
    if version != 0 && version < RECORDING_VERSION {
        return Err(RecordingError::OlderVersion {
            path: path.to_owned(),
            version,
            supported: RECORDING_VERSION,
        });
    }
    if version == 0 {
        return Err(RecordingError::UnknownVersion {
            path: path.to_owned(),
            version,
        });
    }
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > MAX_FRAME_BYTES {
        return Err(RecordingError::BadHeader {
            path: path.to_owned(),
            reason: format!("it announces {len} bytes"),
        });
    }
    if HEADER_PREFIX + u64::from(len) > file_bytes {
        return Err(truncated());
    }
    let mut body = vec![0; len as usize];
    reader
        .read_exact(&mut body)
        .map_err(|source| RecordingError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
    if crc32fast::hash(&body) != crc {
        return Err(RecordingError::BadHeader {
            path: path.to_owned(),
            reason: "checksum mismatch".into(),
        });
    }
    let header = postcard::from_bytes(&body).map_err(|err| RecordingError::BadHeader {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
    Ok((header, HEADER_PREFIX + u64::from(len)))
}

/// Like `read_exact`, but a short read at the end of the file is not an
/// error: returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Reads the frame at `offset` (where `reader` stands) into `buf`, never
/// past `end`, and decodes it with `decode`.
fn read_frame<'b, T>(
    reader: &mut impl Read,
    offset: u64,
    end: u64,
    buf: &'b mut Vec<u8>,
    decode: impl FnOnce(&'b [u8]) -> T,
) -> io::Result<T> {
    let available = usize::try_from(end.saturating_sub(offset)).unwrap_or(usize::MAX);
    buf.clear();
    buf.resize(FRAME_PREFIX.min(available), 0);
    let got = read_up_to(reader, buf)?;
    buf.truncate(got);
    if let Some(prefix) = buf.first_chunk::<4>()
        && got == FRAME_PREFIX
    {
        let len = u32::from_le_bytes(*prefix);
        // Past the limit or past the end, `decode` sees only the prefix and
        // says why.
        if len <= MAX_FRAME_BYTES && FRAME_PREFIX + len as usize <= available {
            buf.resize(FRAME_PREFIX + len as usize, 0);
            let got = read_up_to(reader, buf.get_mut(FRAME_PREFIX..).unwrap_or_default())?;
            buf.truncate(FRAME_PREFIX + got);
        }
    }
    Ok(decode(buf))
}

impl Recording {
    /// Reads every message frame from `offset` on, in constant memory and
    /// without allocating per event, and calls `visit` with each frame's
    /// offset, `recv_ns` and a glance at each of its streamed events, until
    /// `visit` returns `false` or the data ends. A damaged frame ends the
    /// pass with [`RecordingError::Corrupt`] (the frames before it were
    /// visited). Several passes may run at once from different offsets
    /// (each opens the file itself): the app's overview is read in parts,
    /// one per core, each part's `visit` stopping at the next one's start.
    pub fn glance(
        &self,
        offset: u64,
        mut visit: impl FnMut(u64, u64, &mut dyn Iterator<Item = EventGlance<'_>>) -> bool,
    ) -> Result<(), RecordingError> {
        let file = File::open(&self.path).map_err(|source| self.read_error(source))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let offset = offset.clamp(self.data_start, self.data_end);
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|source| self.read_error(source))?;
        let mut offset = offset;
        let mut buf = Vec::new();
        while offset < self.data_end {
            let decoded = read_frame(
                &mut reader,
                offset,
                self.data_end,
                &mut buf,
                decode_frame_as::<scan::ScanBody<'_>>,
            )
            .map_err(|source| self.read_error(source))?;
            let reason = match decoded {
                DecodedFrame::Frame {
                    body: scan::ScanBody::Message(frame),
                    len,
                } => {
                    if !visit(offset, frame.recv_ns, &mut frame.glances()) {
                        return Ok(());
                    }
                    offset += len as u64;
                    continue;
                }
                DecodedFrame::Frame {
                    body: scan::ScanBody::Index(_),
                    ..
                } => return Ok(()),
                DecodedFrame::Incomplete { .. } => DamageReason::Truncated { offset },
                DecodedFrame::Damaged(reason) => at_offset(reason, offset),
            };
            return Err(RecordingError::Corrupt {
                path: self.path.clone(),
                reason,
            });
        }
        Ok(())
    }
}

/// Iterator over message frames, reading the file as it goes. After an
/// error it ends.
#[derive(Debug)]
pub struct Frames {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    end: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl Frames {
    /// Offset of the next frame to be read (a valid argument to
    /// [`Recording::frames_from`]).
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl Iterator for Frames {
    type Item = Result<RecordedFrame, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.end {
            return None;
        }
        let offset = self.offset;
        let decoded = match read_frame(
            &mut self.reader,
            offset,
            self.end,
            &mut self.buf,
            decode_frame,
        ) {
            Ok(decoded) => decoded,
            Err(source) => {
                self.failed = true;
                return Some(Err(RecordingError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                }));
            }
        };
        let reason = match decoded {
            DecodedFrame::Frame {
                body: FrameBody::Message(frame),
                len,
            } => {
                self.offset += len as u64;
                return Some(Ok(frame));
            }
            DecodedFrame::Frame {
                body: FrameBody::Index(_),
                ..
            } => {
                // Only ever last; nothing after it is a message.
                self.offset = self.end;
                return None;
            }
            DecodedFrame::Incomplete { .. } => DamageReason::Truncated { offset },
            DecodedFrame::Damaged(reason) => at_offset(reason, offset),
        };
        self.failed = true;
        Some(Err(RecordingError::Corrupt {
            path: self.path.clone(),
            reason,
        }))
    }
}

mod scan;
pub use scan::{EventGlance, SwitchGlance};
#[cfg(test)]
mod tests;
