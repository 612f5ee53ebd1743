//! The framing and handshake, without sockets.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use microscope_wire::{
    Aggregates, ClientMessage, Event, EventBatch, EventData, FrameDecoder, HelperMessage,
    MAX_CLIENT_FRAME_BYTES, MAX_FRAME_BYTES, PROTOCOL_VERSION, Preamble, ProbeStats, WireError,
    encode_frame,
};

fn sample_batch() -> HelperMessage {
    let event = |probe, data| Event {
        probe,
        cpu: 1,
        ts_ns: 123_456_789,
        pid: 42,
        tgid: 40,
        comm: "cat".into(),
        data,
    };
    HelperMessage::Batch(EventBatch {
        events: vec![
            event(
                5,
                EventData::Openat {
                    dfd: -100,
                    filename: "/etc/hostname".into(),
                    flags: 0,
                    mode: 0,
                },
            ),
            event(
                0,
                EventData::SchedSwitch {
                    prev_pid: 42,
                    prev_comm: "cat".into(),
                    prev_prio: 120,
                    prev_state: 1,
                    next_pid: 0,
                    next_comm: "swapper/1".into(),
                    next_prio: 120,
                },
            ),
            event(
                4,
                EventData::SchedExit {
                    pid: 42,
                    prio: 120,
                    group_dead: true,
                },
            ),
        ],
        stats: vec![ProbeStats {
            probe: 5,
            kernel_drops: 3,
            client_drops: 0,
        }],
    })
}

fn frames(messages: &[HelperMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        encode_frame(m, &mut out).unwrap();
    }
    out
}

#[test]
fn round_trip_of_several_messages() {
    let messages = vec![
        sample_batch(),
        HelperMessage::Aggregates(Aggregates {
            functions: Vec::new(),
            ts_ns: 9,
            syscall_counts: vec![(0, 10), (257, 3)],
            latency_log2_ns: vec![0; 64],
        }),
        HelperMessage::Error {
            message: "no".into(),
        },
    ];
    let bytes = frames(&messages);
    let mut decoder = FrameDecoder::<HelperMessage>::new();
    decoder.push(&bytes);
    for expected in &messages {
        assert_eq!(decoder.next_message().unwrap().as_ref(), Some(expected));
    }
    assert_eq!(decoder.next_message().unwrap(), None);
    decoder.finish().unwrap();
}

#[test]
fn byte_at_a_time_gives_the_same_messages() {
    let messages = vec![
        sample_batch(),
        HelperMessage::ProbeState {
            probe: "a:b".into(),
            enabled: true,
        },
    ];
    let bytes = frames(&messages);
    let mut decoder = FrameDecoder::<HelperMessage>::new();
    let mut got = Vec::new();
    for b in bytes {
        decoder.push(&[b]);
        while let Some(m) = decoder.next_message().unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, messages);
}

#[test]
fn truncated_stream_is_reported_not_invented() {
    let bytes = frames(&[sample_batch()]);
    for cut in 1..bytes.len() {
        let mut decoder = FrameDecoder::<HelperMessage>::new();
        decoder.push(&bytes[..cut]);
        assert_eq!(decoder.next_message().unwrap(), None, "cut at {cut}");
        assert_eq!(
            decoder.finish(),
            Err(WireError::Truncated { buffered: cut })
        );
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    // A plausible length followed by bytes that are not a message.
    let mut bytes = 6u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0xff; 6]);
    let mut decoder = FrameDecoder::<ClientMessage>::new();
    decoder.push(&bytes);
    assert!(matches!(
        decoder.next_message(),
        Err(WireError::Malformed { len: 6, .. })
    ));

    // Random bodies behind a valid length prefix reach the postcard
    // decoder: each is a whole frame, so it is a message or `Malformed`,
    // never a panic and never "wait for more bytes". Half are random
    // bytes, half a real message with a few bytes changed (which parses
    // deeper before it fails, or decodes to another message).
    let mut valid = Vec::new();
    encode_frame(&sample_batch(), &mut valid).unwrap();
    let valid_body = &valid[4..];
    let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
    for round in 0..2000 {
        let body: Vec<u8> = if round % 2 == 0 {
            (0..rng.usize(1..256)).map(|_| rng.u8(..)).collect()
        } else {
            let mut body = valid_body.to_vec();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..body.len());
                body[at] = rng.u8(..);
            }
            body
        };
        let mut framed = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        framed.extend_from_slice(&body);
        let mut decoder = FrameDecoder::<HelperMessage>::new();
        decoder.push(&framed);
        match decoder.next_message() {
            Ok(Some(_)) | Err(WireError::Malformed { .. }) => {}
            other => panic!("{other:?} for the body {body:?}"),
        }
    }
}

#[test]
fn oversized_frame_is_refused_before_buffering_it() {
    let mut decoder = FrameDecoder::<HelperMessage>::new();
    decoder.push(&(MAX_FRAME_BYTES + 1).to_le_bytes());
    assert_eq!(
        decoder.next_message(),
        Err(WireError::FrameTooLarge {
            len: MAX_FRAME_BYTES + 1,
            max: MAX_FRAME_BYTES
        })
    );
}

#[test]
fn the_helper_refuses_client_frames_past_their_own_small_limit() {
    let mut decoder = FrameDecoder::<ClientMessage>::with_max_frame(MAX_CLIENT_FRAME_BYTES);
    // The largest client frame passes...
    let probe = "x".repeat(MAX_CLIENT_FRAME_BYTES as usize - 16);
    let mut frame = Vec::new();
    encode_frame(
        &ClientMessage::Enable {
            probe: probe.clone(),
        },
        &mut frame,
    )
    .unwrap();
    assert!(frame.len() - 4 <= MAX_CLIENT_FRAME_BYTES as usize);
    decoder.push(&frame);
    assert_eq!(
        decoder.next_message(),
        Ok(Some(ClientMessage::Enable { probe }))
    );
    // ...one byte more is refused from its length prefix alone.
    decoder.push(&(MAX_CLIENT_FRAME_BYTES + 1).to_le_bytes());
    assert_eq!(
        decoder.next_message(),
        Err(WireError::FrameTooLarge {
            len: MAX_CLIENT_FRAME_BYTES + 1,
            max: MAX_CLIENT_FRAME_BYTES
        })
    );
}

#[test]
fn preamble_round_trip() {
    let bytes = Preamble::current().to_bytes();
    assert_eq!(&bytes[..4], b"MSCP");
    assert_eq!(
        Preamble::check(bytes),
        Ok(Preamble {
            version: PROTOCOL_VERSION
        })
    );
}

#[test]
fn wrong_magic_is_named() {
    let err = Preamble::check(*b"GET / HT").unwrap_err();
    assert_eq!(
        err,
        WireError::BadMagic {
            expected: *b"MSCP",
            found: *b"GET "
        }
    );
    assert!(err.to_string().contains("not a Microscope"), "{err}");
}

#[test]
fn wrong_version_says_what_to_do() {
    let bytes = Preamble {
        version: PROTOCOL_VERSION + 1,
    }
    .to_bytes();
    let err = Preamble::check(bytes).unwrap_err();
    assert_eq!(
        err,
        WireError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: PROTOCOL_VERSION + 1
        }
    );
    assert!(err.to_string().contains("same Microscope release"), "{err}");
    // `parse` accepts it: a peer can still read the version to report it.
    assert_eq!(
        Preamble::parse(bytes).unwrap().version,
        PROTOCOL_VERSION + 1
    );
}
