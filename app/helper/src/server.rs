//! The socket server: accepts clients, checks who they are, and runs the hub
//! that owns the [`Tracer`].
//!
//! One task per client reads its commands; one writer task per client sends
//! frames from a bounded queue. The hub task alone touches the tracer: it
//! applies commands, drains the ring buffer every [`POLL_INTERVAL`], and sends
//! each client a batch of the events it asked for at least every
//! [`MAX_BATCH_AGE`] (or sooner when [`MAX_BATCH_EVENTS`] are pending).
//! Stack counts (profiles) are drained every [`crate::DRAIN_INTERVAL`] and
//! sent as [`HelperMessage::Stacks`] to the clients that enabled a stack
//! probe; frame names go to each client once (see `ClientState::frames_sent`).

use crate::auth::{Peer, Policy};
use crate::probeset::ProbeSet;
use crate::profiler::StackBatchParts;
use microscope_wire::{
    ClientMessage, Event, EventBatch, FrameDecoder, HelperInfo, HelperMessage,
    MAX_LISTED_FUNCTIONS, Preamble, ProbeStats, encode_frame,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

/// How often the ring buffer is drained. The programs submit without waking
/// us (`BPF_RB_NO_WAKEUP`), so this is the only thing that reads it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Oldest a pending event may get before its batch is sent.
pub const MAX_BATCH_AGE: Duration = Duration::from_millis(40);
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 8192;
/// How often aggregates and drop counters are read.
pub const AGGREGATE_INTERVAL: Duration = Duration::from_millis(250);
/// Most records drained per poll, so one poll never starves the hub.
const MAX_DRAIN_PER_POLL: usize = 200_000;
/// Frames queued per client before batches are dropped for it.
const CLIENT_QUEUE_FRAMES: usize = 256;
/// How long a client may take to send its preamble.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

type ClientId = u64;

/// A request from a client task to the hub.
enum HubRequest {
    Join {
        id: ClientId,
        frames: mpsc::Sender<Arc<Vec<u8>>>,
    },
    Message {
        id: ClientId,
        message: ClientMessage,
    },
    Leave {
        id: ClientId,
    },
}

/// The hub's view of one client.
struct ClientState {
    frames: mpsc::Sender<Arc<Vec<u8>>>,
    enabled: BTreeSet<u16>,
    pending: Vec<Event>,
    oldest_pending: Option<Instant>,
    /// Events dropped for this client because its queue was full, by probe.
    client_drops: HashMap<u16, u64>,
    /// Frame ids `0..frames_sent` have been defined to this client; its
    /// next stack batch carries the definitions from there on.
    frames_sent: u32,
}

impl ClientState {
    fn send(&self, message: &HelperMessage) -> bool {
        let mut frame = Vec::new();
        if let Err(err) = encode_frame(message, &mut frame) {
            log::error!("could not encode a message: {err}");
            return false;
        }
        self.frames.try_send(Arc::new(frame)).is_ok()
    }

    fn wants(&self, probe: u16) -> bool {
        self.enabled.contains(&probe)
    }
}

/// Serves clients on `listener` until `shutdown` flips to true. Returns after
/// every probe has been detached; an error if the hub crashed.
pub async fn serve(
    listener: UnixListener,
    probes: ProbeSet,
    info: HelperInfo,
    policy: Policy,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let (hub_tx, hub_rx) = mpsc::channel(1024);
    let info = Arc::new(info);
    let policy = Arc::new(policy);
    let mut hub = tokio::spawn(hub(probes, hub_rx, shutdown.clone()));
    let mut next_id: ClientId = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    next_id += 1;
                    let (hub_tx, info, policy) = (hub_tx.clone(), info.clone(), policy.clone());
                    tokio::spawn(serve_client(stream, next_id, hub_tx, info, policy));
                }
                Err(err) => {
                    log::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
            // The hub only ends early by panicking; unwinding dropped the
            // tracer, which detached every probe. Stop serving.
            result = &mut hub => {
                // The hub also watches `shutdown` and may notice it first.
                if result.is_ok() && *shutdown.borrow() {
                    return Ok(());
                }
                return Err(match result {
                    Err(err) => format!("the hub task failed: {err}"),
                    Ok(()) => "the hub task stopped unexpectedly".to_owned(),
                });
            }
        }
    }
    drop(hub_tx);
    hub.await
        .map_err(|err| format!("the hub task failed: {err}"))
}

async fn serve_client(
    stream: UnixStream,
    id: ClientId,
    hub: mpsc::Sender<HubRequest>,
    info: Arc<HelperInfo>,
    policy: Arc<Policy>,
) {
    let peer = match stream.peer_cred() {
        Ok(cred) => Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid().filter(|p| *p > 0),
        },
        Err(err) => {
            log::warn!("client {id}: cannot read peer credentials ({err}); closing");
            return;
        }
    };
    let (mut reader, mut writer) = stream.into_split();

    // Handshake: both sides send a preamble; we then send Hello or an Error.
    let mut first = Preamble::current().to_bytes().to_vec();
    let mut preamble = [0; Preamble::LEN];
    let refusal =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_exact(&mut preamble)).await {
            Err(_) => Some("no preamble within 5 s; closing".to_owned()),
            Ok(Err(err)) => {
                log::debug!("client {id}: closed during handshake ({err})");
                return;
            }
            Ok(Ok(_)) => match Preamble::check(preamble) {
                Err(err) => Some(err.to_string()),
                Ok(_) => policy.check(&peer).err(),
            },
        };
    let hello = match &refusal {
        Some(message) => {
            log::warn!("client {id} (uid {}) refused: {message}", peer.uid);
            HelperMessage::Error {
                message: message.clone(),
            }
        }
        None => HelperMessage::Hello((*info).clone()),
    };
    if encode_frame(&hello, &mut first).is_err() || writer.write_all(&first).await.is_err() {
        return;
    }
    if refusal.is_some() {
        let _ = writer.shutdown().await;
        return;
    }
    log::info!(
        "client {id} connected (uid {}, pid {:?})",
        peer.uid,
        peer.pid
    );

    let (frames_tx, mut frames_rx) = mpsc::channel::<Arc<Vec<u8>>>(CLIENT_QUEUE_FRAMES);
    if hub
        .send(HubRequest::Join {
            id,
            frames: frames_tx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let writer_task = tokio::spawn(async move {
        while let Some(frame) = frames_rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    });

    let mut decoder = FrameDecoder::<ClientMessage>::new();
    let mut buf = vec![0u8; 64 * 1024];
    'read: loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if hub.send(HubRequest::Message { id, message }).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    log::warn!("client {id}: {err}; closing");
                    let mut frame = Vec::new();
                    let message = format!("the helper could not decode your message: {err}");
                    if encode_frame(&HelperMessage::Error { message }, &mut frame).is_ok() {
                        let _ = frames_tx.send(Arc::new(frame)).await;
                    }
                    break 'read;
                }
            }
        }
    }
    let _ = hub.send(HubRequest::Leave { id }).await;
    drop(frames_tx);
    // Let queued frames (such as a final error) go out, but not forever.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer_task).await;
    log::info!("client {id} left");
}

/// Owns the probes; applies requests and moves events to clients.
async fn hub(
    mut tracer: ProbeSet,
    mut requests: mpsc::Receiver<HubRequest>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut clients: HashMap<ClientId, ClientState> = HashMap::new();
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_aggregate = Instant::now();
    let mut stacks_tick = tokio::time::interval(crate::DRAIN_INTERVAL);
    stacks_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut kernel_drops: Vec<ProbeStats> = tracer.kernel_drops();
    let mut scratch = Vec::new();
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => apply(&mut tracer, &mut clients, request),
                None => break,
            },
            _ = poll.tick() => {
                scratch.clear();
                tracer.drain(MAX_DRAIN_PER_POLL, &mut scratch);
                distribute(&mut clients, &mut scratch);
                let now = Instant::now();
                if now.duration_since(last_aggregate) >= AGGREGATE_INTERVAL {
                    last_aggregate = now;
                    kernel_drops = tracer.kernel_drops();
                    send_aggregates(&tracer, &clients, monotonic_ns());
                }
                for client in clients.values_mut() {
                    let due = client.pending.len() >= MAX_BATCH_EVENTS
                        || client.oldest_pending.is_some_and(|t| now.duration_since(t) >= MAX_BATCH_AGE);
                    if due {
                        flush(client, &kernel_drops);
                    }
                }
            },
            _ = stacks_tick.tick() => {
                if let Some(parts) = tracer.drain_stacks(monotonic_ns()) {
                    send_stacks(&tracer, &mut clients, &parts);
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    let n = tracer.detach_all();
    log::info!("hub stopped; detached {n} probe(s)");
}

fn apply(tracer: &mut ProbeSet, clients: &mut HashMap<ClientId, ClientState>, request: HubRequest) {
    match request {
        HubRequest::Join { id, frames } => {
            clients.insert(
                id,
                ClientState {
                    frames,
                    enabled: BTreeSet::new(),
                    pending: Vec::new(),
                    oldest_pending: None,
                    client_drops: HashMap::new(),
                    frames_sent: 0,
                },
            );
        }
        HubRequest::Leave { id } => {
            if let Some(client) = clients.remove(&id) {
                for key in client.enabled {
                    detach_if_unwanted(tracer, clients, key);
                }
            }
            if clients.is_empty() {
                // The last client left: nothing stays attached.
                tracer.detach_all();
            }
        }
        HubRequest::Message { id, message } => {
            for reply in handle_message(tracer, clients, id, message) {
                if let Some(client) = clients.get(&id)
                    && !client.send(&reply)
                {
                    log::warn!("client {id}: reply dropped, its queue is full");
                }
            }
        }
    }
}

/// Applies one client message; returns the replies for that client (other
/// clients are told directly when a change concerns them all).
fn handle_message(
    probes: &mut ProbeSet,
    clients: &mut HashMap<ClientId, ClientState>,
    id: ClientId,
    message: ClientMessage,
) -> Vec<HelperMessage> {
    let error = |message: String| vec![HelperMessage::Error { message }];
    match message {
        ClientMessage::ListProbes => {
            let enabled = clients
                .get(&id)
                .map(|c| c.enabled.clone())
                .unwrap_or_default();
            vec![HelperMessage::Probes(probes.list(&enabled))]
        }
        ClientMessage::Enable { probe } => {
            let (key, added) = match probes.enable(&probe) {
                Ok(enabled) => enabled,
                Err(message) => return error(message),
            };
            if let Some(client) = clients.get_mut(&id) {
                client.enabled.insert(key);
            }
            let mut replies: Vec<HelperMessage> =
                added.into_iter().map(HelperMessage::ProbeAdded).collect();
            replies.push(HelperMessage::ProbeState {
                probe,
                enabled: true,
            });
            replies
        }
        ClientMessage::Disable { probe } => {
            let Some(key) = probes.key_of(&probe) else {
                return error(format!(
                    "unknown probe `{probe}`; `microscope probes` lists the probes this helper offers"
                ));
            };
            if let Some(client) = clients.get_mut(&id) {
                client.enabled.remove(&key);
                client.pending.retain(|e| e.probe != key);
            }
            detach_if_unwanted(probes, clients, key);
            vec![HelperMessage::ProbeState {
                probe,
                enabled: false,
            }]
        }
        ClientMessage::SetOptions { probe, options } => {
            let attached = probes
                .key_of(&probe)
                .is_some_and(|key| clients.values().any(|c| c.wants(key)));
            match probes.set_options(&probe, options, attached) {
                Ok(key) => vec![HelperMessage::ProbeState {
                    probe,
                    enabled: clients.get(&id).is_some_and(|c| c.wants(key)),
                }],
                Err(message) => error(message),
            }
        }
        ClientMessage::ListTracepoints => match probes.tracepoints() {
            Ok(names) => vec![HelperMessage::Tracepoints(names)],
            Err(message) => error(message),
        },
        ClientMessage::ListKernelFunctions { contains } => {
            let (names, truncated) =
                crate::funcprobe::kernel_functions(&contains, MAX_LISTED_FUNCTIONS);
            vec![HelperMessage::KernelFunctions {
                contains,
                names,
                truncated,
            }]
        }
        ClientMessage::VerifierLog { probe } => match probes.verifier_log(&probe) {
            Ok(log) => vec![HelperMessage::VerifierLog { probe, log }],
            Err(message) => error(message),
        },
        ClientMessage::SetFilter(filter) => {
            if let Err(message) = probes.set_filter(filter) {
                return error(message);
            }
            log::info!("client {id} set the process filter to {}", probes.filter());
            // Every client's data changes: tell them all.
            let notice = HelperMessage::Filter(probes.filter().clone());
            for (other, client) in clients.iter() {
                if *other != id {
                    client.send(&notice);
                }
            }
            vec![notice]
        }
    }
}

fn detach_if_unwanted(probes: &mut ProbeSet, clients: &HashMap<ClientId, ClientState>, key: u16) {
    if !clients.values().any(|c| c.wants(key)) {
        probes.detach(key);
    }
}

/// Moves drained events into the pending batches of the clients that want them.
fn distribute(clients: &mut HashMap<ClientId, ClientState>, events: &mut Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let now = Instant::now();
    let count = clients.len();
    for (i, client) in clients.values_mut().enumerate() {
        let before = client.pending.len();
        if i + 1 == count {
            // The last client takes the events themselves; the others get copies.
            let enabled = &client.enabled;
            client
                .pending
                .extend(events.drain(..).filter(|e| enabled.contains(&e.probe)));
        } else {
            let enabled = &client.enabled;
            client.pending.extend(
                events
                    .iter()
                    .filter(|e| enabled.contains(&e.probe))
                    .cloned(),
            );
        }
        if client.pending.len() > before && client.oldest_pending.is_none() {
            client.oldest_pending = Some(now);
        }
    }
}

fn flush(client: &mut ClientState, kernel_drops: &[ProbeStats]) {
    let events = std::mem::take(&mut client.pending);
    client.oldest_pending = None;
    let stats = kernel_drops
        .iter()
        .filter(|s| client.wants(s.probe))
        .map(|s| ProbeStats {
            client_drops: client.client_drops.get(&s.probe).copied().unwrap_or(0),
            ..s.clone()
        })
        .collect();
    let mut counts: HashMap<u16, u64> = HashMap::new();
    for e in &events {
        *counts.entry(e.probe).or_default() += 1;
    }
    if !client.send(&HelperMessage::Batch(EventBatch { events, stats })) {
        for (probe, n) in counts {
            *client.client_drops.entry(probe).or_default() += n;
        }
    }
}

/// Sends each client that enabled a stack probe its part of `parts`, with
/// the frame names it has not been sent yet. A batch that does not fit in
/// the client's queue is lost, but its definitions are sent again with the
/// next one.
fn send_stacks(
    probes: &ProbeSet,
    clients: &mut HashMap<ClientId, ClientState>,
    parts: &StackBatchParts,
) {
    for client in clients.values_mut() {
        if !probes.wants_stacks(&client.enabled) {
            continue;
        }
        let (batch, frames_sent) =
            parts.batch_for(probes.frames(), client.frames_sent, |p| client.wants(p));
        if client.send(&HelperMessage::Stacks(batch)) {
            client.frames_sent = frames_sent;
        }
    }
}

fn send_aggregates(probes: &ProbeSet, clients: &HashMap<ClientId, ClientState>, ts_ns: u64) {
    for client in clients.values() {
        if let Some(aggregates) = probes.aggregates_for(&client.enabled, ts_ns) {
            // A full queue only loses this snapshot; the next one is cumulative.
            client.send(&HelperMessage::Aggregates(aggregates));
        }
        for data in probes.pack_data_for(&client.enabled, ts_ns) {
            client.send(&HelperMessage::PackData(data));
        }
    }
}

/// Nanoseconds of CLOCK_MONOTONIC, the clock of the events' `ts_ns`.
fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}
