//! The ingest thread against a fake helper on a real Unix socket: handshake,
//! probe list, enabling, streaming, disconnect and re-enable on reconnect.

#![expect(
    clippy::unwrap_used,
    reason = "a failed step is a broken test; panicking says so"
)]

use crossbeam_channel::{Receiver, Sender, bounded};
use microscope_model::Update;
use microscope_sources::{Recorder, spawn_ingest};
use microscope_wire::{
    Availability, Capabilities, ClientMessage, Event, EventBatch, EventData, FrameDecoder,
    HelperInfo, HelperMessage, Preamble, ProbeInfo, ProbeKind, encode_frame,
};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "microscope-ingest-{name}-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

fn send(stream: &mut UnixStream, message: &HelperMessage) {
    let mut frame = Vec::new();
    encode_frame(message, &mut frame).unwrap();
    stream.write_all(&frame).unwrap();
}

fn hello() -> HelperInfo {
    let yes = || Availability::yes("test");
    HelperInfo {
        helper_version: "9.9.9".into(),
        kernel_release: "6.18.0-fake".into(),
        capabilities: Capabilities {
            tracefs: yes(),
            btf: yes(),
            kprobes: yes(),
            fentry: yes(),
            uprobes: yes(),
        },
    }
}

fn probes() -> Vec<ProbeInfo> {
    vec![ProbeInfo {
        fields: Vec::new(),
        id: "sched:sched_switch".into(),
        key: 1,
        subsystem: "Scheduler".into(),
        description: "switches".into(),
        kind: ProbeKind::Stream,
        availability: Availability::yes(""),
        enabled: false,
    }]
}

/// Serves one connection: answers the handshake, `ListProbes` and `Enable`
/// (with a `ProbeState` and a batch of three events), reports every client
/// message on `seen`, and hangs up after `hang_up_after` messages.
fn serve_one(listener: &UnixListener, seen: &Sender<ClientMessage>, hang_up_after: usize) {
    let (mut stream, _) = listener.accept().unwrap();
    let mut preamble = [0; Preamble::LEN];
    stream.read_exact(&mut preamble).unwrap();
    Preamble::check(preamble).unwrap();
    stream.write_all(&Preamble::current().to_bytes()).unwrap();
    send(&mut stream, &HelperMessage::Hello(hello()));
    let mut decoder = FrameDecoder::<ClientMessage>::new();
    let mut buf = [0; 4096];
    let mut handled = 0;
    while handled < hang_up_after {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            return;
        }
        decoder.push(&buf[..n]);
        while let Some(message) = decoder.next_message().unwrap() {
            match &message {
                ClientMessage::ListProbes => send(&mut stream, &HelperMessage::Probes(probes())),
                ClientMessage::Enable { probe } => {
                    send(
                        &mut stream,
                        &HelperMessage::ProbeState {
                            probe: probe.clone(),
                            enabled: true,
                        },
                    );
                    let event = Event {
                        probe: 1,
                        cpu: 0,
                        ts_ns: 1,
                        pid: 1,
                        tgid: 1,
                        comm: "t".into(),
                        data: EventData::SchedFork {
                            parent_pid: 1,
                            child_pid: 2,
                        },
                    };
                    let batch = EventBatch {
                        events: vec![event; 3],
                        stats: vec![],
                    };
                    send(&mut stream, &HelperMessage::Batch(batch));
                }
                ClientMessage::Disable { .. } => {}
                _ => {}
            }
            seen.send(message).unwrap();
            handled += 1;
        }
    }
    // Dropping the stream hangs up.
}

fn start_ingest(socket: PathBuf) -> (Receiver<Update>, Sender<ClientMessage>) {
    start_recording_ingest(socket, Recorder::default())
}

fn start_recording_ingest(
    socket: PathBuf,
    recorder: Recorder,
) -> (Receiver<Update>, Sender<ClientMessage>) {
    let (update_tx, updates) = bounded(64);
    let (commands, command_rx) = bounded(64);
    spawn_ingest(socket, update_tx, command_rx, Arc::new(|| {}), recorder).unwrap();
    (updates, commands)
}

#[test]
fn the_record_button_records_what_the_ingest_receives() {
    let path = socket_path("record");
    let listener = UnixListener::bind(&path).unwrap();
    let (seen_tx, _seen) = bounded(64);
    let _helper = std::thread::spawn(move || serve_one(&listener, &seen_tx, usize::MAX));
    let recorder = Recorder::default();
    let (updates, commands) = start_recording_ingest(path, recorder.clone());
    assert!(matches!(next_update(&updates), Update::Connected(_)));
    assert!(matches!(next_update(&updates), Update::Probes(_)));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("window.mscr");
    let wanted = std::collections::BTreeSet::from(["sched:sched_switch".to_owned()]);
    recorder.start(&file, &wanted).unwrap();
    commands
        .send(ClientMessage::Enable {
            probe: "sched:sched_switch".into(),
        })
        .unwrap();
    assert!(matches!(next_update(&updates), Update::ProbeState { .. }));
    assert!(matches!(next_update(&updates), Update::Events { .. }));
    assert_eq!(recorder.status().map(|s| s.events), Some(3));
    let outcome = recorder.stop().unwrap();
    assert!(outcome.contains("recorded 3 events"), "{outcome}");
    let recording = microscope_wire::Recording::open(&file).unwrap();
    assert_eq!(recording.header().helper.helper_version, "9.9.9");
    assert!(recording.header().probes.iter().any(|p| p.enabled));
    assert_eq!(recording.summary().totals.events, 3);
}

fn next_update(updates: &Receiver<Update>) -> Update {
    updates.recv_timeout(TIMEOUT).unwrap()
}

#[test]
fn no_helper_reports_disconnected_with_a_sentence() {
    let (updates, _commands) = start_ingest(socket_path("absent"));
    let Update::Disconnected { reason } = next_update(&updates) else {
        panic!("expected a disconnect")
    };
    assert!(
        reason.contains("no Microscope helper is running"),
        "{reason}"
    );
    assert!(reason.contains("sudo microscoped"), "{reason}");
}

#[test]
fn streams_and_reenables_after_a_reconnect() {
    let path = socket_path("reconnect");
    let listener = UnixListener::bind(&path).unwrap();
    let (seen_tx, seen) = bounded(64);
    // First connection: hang up after ListProbes and one Enable; second: stay.
    let helper = std::thread::spawn(move || {
        serve_one(&listener, &seen_tx, 2);
        serve_one(&listener, &seen_tx, usize::MAX);
    });

    let (updates, commands) = start_ingest(path);
    assert!(
        matches!(next_update(&updates), Update::Connected(info) if info.helper_version == "9.9.9")
    );
    assert!(matches!(next_update(&updates), Update::Probes(p) if p.len() == 1));
    assert_eq!(
        seen.recv_timeout(TIMEOUT).unwrap(),
        ClientMessage::ListProbes
    );

    commands
        .send(ClientMessage::Enable {
            probe: "sched:sched_switch".into(),
        })
        .unwrap();
    assert_eq!(
        next_update(&updates),
        Update::ProbeState {
            probe: "sched:sched_switch".into(),
            enabled: true
        }
    );
    let Update::Events { counts, .. } = next_update(&updates) else {
        panic!("expected events")
    };
    assert_eq!(counts[0].events, 3);

    // The fake helper hung up: a disconnect, then a reconnect that re-enables
    // the probe without the UI asking again.
    let Update::Disconnected { reason } = next_update(&updates) else {
        panic!("expected a disconnect")
    };
    assert_eq!(reason, "the helper closed the connection");
    assert!(matches!(next_update(&updates), Update::Connected(_)));
    assert_eq!(
        seen.recv_timeout(TIMEOUT).unwrap(),
        ClientMessage::Enable {
            probe: "sched:sched_switch".into()
        }
    );
    assert_eq!(
        seen.recv_timeout(TIMEOUT).unwrap(),
        ClientMessage::ListProbes
    );
    assert_eq!(
        seen.recv_timeout(TIMEOUT).unwrap(),
        ClientMessage::Enable {
            probe: "sched:sched_switch".into()
        }
    );

    // Dropping the UI's ends stops the ingest thread, which hangs up.
    drop(commands);
    drop(updates);
    helper.join().unwrap();
}
