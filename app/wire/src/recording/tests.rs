use super::*;
use crate::ProbeKey;
use crate::{
    Aggregates, Availability, Capabilities, Event, EventBatch, EventData, FieldInfo, FieldValue,
    Frame, FunctionStats, ProbeKind, ProbeStats, ProcessFilter, StackBatch, StackCount,
};

fn helper_info() -> HelperInfo {
    HelperInfo {
        helper_version: "0.1.0".into(),
        kernel_release: "6.18.0-test".into(),
        capabilities: Capabilities {
            tracefs: Availability::yes("mounted"),
            btf: Availability::yes("present"),
            kprobes: Availability::no("not built"),
            fentry: Availability::no("lockdown"),
            uprobes: Availability::yes("ok"),
        },
    }
}

fn probe(id: &str, key: ProbeKey, kind: ProbeKind) -> ProbeInfo {
    ProbeInfo {
        fields: Vec::new(),
        id: id.into(),
        key,
        subsystem: "Test".into(),
        description: "a probe".into(),
        kind,
        availability: Availability::yes(""),
        enabled: true,
    }
}

fn header() -> RecordingHeader {
    RecordingHeader {
        created_unix_ms: 1_700_000_000_000,
        helper: helper_info(),
        probes: vec![
            probe("sched:sched_switch", 1, ProbeKind::Stream),
            probe("syscalls:sys_enter_openat", 2, ProbeKind::Stream),
            probe("raw_syscalls:sys_enter", 3, ProbeKind::SyscallCounts),
        ],
        note: "test".into(),
    }
}

fn event(probe: ProbeKey, cpu: u32, ts_ns: u64, data: EventData) -> Event {
    Event {
        probe,
        cpu,
        ts_ns,
        pid: 42,
        tgid: 40,
        comm: "worker".into(),
        data,
    }
}

/// Every `EventData` kind, once.
fn every_event_kind(ts_ns: u64) -> Vec<Event> {
    vec![
        event(
            1,
            0,
            ts_ns,
            EventData::SchedSwitch {
                prev_pid: 42,
                prev_comm: "worker".into(),
                prev_prio: 120,
                prev_state: 1,
                next_pid: 0,
                next_comm: "swapper/0".into(),
                next_prio: 120,
            },
        ),
        event(
            1,
            1,
            ts_ns + 1,
            EventData::SchedWakeup {
                pid: 7,
                comm: "kworker".into(),
                prio: 100,
                target_cpu: 1,
            },
        ),
        event(
            1,
            0,
            ts_ns + 2,
            EventData::SchedFork {
                parent_pid: 42,
                child_pid: 43,
            },
        ),
        event(
            1,
            0,
            ts_ns + 3,
            EventData::SchedExec {
                pid: 43,
                old_pid: 43,
                filename: "/usr/bin/ls".into(),
            },
        ),
        event(
            1,
            1,
            ts_ns + 4,
            EventData::SchedExit {
                pid: 43,
                prio: 120,
                group_dead: true,
            },
        ),
        event(
            10,
            1,
            ts_ns + 5,
            EventData::Fields(vec![
                FieldValue::Uint(8),
                FieldValue::Int(-3),
                FieldValue::Str("sda".into()),
                FieldValue::Bytes(vec![1, 2, 3]),
                FieldValue::Missing,
                FieldValue::Named {
                    value: -2,
                    text: "ENOENT".into(),
                },
            ]),
        ),
        event(
            2,
            1,
            ts_ns + 5,
            EventData::Openat {
                dfd: -100,
                filename: "/etc/hostname \"quoted\", comma".into(),
                flags: 0o2000000,
                mode: 0,
            },
        ),
    ]
}

/// Every `HelperMessage` kind, once.
fn every_message_kind() -> Vec<HelperMessage> {
    vec![
        HelperMessage::Hello(helper_info()),
        HelperMessage::Probes(header().probes),
        HelperMessage::ProbeState {
            probe: "sched:sched_switch".into(),
            enabled: true,
        },
        HelperMessage::Batch(EventBatch {
            events: every_event_kind(1_000),
            stats: vec![
                ProbeStats {
                    probe: 1,
                    kernel_drops: 5,
                    client_drops: 0,
                },
                ProbeStats {
                    probe: 2,
                    kernel_drops: 0,
                    client_drops: 1,
                },
            ],
        }),
        HelperMessage::Aggregates(Aggregates {
            ts_ns: 2_000,
            syscall_counts: vec![(0, 10), (257, 3)],
            latency_log2_ns: (0..64).collect(),
            functions: vec![FunctionStats {
                probe: 9,
                calls: 12,
                latency_log2_ns: (0..64).rev().collect(),
            }],
        }),
        HelperMessage::ProbeAdded(ProbeInfo {
            fields: vec![FieldInfo {
                name: "nr_sector".into(),
                c_type: "unsigned int".into(),
                meaning: "sectors".into(),
            }],
            ..probe("block:block_rq_issue", 10, ProbeKind::Fields)
        }),
        HelperMessage::Tracepoints(vec![
            "block:block_rq_issue".into(),
            "sched:sched_switch".into(),
        ]),
        HelperMessage::KernelFunctions {
            contains: "vfs_".into(),
            names: vec!["vfs_read".into()],
            truncated: true,
        },
        HelperMessage::Filter(ProcessFilter {
            pid: Some(42),
            comm: Some("cat".into()),
            cgroup: None,
        }),
        HelperMessage::Stacks(StackBatch {
            start_ns: 1_000,
            end_ns: 2_000,
            frames: vec![
                Frame {
                    id: 0,
                    name: "main".into(),
                    kernel: false,
                },
                Frame {
                    id: 1,
                    name: "vfs_read".into(),
                    kernel: true,
                },
            ],
            stacks: vec![StackCount {
                probe: 11,
                tgid: 42,
                comm: "cat".into(),
                frames: vec![0, 1],
                value: 7,
            }],
        }),
        HelperMessage::Batch(EventBatch {
            events: every_event_kind(3_000),
            stats: vec![ProbeStats {
                probe: 1,
                kernel_drops: 9,
                client_drops: 2,
            }],
        }),
        HelperMessage::Error {
            message: "could not attach".into(),
        },
        HelperMessage::Batch(EventBatch::default()),
    ]
}

fn frames_of(messages: &[HelperMessage]) -> Vec<RecordedFrame> {
    messages
        .iter()
        .enumerate()
        .map(|(i, message)| RecordedFrame {
            recv_ns: i as u64 * 1_000_000,
            message: message.clone(),
        })
        .collect()
}

/// Writes `frames` to `path`; finishes the file when `finish`.
fn write(path: &Path, frames: &[RecordedFrame], finish: bool) {
    let mut writer = RecordingWriter::create(path, &header(), false).unwrap();
    for frame in frames {
        writer.write(frame.recv_ns, &frame.message).unwrap();
    }
    if finish {
        writer.finish().unwrap();
    } else {
        writer.flush().unwrap();
    }
}

fn read_all(recording: &Recording) -> Vec<RecordedFrame> {
    recording
        .frames()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn every_message_and_event_kind_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let frames = frames_of(&every_message_kind());
    let mut expected_totals = RecordingTotals::default();
    for frame in &frames {
        expected_totals.add(frame.recv_ns, &frame.message);
    }
    for finish in [true, false] {
        let path = dir.path().join(format!("r-{finish}.mscr"));
        write(&path, &frames, finish);
        let recording = Recording::open(&path).unwrap();
        assert_eq!(recording.header(), &header());
        assert_eq!(read_all(&recording), frames);
        assert_eq!(recording.damage(), None);
        let expected = if finish {
            IndexSource::Footer
        } else {
            IndexSource::Scan
        };
        assert_eq!(recording.index_source(), expected);

        let summary = recording.summary();
        let totals = &summary.totals;
        // The scan's borrowed mirror types count exactly what the writer did.
        assert_eq!(totals, &expected_totals);
        assert_eq!(totals.frames, frames.len() as u64);
        assert_eq!(totals.events, 14);
        assert_eq!(
            totals.events_per_probe,
            BTreeMap::from([(1, 10), (2, 2), (10, 2)])
        );
        assert_eq!(totals.stack_batches, 1);
        let last_recv_ns = (frames.len() as u64 - 1) * 1_000_000;
        assert_eq!(totals.recv_span_ns, Some((0, last_recv_ns)));
        assert_eq!(totals.event_span_ns, Some((1_000, 3_005)));
        assert_eq!(totals.aggregates, 1);
        assert_eq!(totals.errors, 1);
        let drops = &totals.drops[&1];
        assert_eq!((drops.first.kernel_drops, drops.last.kernel_drops), (5, 9));
        assert_eq!(drops.kernel_drops_during(), 4);
        assert_eq!(drops.client_drops_during(), 2);
        assert_eq!(summary.file_bytes, std::fs::metadata(&path).unwrap().len());

        // The glance sees every event as it was written.
        let mut glanced = Vec::new();
        recording
            .glance(recording.data_start(), |_, _, events| {
                glanced.extend(events.map(|e| {
                    let next = e
                        .switch
                        .map(|s| (s.prev_pid, s.next_pid, s.next_comm.to_owned()));
                    (e.probe, e.cpu, e.ts_ns, e.pid, e.tgid, e.wakeup, next)
                }));
                true
            })
            .unwrap();
        let written: Vec<_> = frames
            .iter()
            .filter_map(|frame| match &frame.message {
                HelperMessage::Batch(batch) => Some(batch.events.iter()),
                _ => None,
            })
            .flatten()
            .map(|e| {
                let next = match &e.data {
                    EventData::SchedSwitch {
                        prev_pid,
                        next_pid,
                        next_comm,
                        ..
                    } => Some((*prev_pid, *next_pid, next_comm.clone())),
                    _ => None,
                };
                let wakeup = matches!(e.data, EventData::SchedWakeup { .. });
                (e.probe, e.cpu, e.ts_ns, e.pid, e.tgid, wakeup, next)
            })
            .collect();
        assert_eq!(glanced, written);
    }
}

#[test]
fn an_empty_recording_opens() {
    let dir = tempfile::tempdir().unwrap();
    for finish in [true, false] {
        let path = dir.path().join(format!("e-{finish}.mscr"));
        write(&path, &[], finish);
        let recording = Recording::open(&path).unwrap();
        assert!(read_all(&recording).is_empty());
        assert_eq!(recording.damage(), None);
        assert_eq!(recording.summary().totals, RecordingTotals::default());
        assert_eq!(recording.index().offset_at_or_before(0), None);
    }
}

/// Frame boundaries of a finished file: data start, each message frame's
/// end, and the index frame's end.
fn boundaries(recording: &Recording) -> Vec<u64> {
    let mut frames = recording.frames().unwrap();
    let mut out = vec![frames.offset()];
    while let Some(frame) = frames.next() {
        frame.unwrap();
        out.push(frames.offset());
    }
    out
}

#[test]
fn a_file_cut_at_any_byte_of_its_last_frames_keeps_the_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.mscr");
    let frames = frames_of(&every_message_kind());
    write(&full, &frames, true);
    let bytes = std::fs::read(&full).unwrap();
    let ends = boundaries(&Recording::open(&full).unwrap());
    // ends[i] is where frame i starts; the last is where the index starts.
    let index_at = *ends.last().unwrap();
    let cut_from = ends[ends.len() - 4];

    let cut_path = dir.path().join("cut.mscr");
    for cut in cut_from..bytes.len() as u64 {
        std::fs::write(&cut_path, &bytes[..cut as usize]).unwrap();
        let recording = Recording::open(&cut_path).unwrap();
        let whole = ends.iter().filter(|&&end| end <= cut).count() - 1;
        let read = read_all(&recording);
        assert_eq!(read, frames[..whole], "cut at {cut}");
        let at_boundary = ends.contains(&cut);
        match recording.damage() {
            None => assert!(
                at_boundary || cut >= index_at,
                "cut at {cut}: no damage reported"
            ),
            Some(damage) => {
                assert_eq!(damage.valid_bytes + damage.trailing_bytes, cut);
                assert!(damage.trailing_bytes > 0);
                if cut < index_at {
                    assert_eq!(damage.valid_bytes, ends[whole], "cut at {cut}");
                    assert_eq!(
                        damage.reason,
                        DamageReason::Truncated {
                            offset: ends[whole]
                        }
                    );
                }
                assert!(damage.to_string().starts_with("recovered "), "{damage}");
            }
        }
        // Everything the scan recovered is counted.
        assert_eq!(recording.summary().totals.frames, whole as u64);
    }
}

#[test]
fn a_flipped_byte_is_reported_as_a_checksum_error_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let frames = frames_of(&every_message_kind());
    for finish in [false, true] {
        let path = dir.path().join(format!("f-{finish}.mscr"));
        write(&path, &frames, finish);
        let ends = boundaries(&Recording::open(&path).unwrap());
        // Flip a byte inside the body of frame 3.
        let frame_at = ends[3];
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[frame_at as usize + FRAME_PREFIX + 2] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();

        let recording = Recording::open(&path).unwrap();
        let mut iter = recording.frames().unwrap();
        for expected in &frames[..3] {
            assert_eq!(&iter.next().unwrap().unwrap(), expected);
        }
        if finish {
            // The footer spared the scan; reading reaches the bad frame.
            assert_eq!(recording.damage(), None);
            let err = iter.next().unwrap().unwrap_err();
            assert!(
                matches!(
                    err,
                    RecordingError::Corrupt {
                        reason: DamageReason::Checksum { offset },
                        ..
                    } if offset == frame_at
                ),
                "{err}"
            );
            assert!(err.to_string().contains("checksum"), "{err}");
        } else {
            let damage = recording.damage().unwrap();
            assert_eq!(damage.valid_bytes, frame_at);
            assert_eq!(damage.reason, DamageReason::Checksum { offset: frame_at });
            assert_eq!(damage.trailing_bytes, bytes.len() as u64 - frame_at);
            assert_eq!(recording.summary().totals.frames, 3);
        }
        assert!(iter.next().is_none(), "iteration ends after damage");
    }
}

#[test]
fn the_writer_refuses_to_overwrite_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exists.mscr");
    std::fs::write(&path, b"precious").unwrap();
    let err = RecordingWriter::create(&path, &header(), false).unwrap_err();
    assert!(matches!(err, RecordingError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");

    let writer = RecordingWriter::create(&path, &header(), true).unwrap();
    writer.finish().unwrap();
    assert!(Recording::open(&path).is_ok());
}

#[test]
fn the_footer_index_spares_the_scan_and_points_at_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mscr");
    // ~3 MiB of batches, so the index holds several byte-interval entries.
    let batch = HelperMessage::Batch(EventBatch {
        events: (0..100)
            .map(|i| {
                event(
                    2,
                    i % 4,
                    i as u64,
                    EventData::Openat {
                        dfd: -100,
                        filename: "/usr/lib/x86_64-linux-gnu/libc.so.6".repeat(3),
                        flags: 0,
                        mode: 0,
                    },
                )
            })
            .collect(),
        stats: vec![],
    });
    let mut writer = RecordingWriter::create(&path, &header(), false).unwrap();
    for i in 0..250 {
        writer.write(i * 10, &batch).unwrap();
    }
    let finished = writer.finish().unwrap();
    assert_eq!(finished.totals.events, 25_000);

    let recording = Recording::open(&path).unwrap();
    assert_eq!(recording.index_source(), IndexSource::Footer);
    assert_eq!(recording.summary().totals, finished.totals);
    let entries = &recording.index().entries;
    assert!(entries.len() >= 3, "{entries:?}");
    assert_eq!(entries[0].offset, recording.data_start());
    for pair in entries.windows(2) {
        let gap = pair[1].offset - pair[0].offset;
        assert!(gap >= INDEX_INTERVAL_BYTES, "{pair:?}");
        assert!(gap < INDEX_INTERVAL_BYTES + 64 * 1024, "{pair:?}");
    }
    for entry in entries {
        let first = recording
            .frames_from(entry.offset)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(first.recv_ns, entry.recv_ns);
        assert_eq!(entry.events_before, entry.recv_ns / 10 * 100);
    }
    // Seeking by time lands on the last entry at or before it.
    let third = entries[2];
    assert_eq!(
        recording.index().offset_at_or_before(third.recv_ns + 5),
        Some(third.offset)
    );
    assert_eq!(
        recording.index().offset_at_or_before(u64::MAX),
        entries.last().map(|e| e.offset)
    );

    // A scan of the same frames (footer cut off) rebuilds the same index.
    let bytes = std::fs::read(&path).unwrap();
    let unfinished = dir.path().join("unfinished.mscr");
    std::fs::write(&unfinished, &bytes[..recording.data_end() as usize]).unwrap();
    let scanned = Recording::open(&unfinished).unwrap();
    assert_eq!(scanned.index_source(), IndexSource::Scan);
    assert_eq!(scanned.index(), recording.index());
    assert_eq!(scanned.damage(), None);
}

#[test]
fn bad_files_get_sentences_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad");
    let open = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        Recording::open(&path).unwrap_err()
    };

    let err = open(b"");
    assert!(matches!(err, RecordingError::NotARecording { .. }), "{err}");
    let err = open(b"PK\x03\x04 a zip file, not a recording");
    assert!(
        err.to_string().contains("not a Microscope recording"),
        "{err}"
    );
    let err = open(b"MSC");
    assert!(
        matches!(err, RecordingError::TruncatedHeader { .. }),
        "{err}"
    );

    let mut newer = encode_file_header(&header()).unwrap();
    newer[4..8].copy_from_slice(&(RECORDING_VERSION + 1).to_le_bytes());
    let err = open(&newer);
    assert!(matches!(err, RecordingError::NewerVersion { .. }), "{err}");
    assert!(err.to_string().contains("upgrade Microscope"), "{err}");

    let good = encode_file_header(&header()).unwrap();
    let err = open(&good[..good.len() - 1]);
    assert!(
        matches!(err, RecordingError::TruncatedHeader { .. }),
        "{err}"
    );
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let err = open(&flipped);
    assert!(matches!(err, RecordingError::BadHeader { .. }), "{err}");

    let err = Recording::open(dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, RecordingError::NotFound { .. }), "{err}");
    let err = open(b"vm\n");
    assert!(err.to_string().contains("starts with \"vm\\n\""), "{err}");
}

#[test]
fn decode_frame_handles_any_bytes() {
    let mut frame = Vec::new();
    let message = HelperMessage::ProbeState {
        probe: "a:b".into(),
        enabled: false,
    };
    let body = FrameBodyRef::Message(RecordedFrameRef {
        recv_ns: 5,
        message: &message,
    });
    encode_frame_into(&body, &mut frame).unwrap();
    let DecodedFrame::Frame {
        body: FrameBody::Message(decoded),
        len,
    } = decode_frame(&frame)
    else {
        panic!("expected a frame");
    };
    assert_eq!(len, frame.len());
    assert_eq!(decoded.message, message);

    assert_eq!(
        decode_frame(&[]),
        DecodedFrame::Incomplete {
            needed: FRAME_PREFIX
        }
    );
    assert_eq!(
        decode_frame(&frame[..frame.len() - 1]),
        DecodedFrame::Incomplete {
            needed: frame.len()
        }
    );
    let huge = [0xff; FRAME_PREFIX];
    assert!(matches!(
        decode_frame(&huge),
        DecodedFrame::Damaged(DamageReason::BadLength { .. })
    ));
    // A valid checksum over bytes that are not a frame body.
    let junk = [0xffu8; 3];
    let mut bad = Vec::new();
    bad.extend_from_slice(&3u32.to_le_bytes());
    bad.extend_from_slice(&crc32fast::hash(&junk).to_le_bytes());
    bad.extend_from_slice(&junk);
    assert!(matches!(
        decode_frame(&bad),
        DecodedFrame::Damaged(DamageReason::Undecodable { .. })
    ));
    // Random bodies behind a valid length and checksum reach the postcard
    // decoder: each is a frame or undecodable, never a panic and never a
    // prefix error. Half are random bytes, half the frame above with a few
    // body bytes changed (which parses deeper).
    let valid_body = &frame[FRAME_PREFIX..];
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    for round in 0..2000 {
        let body: Vec<u8> = if round % 2 == 0 {
            (0..rng.usize(..64)).map(|_| rng.u8(..)).collect()
        } else {
            let mut body = valid_body.to_vec();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..body.len());
                body[at] = rng.u8(..);
            }
            body
        };
        let mut framed = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        framed.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        framed.extend_from_slice(&body);
        match decode_frame(&framed) {
            DecodedFrame::Frame { len, .. } => assert_eq!(len, framed.len()),
            DecodedFrame::Damaged(DamageReason::Undecodable { .. }) => {}
            other => panic!("{other:?} for the body {body:?}"),
        }
    }
}

#[test]
fn footer_round_trips_and_rejects_corruption() {
    let footer = encode_footer(1234);
    assert_eq!(decode_footer(footer), Some(1234));
    for i in 0..footer.len() {
        let mut bad = footer;
        bad[i] ^= 1;
        assert_eq!(decode_footer(bad), None, "byte {i}");
    }
}

/// The layout of [`Event`], [`ProbeStats`] and [`EventBatch`] when probe
/// keys were `u16`, before [`ProbeKey`] widened them to `u32`.
mod u16_keys {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct Event {
        pub probe: u16,
        pub cpu: u32,
        pub ts_ns: u64,
        pub pid: u32,
        pub tgid: u32,
        pub comm: String,
        pub data: crate::EventData,
    }

    #[derive(Serialize)]
    pub struct ProbeStats {
        pub probe: u16,
        pub kernel_drops: u64,
        pub client_drops: u64,
    }

    #[derive(Serialize)]
    pub struct EventBatch {
        pub events: Vec<Event>,
        pub stats: Vec<ProbeStats>,
    }

    /// Postcard bytes of `HelperMessage::Batch(batch)` as a helper with
    /// `u16` keys wrote them: the variant's index (a varint), then the batch.
    pub fn batch_message(batch: &EventBatch) -> Vec<u8> {
        let batch_variant = 3;
        let mut bytes = vec![batch_variant];
        bytes.extend(postcard::to_allocvec(batch).unwrap());
        bytes
    }

    /// A recording frame around `message` (postcard bytes of a
    /// `HelperMessage`): length, CRC-32, then `FrameBody::Message`.
    pub fn recording_frame(recv_ns: u64, message: &[u8]) -> Vec<u8> {
        let message_variant = 0;
        let mut body = vec![message_variant];
        body.extend(postcard::to_allocvec(&recv_ns).unwrap());
        body.extend_from_slice(message);
        let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        frame.extend(crc32fast::hash(&body).to_le_bytes());
        frame.extend(body);
        frame
    }
}

/// Keys below 65 536 in one, two and three varint bytes, the largest `u16`
/// included.
const OLD_KEYS: [u16; 4] = [5, 300, 20_000, u16::MAX];

fn old_batch() -> u16_keys::EventBatch {
    u16_keys::EventBatch {
        events: OLD_KEYS
            .iter()
            .map(|&probe| u16_keys::Event {
                probe,
                cpu: 1,
                ts_ns: 7,
                pid: 42,
                tgid: 40,
                comm: "worker".into(),
                data: EventData::SchedExit {
                    pid: 42,
                    prio: 120,
                    group_dead: true,
                },
            })
            .collect(),
        stats: OLD_KEYS
            .iter()
            .map(|&probe| u16_keys::ProbeStats {
                probe,
                kernel_drops: 1,
                client_drops: 2,
            })
            .collect(),
    }
}

fn new_batch() -> HelperMessage {
    HelperMessage::Batch(EventBatch {
        events: OLD_KEYS
            .iter()
            .map(|&key| {
                event(
                    ProbeKey::from(key),
                    1,
                    7,
                    EventData::SchedExit {
                        pid: 42,
                        prio: 120,
                        group_dead: true,
                    },
                )
            })
            .collect(),
        stats: OLD_KEYS
            .iter()
            .map(|&key| ProbeStats {
                probe: ProbeKey::from(key),
                kernel_drops: 1,
                client_drops: 2,
            })
            .collect(),
    })
}

#[test]
fn messages_written_with_u16_probe_keys_decode_unchanged() {
    let old = u16_keys::batch_message(&old_batch());
    let decoded: HelperMessage = postcard::from_bytes(&old).unwrap();
    assert_eq!(decoded, new_batch());
    // And the other way: today's encoding is byte for byte the old one, so
    // clients and recordings from before read today's bytes too.
    assert_eq!(postcard::to_allocvec(&new_batch()).unwrap(), old);
}

#[test]
fn a_key_is_a_varint_whatever_its_width() {
    // `ProbeStats { probe: 300, kernel_drops: 1, client_drops: 2 }` by hand:
    // 300 = 0b10_0101100 is 0xAC 0x02 as a varint, as it was for a `u16`.
    let stats: ProbeStats = postcard::from_bytes(&[0xAC, 0x02, 0x01, 0x02]).unwrap();
    assert_eq!(stats.probe, 300);
    // A key past the old `u16` range takes three bytes.
    let wide = ProbeStats {
        probe: 70_000,
        kernel_drops: 1,
        client_drops: 2,
    };
    assert_eq!(
        postcard::to_allocvec(&wide).unwrap(),
        [0xF0, 0xA2, 0x04, 0x01, 0x02]
    );
}

#[test]
fn a_recording_frame_written_with_u16_probe_keys_decodes_unchanged() {
    let message = u16_keys::batch_message(&old_batch());
    let frame = u16_keys::recording_frame(1_000, &message);
    assert_eq!(
        decode_frame(&frame),
        DecodedFrame::Frame {
            body: FrameBody::Message(RecordedFrame {
                recv_ns: 1_000,
                message: new_batch(),
            }),
            len: frame.len(),
        }
    );
}

#[test]
fn a_recording_file_of_u16_keys_reads_back() {
    // Today's writer writes the frame the old one did; the reader takes it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old-keys.mscr");
    let frames = frames_of(&[new_batch()]);
    write(&path, &frames, true);
    let file = std::fs::read(&path).unwrap();
    let old_frame =
        u16_keys::recording_frame(frames[0].recv_ns, &u16_keys::batch_message(&old_batch()));
    assert!(
        file.windows(old_frame.len()).any(|w| w == old_frame),
        "the recording does not hold the frame a u16-key writer wrote"
    );
    let recording = Recording::open(&path).unwrap();
    assert_eq!(read_all(&recording), frames);
}
