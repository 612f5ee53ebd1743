//! The socket server: accepts clients, checks who they are, and runs the hub
//! that owns the probes.
//!
//! Threads and tasks:
//! - tokio (created in `main`) only moves bytes: the accept loop, one reader
//!   and one writer task per client. Requests that read files (the
//!   tracepoint list, the kernel function list) run on tokio's blocking pool,
//!   at most [`MAX_LISTINGS`] at once.
//! - The hub runs on its own thread, `microscoped-hub`, and alone owns the
//!   [`ProbeSet`]: it applies requests (loading BPF, parsing ELF and BTF,
//!   opening uprobe targets), drains the ring buffer every
//!   [`POLL_INTERVAL`], and queues batches for the clients.
//!
//! Every resource a client can make the helper spend is bounded:
//! - connections: [`MAX_CLIENTS`] in all and [`MAX_CLIENTS_PER_UID`] per
//!   user (root excepted); the next one gets a sentence and is closed;
//! - a client's frames: [`MAX_CLIENT_FRAME_BYTES`] each, read through a
//!   [`READ_BUFFER_BYTES`] buffer, one request at a time (the next is read
//!   once the hub has answered the previous one), the preamble within
//!   [`HANDSHAKE_TIMEOUT`];
//! - what waits for a client: [`CLIENT_DATA_BYTES`] of batches and
//!   [`CLIENT_REPLY_BYTES`] of answers per client, [`USER_QUEUED_BYTES`]
//!   for all clients of one user (so one user's stalled clients cannot
//!   take everyone's room), [`TOTAL_QUEUED_BYTES`] for all clients
//!   together; a batch that does not fit is dropped and counted in the
//!   client's `client_drops`;
//! - batches: at most [`MAX_BATCH_EVENTS`] events and about
//!   [`MAX_BATCH_BYTES`] each, [`TOTAL_PENDING_BYTES`] pending for all
//!   clients together; pending events are split into as many
//!   batches as needed, never dropped for size; frame-name tables go out
//!   [`MAX_FRAMES_PER_BATCH`] names at a time, stacks
//!   [`MAX_STACKS_PER_BATCH`] at a time;
//! - probes created on demand: see `registry.rs`;
//! - cost reports: one per [`COST_INTERVAL`] for all watching clients
//!   together, over the attached probes; the kernel's run-time statistics
//!   are held once while any client watches (`cost.rs`), however often a
//!   client asks.
//!
//! Each client has its own process filter, so one user's filter never
//! changes what another user receives. Each distinct filter has a slot in
//! the kernel's filter table (`filter_slots.rs`, at most
//! `probes_common::FILTER_SLOTS`): the kernel streams what any slot keeps
//! and counts aggregates per slot, so each client's aggregates are exactly
//! its filter's; the hub refines events and stacks per client. Third-party
//! packs get the filter all clients share (`kernel_filter`), else none.

use crate::auth::{Peer, Policy, peer_groups};
use crate::cost::CostMeter;
use crate::probeset::ProbeSet;
use crate::profiler::StackBatchParts;
use microscope_wire::ProbeKey;
use microscope_wire::monotonic_ns;
use microscope_wire::{
    ClientMessage, Event, EventBatch, EventData, FieldValue, FrameDecoder, HelperInfo,
    HelperMessage, MAX_CLIENT_FRAME_BYTES, MAX_LISTED_FUNCTIONS, Preamble, ProbeStats,
    ProcessFilter, StackBatch, StackCount, encode_frame,
};
use std::collections::{BTreeSet, HashMap};
use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};

/// How often the ring buffer is drained. The programs submit without waking
/// us (`BPF_RB_NO_WAKEUP`), so this is the only thing that reads it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Oldest a pending event may get before its batch is sent.
pub const MAX_BATCH_AGE: Duration = Duration::from_millis(40);
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 8192;
/// About the most bytes of events in one batch (estimated before encoding).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// About the most bytes of events pending for all clients together: past
/// this a client's pending events are sent (or dropped) at once, so many
/// clients of a busy probe cannot pile up copies between flushes.
pub const TOTAL_PENDING_BYTES: usize = 16 << 20;
/// How often aggregates and drop counters are read.
pub const AGGREGATE_INTERVAL: Duration = Duration::from_millis(250);
/// Most records drained per poll, so one poll never starves the hub (and
/// its events, copied per client, stay a few MiB).
const MAX_DRAIN_PER_POLL: usize = 50_000;
/// Most connections at once.
pub const MAX_CLIENTS: usize = 256;
/// Most connections of one user at once (root is only held to [`MAX_CLIENTS`]).
pub const MAX_CLIENTS_PER_UID: usize = 32;
/// Bytes of batches, aggregates and stacks waiting for one client.
pub const CLIENT_DATA_BYTES: usize = 4 << 20;
/// Bytes of answers to its requests waiting for one client.
pub const CLIENT_REPLY_BYTES: usize = 4 << 20;
/// Bytes waiting for all clients of one user together (root: only the total).
pub const USER_QUEUED_BYTES: usize = 16 << 20;
/// Bytes waiting for all clients together.
pub const TOTAL_QUEUED_BYTES: usize = 128 << 20;
/// Frames waiting for one client (whatever their size).
const CLIENT_QUEUE_FRAMES: usize = 1024;
/// Names per stack batch; a longer table is sent in several.
pub const MAX_FRAMES_PER_BATCH: usize = 8192;
/// Stacks per stack batch; more are sent in several.
pub const MAX_STACKS_PER_BATCH: usize = 8192;
/// How long a client may take to send its preamble.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read from a client at a time.
pub const READ_BUFFER_BYTES: usize = 4096;
/// File-reading requests (tracepoint and function lists) served at once.
pub const MAX_LISTINGS: usize = 2;
/// Requests waiting for the hub, from all clients.
const HUB_QUEUE: usize = 1024;
/// Requests the hub applies between two polls, at most.
const REQUESTS_PER_TURN: usize = 64;

type ClientId = u64;

/// A request from a client task to the hub.
enum HubRequest {
    Join {
        id: ClientId,
        peer: Peer,
        outbox: Outbox,
    },
    Message {
        id: ClientId,
        message: ClientMessage,
        /// Dropped once the message is handled: the client's next request
        /// is read only then.
        _done: oneshot::Sender<()>,
    },
    Leave {
        id: ClientId,
    },
}

/// What a queued frame is, for its byte budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameKind {
    /// Batches, aggregates, stacks: dropped (and counted) when they do not fit.
    Data,
    /// Answers to the client's requests.
    Reply,
}

/// A frame waiting for a client, and which budget it counts against.
type Queued = (Arc<Vec<u8>>, FrameKind);

/// A number of bytes that may be queued, and how many are.
#[derive(Debug)]
struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Takes `n` bytes if they fit.
    fn take(&self, n: usize) -> bool {
        if self.used.fetch_add(n, Ordering::AcqRel) + n > self.limit {
            self.used.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// The hub's end of a client's queue, with its byte budgets: its own for
/// data and for answers, its user's, and everyone's.
#[derive(Clone, Debug)]
struct Outbox {
    frames: mpsc::Sender<Queued>,
    data: Arc<Budget>,
    replies: Arc<Budget>,
    user: Arc<Budget>,
    total: Arc<Budget>,
}

impl Outbox {
    fn new(frames: mpsc::Sender<Queued>, user: Arc<Budget>, total: Arc<Budget>) -> Self {
        Self {
            frames,
            data: Budget::new(CLIENT_DATA_BYTES),
            replies: Budget::new(CLIENT_REPLY_BYTES),
            user,
            total,
        }
    }

    fn budgets(&self, kind: FrameKind) -> [&Budget; 3] {
        let own = match kind {
            FrameKind::Data => &self.data,
            FrameKind::Reply => &self.replies,
        };
        [own, &self.user, &self.total]
    }

    /// Queues `message` if it fits every budget; whether it was queued.
    fn send(&self, message: &HelperMessage, kind: FrameKind) -> bool {
        let mut frame = Vec::new();
        if let Err(err) = encode_frame(message, &mut frame) {
            log::error!("could not encode a message: {err}");
            return false;
        }
        let len = frame.len();
        let budgets = self.budgets(kind);
        for (i, budget) in budgets.iter().enumerate() {
            if !budget.take(len) {
                budgets.iter().take(i).for_each(|b| b.give(len));
                return false;
            }
        }
        if self.frames.try_send((Arc::new(frame), kind)).is_err() {
            self.sent(len, kind);
            return false;
        }
        true
    }

    /// Whether a batch could be queued now: none of the data budgets is
    /// spent. A client without room has its events counted as dropped
    /// rather than copied, so stalled clients cost the hub next to nothing.
    fn has_room_for_data(&self) -> bool {
        self.budgets(FrameKind::Data)
            .iter()
            .all(|b| b.used.load(Ordering::Acquire) < b.limit)
    }

    /// Gives back the budget of a frame written (or abandoned).
    fn sent(&self, len: usize, kind: FrameKind) {
        self.budgets(kind).iter().for_each(|b| b.give(len));
    }
}

/// The hub's view of one client.
struct ClientState {
    peer: Peer,
    outbox: Outbox,
    enabled: BTreeSet<ProbeKey>,
    /// This client's own process filter.
    filter: ProcessFilter,
    pending: Vec<Event>,
    /// Estimated encoded bytes of `pending`.
    pending_bytes: usize,
    oldest_pending: Option<Instant>,
    /// Events dropped for this client because its queue was full, by probe.
    client_drops: HashMap<ProbeKey, u64>,
    /// Frame ids `0..frames_sent` have been defined to this client; its
    /// next stack batch carries the definitions from there on.
    frames_sent: u32,
    /// It asked for cost reports ([`ClientMessage::WatchCost`]).
    watches_cost: bool,
    /// Probes it asked to have only counted in the kernel
    /// ([`microscope_wire::ProbeOptions::count_only`]). A probe only counts
    /// while every client that has it enabled asked so: one client's
    /// choice never stops another's stream.
    count_only: BTreeSet<ProbeKey>,
}

impl ClientState {
    fn new(peer: Peer, outbox: Outbox) -> Self {
        Self {
            peer,
            outbox,
            enabled: BTreeSet::new(),
            filter: ProcessFilter::default(),
            pending: Vec::new(),
            pending_bytes: 0,
            oldest_pending: None,
            client_drops: HashMap::new(),
            frames_sent: 0,
            watches_cost: false,
            count_only: BTreeSet::new(),
        }
    }

    fn reply(&self, message: &HelperMessage) -> bool {
        self.outbox.send(message, FrameKind::Reply)
    }

    fn wants(&self, probe: ProbeKey) -> bool {
        self.enabled.contains(&probe)
    }
}

/// Connections open, in all and per uid.
#[derive(Debug, Default)]
struct Slots {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

/// One connection's place in [`Slots`], given back when dropped.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    uid: u32,
}

impl Slot {
    /// A place for a connection of `uid`, or the sentence refusing it.
    fn take(slots: &Arc<Mutex<Slots>>, uid: u32) -> Result<Self, String> {
        let mut guard = slots.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.total >= MAX_CLIENTS {
            return Err(format!(
                "the helper is serving {MAX_CLIENTS} connections, the most it allows; \
                 close another Microscope window or try again later"
            ));
        }
        let mine = guard.per_uid.get(&uid).copied().unwrap_or(0);
        if uid != 0 && mine >= MAX_CLIENTS_PER_UID {
            return Err(format!(
                "uid {uid} has {MAX_CLIENTS_PER_UID} connections open, the most one user may \
                 have; close some Microscope windows or commands first"
            ));
        }
        guard.total += 1;
        *guard.per_uid.entry(uid).or_default() += 1;
        Ok(Self {
            slots: slots.clone(),
            uid,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut guard = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        guard.total = guard.total.saturating_sub(1);
        if let Some(n) = guard.per_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                guard.per_uid.remove(&self.uid);
            }
        }
    }
}

/// What every client task shares.
struct Shared {
    hub: SyncSender<HubRequest>,
    info: HelperInfo,
    policy: Policy,
    /// Every client's queued bytes together.
    total: Arc<Budget>,
    /// Queued bytes per user, by uid.
    users: Mutex<HashMap<u32, Arc<Budget>>>,
    tracefs: Option<PathBuf>,
    listings: tokio::sync::Semaphore,
}

/// Serves clients on `listener` until `shutdown` flips to true. Returns after
/// every probe has been detached; an error if the hub crashed.
pub async fn serve(
    listener: UnixListener,
    probes: ProbeSet,
    info: HelperInfo,
    policy: Policy,
    tracefs: Option<PathBuf>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let (hub_tx, hub_rx) = std::sync::mpsc::sync_channel(HUB_QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let (ended_tx, mut ended) = oneshot::channel::<()>();
    let hub_stop = stop.clone();
    let hub = std::thread::Builder::new()
        .name("microscoped-hub".to_owned())
        .spawn(move || {
            // Signals the end even when the hub panics (unwinding drops it).
            let _ended = ended_tx;
            hub(probes, &hub_rx, &hub_stop);
        })
        .map_err(|err| format!("could not start the hub thread: {err}"))?;
    let shared = Arc::new(Shared {
        hub: hub_tx,
        info,
        policy,
        total: Budget::new(TOTAL_QUEUED_BYTES),
        users: Mutex::new(HashMap::new()),
        tracefs,
        listings: tokio::sync::Semaphore::new(MAX_LISTINGS),
    });
    let slots = Arc::new(Mutex::new(Slots::default()));
    let mut refused = Refusals::default();
    let mut next_id: ClientId = 0;
    let crashed = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    next_id += 1;
                    admit(stream, next_id, &shared, &slots, &mut refused);
                }
                Err(err) => {
                    log::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break false,
            // The hub only ends early by panicking; unwinding dropped the
            // probes, which detached every one. Stop serving.
            _ = &mut ended => break true,
        }
    };
    stop.store(true, Ordering::Release);
    drop(shared);
    let joined = tokio::task::spawn_blocking(move || hub.join())
        .await
        .map_err(|err| format!("waiting for the hub failed: {err}"))?;
    match (joined, crashed) {
        (Ok(()), false) => Ok(()),
        (Ok(()), true) => Err("the hub thread stopped unexpectedly".to_owned()),
        (Err(_), _) => Err("the hub thread panicked".to_owned()),
    }
}

/// Counts refused connections, logging at most one line a second.
#[derive(Default)]
struct Refusals {
    since_log: u64,
    last_log: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, why: &str) {
        self.since_log += 1;
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            log::warn!("refused {} connection(s): {why}", self.since_log);
            self.since_log = 0;
            self.last_log = Some(Instant::now());
        }
    }
}

/// Checks a new connection's credentials and slot, then starts its task;
/// or writes the refusal without waiting and closes it.
fn admit(
    stream: UnixStream,
    id: ClientId,
    shared: &Arc<Shared>,
    slots: &Arc<Mutex<Slots>>,
    refused: &mut Refusals,
) {
    let peer = match peer_of(&stream) {
        Ok(peer) => peer,
        Err(err) => {
            log::warn!("client {id}: cannot read peer credentials ({err}); closing");
            return;
        }
    };
    match Slot::take(slots, peer.uid) {
        Ok(slot) => {
            tokio::spawn(serve_client(stream, id, peer, slot, shared.clone()));
        }
        Err(message) => {
            refused.note(&message);
            // Our preamble and the sentence fit in the socket's buffer; a
            // client that is not reading just does not get them.
            let mut bytes = Preamble::current().to_bytes().to_vec();
            if encode_frame(&HelperMessage::Error { message }, &mut bytes).is_ok() {
                let _ = stream.try_write(&bytes);
            }
        }
    }
}

/// The peer's uid, gid, pid (SO_PEERCRED) and groups (SO_PEERGROUPS).
fn peer_of(stream: &UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    Ok(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid().filter(|p| *p > 0),
        groups: peer_groups(stream.as_fd())?,
    })
}

async fn serve_client(
    stream: UnixStream,
    id: ClientId,
    peer: Peer,
    _slot: Slot,
    shared: Arc<Shared>,
) {
    let (mut reader, mut writer) = stream.into_split();
    if !handshake(&mut reader, &mut writer, id, &peer, &shared).await {
        return;
    }
    log::info!(
        "client {id} connected (uid {}, pid {:?})",
        peer.uid,
        peer.pid
    );
    let (frames_tx, mut frames_rx) = mpsc::channel(CLIENT_QUEUE_FRAMES);
    let user = shared
        .users
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(peer.uid)
        .or_insert_with(|| {
            Budget::new(if peer.uid == 0 {
                TOTAL_QUEUED_BYTES
            } else {
                USER_QUEUED_BYTES
            })
        })
        .clone();
    let outbox = Outbox::new(frames_tx, user, shared.total.clone());
    let writer_outbox = outbox.clone();
    if !to_hub(
        &shared.hub,
        HubRequest::Join {
            id,
            peer,
            outbox: outbox.clone(),
        },
    )
    .await
    {
        return;
    }
    let writer_task = tokio::spawn(async move {
        while let Some((frame, kind)) = frames_rx.recv().await {
            let written = writer.write_all(&frame).await;
            writer_outbox.sent(frame.len(), kind);
            if written.is_err() {
                break;
            }
        }
        // Give back the budget of what will never be written.
        frames_rx.close();
        while let Ok((frame, kind)) = frames_rx.try_recv() {
            writer_outbox.sent(frame.len(), kind);
        }
    });
    read_requests(&mut reader, id, &outbox, &shared).await;
    to_hub(&shared.hub, HubRequest::Leave { id }).await;
    drop(outbox);
    // Let queued frames (such as a final error) go out, but not forever.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer_task).await;
    log::info!("client {id} left");
}

/// Both sides send a preamble; we then send Hello or an Error. Whether the
/// client may go on.
async fn handshake(
    reader: &mut tokio::net::unix::OwnedReadHalf,
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    id: ClientId,
    peer: &Peer,
    shared: &Shared,
) -> bool {
    let mut preamble = [0; Preamble::LEN];
    let refusal =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_exact(&mut preamble)).await {
            Err(_) => Some(format!(
                "no preamble within {} s; closing",
                HANDSHAKE_TIMEOUT.as_secs()
            )),
            Ok(Err(err)) => {
                log::debug!("client {id}: closed during handshake ({err})");
                return false;
            }
            Ok(Ok(_)) => match Preamble::check(preamble) {
                Err(err) => Some(err.to_string()),
                Ok(_) => shared.policy.check(peer).err(),
            },
        };
    let hello = match &refusal {
        Some(message) => {
            log::warn!("client {id} (uid {}) refused: {message}", peer.uid);
            HelperMessage::Error {
                message: message.clone(),
            }
        }
        None => HelperMessage::Hello(shared.info.clone()),
    };
    let mut first = Preamble::current().to_bytes().to_vec();
    let sent = encode_frame(&hello, &mut first).is_ok()
        && matches!(
            tokio::time::timeout(HANDSHAKE_TIMEOUT, writer.write_all(&first)).await,
            Ok(Ok(()))
        );
    if !sent || refusal.is_some() {
        let _ = writer.shutdown().await;
        return false;
    }
    true
}

/// Reads the client's requests one at a time until it leaves or sends
/// something undecodable.
async fn read_requests(
    reader: &mut tokio::net::unix::OwnedReadHalf,
    id: ClientId,
    outbox: &Outbox,
    shared: &Shared,
) {
    let mut decoder = FrameDecoder::<ClientMessage>::with_max_frame(MAX_CLIENT_FRAME_BYTES);
    let mut buf = [0u8; READ_BUFFER_BYTES];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.push(buf.get(..n).unwrap_or_default());
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if !handle_request(message, id, outbox, shared).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    log::warn!("client {id}: {err}; closing");
                    let message = format!("the helper could not decode your message: {err}");
                    outbox.send(&HelperMessage::Error { message }, FrameKind::Reply);
                    return;
                }
            }
        }
    }
}

/// Serves one request: listings here (on the blocking pool), the rest in
/// the hub. Returns once it is answered; false when the hub is gone.
async fn handle_request(
    message: ClientMessage,
    id: ClientId,
    outbox: &Outbox,
    shared: &Shared,
) -> bool {
    match message {
        ClientMessage::ListTracepoints | ClientMessage::ListKernelFunctions { .. } => {
            let Ok(_permit) = shared.listings.acquire().await else {
                return false;
            };
            let tracefs = shared.tracefs.clone();
            let reply = tokio::task::spawn_blocking(move || listing(message, tracefs.as_deref()))
                .await
                .unwrap_or_else(|err| HelperMessage::Error {
                    message: format!("listing failed: {err}"),
                });
            if !outbox.send(&reply, FrameKind::Reply) {
                log::warn!("client {id}: reply dropped, its queue is full");
            }
            true
        }
        message => {
            let (done, answered) = oneshot::channel();
            if !to_hub(
                &shared.hub,
                HubRequest::Message {
                    id,
                    message,
                    _done: done,
                },
            )
            .await
            {
                return false;
            }
            // Err only means the hub dropped it: answered all the same.
            let _ = answered.await;
            true
        }
    }
}

/// The answer to a listing request, read from tracefs or the kernel's
/// symbol lists.
fn listing(message: ClientMessage, tracefs: Option<&std::path::Path>) -> HelperMessage {
    match message {
        ClientMessage::ListTracepoints => {
            let listed = tracefs
                .ok_or_else(|| {
                    "tracefs is not mounted, so the helper cannot list tracepoints; run \
                     `sudo mount -t tracefs nodev /sys/kernel/tracing` and restart the helper"
                        .to_owned()
                })
                .and_then(crate::tracefs::available_events);
            match listed {
                Ok(names) => HelperMessage::Tracepoints(names),
                Err(message) => HelperMessage::Error { message },
            }
        }
        ClientMessage::ListKernelFunctions { contains } => {
            let (names, truncated) =
                crate::funcprobe::kernel_functions(&contains, MAX_LISTED_FUNCTIONS);
            HelperMessage::KernelFunctions {
                contains,
                names,
                truncated,
            }
        }
        other => HelperMessage::Error {
            message: format!("not a listing: {other:?}"),
        },
    }
}

/// Hands `request` to the hub without blocking the runtime: a full queue
/// is retried shortly (which slows a client that floods it). False when
/// the hub is gone.
async fn to_hub(hub: &SyncSender<HubRequest>, mut request: HubRequest) -> bool {
    loop {
        match hub.try_send(request) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                request = back;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

/// The hub's timers.
struct Ticks {
    next_poll: Instant,
    next_aggregate: Instant,
    next_stacks: Instant,
    next_cost: Instant,
}

/// How often cost reports are made while someone watches.
pub const COST_INTERVAL: Duration = Duration::from_millis(microscope_wire::COST_INTERVAL_MS);

/// Owns the probes; applies requests and moves events to clients, until
/// `stop` is set or every request sender is gone.
fn hub(mut probes: ProbeSet, requests: &Receiver<HubRequest>, stop: &AtomicBool) {
    let mut hub = Hub {
        clients: HashMap::new(),
        kernel_filter: ProcessFilter::default(),
        kernel_drops: probes.kernel_drops(),
        cgroups: CgroupCache::default(),
        cost: CostMeter::default(),
        events_since_cost: HashMap::new(),
        cpus: crate::cost::online_cpus(),
    };
    let start = Instant::now();
    let mut ticks = Ticks {
        next_poll: start,
        next_aggregate: start + AGGREGATE_INTERVAL,
        next_stacks: start + crate::DRAIN_INTERVAL,
        next_cost: start + COST_INTERVAL,
    };
    let mut scratch = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= ticks.next_poll {
            ticks.next_poll = now + POLL_INTERVAL;
            scratch.clear();
            probes.drain(MAX_DRAIN_PER_POLL, &mut scratch);
            hub.distribute(&mut scratch);
            if now >= ticks.next_aggregate {
                ticks.next_aggregate = now + AGGREGATE_INTERVAL;
                hub.kernel_drops = probes.kernel_drops();
                hub.send_aggregates(&probes, monotonic_ns());
                hub.cgroups.clear();
            }
            hub.flush_due(now);
            if now >= ticks.next_cost {
                ticks.next_cost = now + COST_INTERVAL;
                hub.send_cost(&mut probes, monotonic_ns());
            }
        }
        if now >= ticks.next_stacks {
            ticks.next_stacks = now + crate::DRAIN_INTERVAL;
            if let Some(parts) = probes.drain_stacks(monotonic_ns()) {
                hub.send_stacks(&probes, &parts);
            }
        }
        let wait = ticks
            .next_poll
            .min(ticks.next_stacks)
            .saturating_duration_since(Instant::now());
        match requests.recv_timeout(wait) {
            Ok(request) => hub.apply(&mut probes, request),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Then whatever else is waiting, a bounded number, so that a busy
        // poll never leaves requests (a probe list) behind for long.
        for request in requests.try_iter().take(REQUESTS_PER_TURN) {
            hub.apply(&mut probes, request);
        }
    }
    let n = probes.detach_all();
    log::info!("hub stopped; detached {n} probe(s)");
}

/// The hub's state besides the probes.
struct Hub {
    clients: HashMap<ClientId, ClientState>,
    /// The filter every client's filter fits in: the one they share, else none.
    kernel_filter: ProcessFilter,
    kernel_drops: Vec<ProbeStats>,
    cgroups: CgroupCache,
    /// Runs (with the kernel's run-time statistics on) while any client
    /// watches the cost.
    cost: CostMeter,
    /// Records streamed per probe since the last cost report, counted only
    /// while the meter runs (keys: probes some client enabled).
    events_since_cost: HashMap<ProbeKey, u64>,
    cpus: u32,
}

impl Hub {
    fn apply(&mut self, probes: &mut ProbeSet, request: HubRequest) {
        match request {
            HubRequest::Join { id, peer, outbox } => {
                let client = ClientState::new(peer, outbox);
                // "No filter" takes a filter slot too. Without one (every
                // slot taken by other filters) the client is told when it
                // enables a probe.
                if let Err(err) = probes.set_client_filter(id, &client.filter) {
                    log::warn!("client {id}: {err}");
                }
                self.clients.insert(id, client);
            }
            HubRequest::Leave { id } => {
                probes.release_client(id);
                if let Some(client) = self.clients.remove(&id) {
                    for key in client.enabled {
                        self.retire_if_unwanted(probes, key);
                        self.log_count_only_error(self.apply_count_only(probes, key));
                    }
                }
                if self.clients.is_empty() {
                    // The last client left: nothing stays attached.
                    probes.detach_all();
                }
                self.update_kernel_filter(probes);
                self.update_cost_meter(probes);
            }
            HubRequest::Message { id, message, .. } => {
                for reply in self.handle_message(probes, id, message) {
                    if let Some(client) = self.clients.get(&id)
                        && !client.reply(&reply)
                    {
                        log::warn!("client {id}: reply dropped, its queue is full");
                    }
                }
            }
        }
    }

    /// Applies one client message; returns the replies for that client.
    fn handle_message(
        &mut self,
        probes: &mut ProbeSet,
        id: ClientId,
        message: ClientMessage,
    ) -> Vec<HelperMessage> {
        let error = |message: String| vec![HelperMessage::Error { message }];
        let Some(peer) = self.clients.get(&id).map(|c| c.peer.clone()) else {
            return Vec::new();
        };
        match message {
            ClientMessage::ListProbes => {
                let enabled = self
                    .clients
                    .get(&id)
                    .map(|c| c.enabled.clone())
                    .unwrap_or_default();
                vec![HelperMessage::Probes(probes.list(&enabled))]
            }
            ClientMessage::Enable { probe } => {
                let filter = self.clients.get(&id).map(|c| c.filter.clone());
                if let Err(message) = probes.ensure_filter_slot(id, &filter.unwrap_or_default()) {
                    return error(message);
                }
                let clients = &self.clients;
                let in_use = |key| clients.values().any(|c| c.wants(key));
                let (key, added) = match probes.enable(&probe, &peer, in_use) {
                    Ok(enabled) => enabled,
                    Err(message) => return error(message),
                };
                if let Some(client) = self.clients.get_mut(&id) {
                    client.enabled.insert(key);
                }
                // A client that did not ask for counting only gets the stream,
                // even if another client's options counted the probe.
                if let Err(message) = self.apply_count_only(probes, key) {
                    return error(message);
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
                if let Some(client) = self.clients.get_mut(&id) {
                    client.enabled.remove(&key);
                    client.pending.retain(|e| e.probe != key);
                    client.pending_bytes = client.pending.iter().map(event_bytes).sum();
                }
                self.retire_if_unwanted(probes, key);
                // Its last streaming client gone, a probe the others only
                // count goes back to counting.
                self.log_count_only_error(self.apply_count_only(probes, key));
                vec![HelperMessage::ProbeState {
                    probe,
                    enabled: false,
                }]
            }
            ClientMessage::SetOptions { probe, mut options } => {
                let key = probes.key_of(&probe);
                // The client's wish is kept as asked; what the kernel does
                // follows every client that has the probe enabled, the
                // wish included (see `effective_count_only`).
                let asked_count_only = options.count_only;
                if let Some(key) = key {
                    // Refused as asked, even where the others' streams
                    // would keep the probe streaming anyway.
                    if let Err(message) = probes.check_options(key, &probe, &options) {
                        return error(message);
                    }
                    let wished_before = self.wish_count_only(id, key, asked_count_only);
                    options.count_only = self.effective_count_only(key).unwrap_or(asked_count_only);
                    // Undone below if the options are refused.
                    self.wish_count_only(id, key, wished_before);
                }
                let clients = &self.clients;
                let attached = key.is_some_and(|key| clients.values().any(|c| c.wants(key)));
                let in_use = |key| clients.values().any(|c| c.wants(key));
                let result = probes.set_options(&probe, options, attached, &peer, in_use);
                if let Ok(key) = &result {
                    self.wish_count_only(id, *key, asked_count_only);
                }
                match result {
                    Ok(key) => vec![HelperMessage::ProbeState {
                        probe,
                        enabled: self.clients.get(&id).is_some_and(|c| c.wants(key)),
                    }],
                    Err(message) => error(message),
                }
            }
            // Served by the client's task; not sent here.
            ClientMessage::ListTracepoints | ClientMessage::ListKernelFunctions { .. } => {
                Vec::new()
            }
            ClientMessage::VerifierLog { probe } => match probes.verifier_log(&probe) {
                Ok(log) => vec![HelperMessage::VerifierLog { probe, log }],
                Err(message) => error(message),
            },
            ClientMessage::WatchCost { watch } => {
                if let Some(client) = self.clients.get_mut(&id) {
                    client.watches_cost = watch;
                }
                let run_times = self.update_cost_meter(probes);
                log::info!(
                    "client {id} {} the cost; run-time statistics: {}",
                    if watch { "watches" } else { "stopped watching" },
                    if self.cost.is_running() { "on" } else { "off" }
                );
                vec![HelperMessage::CostWatch {
                    watching: watch,
                    run_times,
                }]
            }
            ClientMessage::SetFilter(filter) => {
                if let Err(message) = probes.set_client_filter(id, &filter) {
                    return error(message);
                }
                log::info!("client {id} set its process filter to {filter}");
                if let Some(client) = self.clients.get_mut(&id) {
                    client.filter = filter.clone();
                }
                self.update_kernel_filter(probes);
                vec![HelperMessage::Filter(filter)]
            }
        }
    }

    /// Keys some client has enabled (so attached).
    fn attached_keys(&self) -> BTreeSet<ProbeKey> {
        self.clients
            .values()
            .flat_map(|c| c.enabled.iter().copied())
            .collect()
    }

    /// Runs the cost meter (and the kernel's run-time statistics) exactly
    /// while some client watches. Returns whether run times are measured.
    fn update_cost_meter(&mut self, probes: &mut ProbeSet) -> microscope_wire::Availability {
        let wanted = self.clients.values().any(|c| c.watches_cost);
        if wanted && !self.cost.is_running() {
            let samples = probes.cost_samples(self.attached_keys().into_iter());
            self.events_since_cost.clear();
            return self.cost.start(monotonic_ns(), &samples);
        }
        if !wanted && self.cost.is_running() {
            self.cost.stop();
            self.events_since_cost.clear();
        }
        self.cost.run_times()
    }

    /// Makes one cost report and sends it to every client that watches.
    fn send_cost(&mut self, probes: &mut ProbeSet, now_ns: u64) {
        if !self.cost.is_running() {
            return;
        }
        let mut samples = probes.cost_samples(self.attached_keys().into_iter());
        for sample in &mut samples {
            sample.events = self
                .events_since_cost
                .get(&sample.probe)
                .copied()
                .unwrap_or(0);
        }
        self.events_since_cost.clear();
        let report = self.cost.report(now_ns, self.cpus, &samples);
        let message = HelperMessage::Cost(report);
        for client in self.clients.values().filter(|c| c.watches_cost) {
            // A full queue only loses this report; the next one follows.
            client.outbox.send(&message, FrameKind::Data);
        }
    }

    /// Recomputes the filter every client's filter fits in (events of other
    /// processes then need no refining) and binds packs to it.
    fn update_kernel_filter(&mut self, probes: &mut ProbeSet) {
        let wanted = union_filter(self.clients.values().map(|c| &c.filter));
        if wanted == self.kernel_filter {
            return;
        }
        match probes.set_pack_filter(&wanted) {
            Ok(()) => {
                log::info!("the kernel's process filter is now {wanted}");
                self.kernel_filter = wanted;
            }
            // Keeping the old, narrower filter could hide events from a
            // client; keep everything instead, the helper refines.
            Err(err) => {
                log::error!("could not set the kernel's process filter ({err}); keeping all");
                if probes.set_pack_filter(&ProcessFilter::default()).is_ok() {
                    self.kernel_filter = ProcessFilter::default();
                }
            }
        }
    }

    /// Whether probe `key` is to be only counted in the kernel: every
    /// client that has it enabled asked so, so no one loses a stream.
    /// `None` when no client has it enabled.
    fn effective_count_only(&self, key: ProbeKey) -> Option<bool> {
        let mut users = self.clients.values().filter(|c| c.wants(key)).peekable();
        users.peek()?;
        Some(users.all(|c| c.count_only.contains(&key)))
    }

    /// Records whether client `id` wishes probe `key` only counted; returns
    /// its wish before.
    fn wish_count_only(&mut self, id: ClientId, key: ProbeKey, wish: bool) -> bool {
        let Some(client) = self.clients.get_mut(&id) else {
            return false;
        };
        if wish {
            !client.count_only.insert(key)
        } else {
            client.count_only.remove(&key)
        }
    }

    /// Makes the kernel count or stream probe `key` as
    /// [`effective_count_only`](Self::effective_count_only) says, after a
    /// client enabled it, disabled it or left. Re-attaches it only when
    /// that changes.
    fn apply_count_only(&self, probes: &mut ProbeSet, key: ProbeKey) -> Result<(), String> {
        let Some(count_only) = self.effective_count_only(key) else {
            return Ok(());
        };
        if count_only == probes.counts_only(key) {
            return Ok(());
        }
        let (Some(id), Some(user)) = (
            probes.id_of(key),
            self.clients.values().find(|c| c.wants(key)),
        ) else {
            return Ok(());
        };
        let clients = &self.clients;
        let in_use = |key| clients.values().any(|c| c.wants(key));
        probes
            .set_count_only(&id, count_only, &user.peer, in_use)
            .map(|_| ())
    }

    /// Logs a failure of [`apply_count_only`](Self::apply_count_only) where
    /// no client waits for an answer (a client left or disabled the probe).
    fn log_count_only_error(&self, result: Result<(), String>) {
        if let Err(message) = result {
            log::error!("could not switch a probe between counting and streaming: {message}");
        }
    }

    /// Detaches and forgets `key` if no client wants it any more.
    fn retire_if_unwanted(&self, probes: &mut ProbeSet, key: ProbeKey) {
        if !self.clients.values().any(|c| c.wants(key)) {
            probes.retire(key);
        }
    }

    /// Moves drained events into the pending batches of the clients that
    /// want them (and whose filter keeps them); a batch that reaches its
    /// bounds on the way is sent at once.
    fn distribute(&mut self, events: &mut Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let now = Instant::now();
        let kernel_filter = &self.kernel_filter;
        let cgroups = &mut self.cgroups;
        let mut total_pending: usize = self.clients.values().map(|c| c.pending_bytes).sum();
        let mut per_probe: HashMap<ProbeKey, u64> = HashMap::new();
        for event in events.iter() {
            *per_probe.entry(event.probe).or_default() += 1;
        }
        if self.cost.is_running() {
            for (probe, n) in &per_probe {
                *self.events_since_cost.entry(*probe).or_default() += n;
            }
        }
        for client in self.clients.values_mut() {
            let refine = !client.filter.is_empty() && client.filter != *kernel_filter;
            let has_room = client.outbox.has_room_for_data();
            if !has_room && !refine {
                // A stalled client: count its events dropped, copy nothing.
                for (probe, n) in &per_probe {
                    if client.wants(*probe) {
                        *client.client_drops.entry(*probe).or_default() += n;
                    }
                }
                continue;
            }
            for event in events.iter() {
                if !client.wants(event.probe)
                    || (refine && !keeps(&client.filter, event.tgid, &event.comm, cgroups))
                {
                    continue;
                }
                if !has_room {
                    *client.client_drops.entry(event.probe).or_default() += 1;
                    continue;
                }
                let bytes = event_bytes(event);
                client.pending_bytes += bytes;
                total_pending += bytes;
                client.pending.push(event.clone());
                client.oldest_pending.get_or_insert(now);
                if client.pending.len() >= MAX_BATCH_EVENTS
                    || client.pending_bytes >= MAX_BATCH_BYTES
                    || total_pending >= TOTAL_PENDING_BYTES
                {
                    total_pending -= client.pending_bytes;
                    flush(client, &self.kernel_drops);
                }
            }
        }
        events.clear();
    }

    /// Sends the batches that are full or old enough.
    fn flush_due(&mut self, now: Instant) {
        for client in self.clients.values_mut() {
            let due = client.pending.len() >= MAX_BATCH_EVENTS
                || client.pending_bytes >= MAX_BATCH_BYTES
                || client
                    .oldest_pending
                    .is_some_and(|t| now.duration_since(t) >= MAX_BATCH_AGE);
            if due {
                flush(client, &self.kernel_drops);
            }
        }
    }

    /// Sends each client that enabled a stack probe its part of `parts`
    /// (refined by its filter), with the frame names it has not been sent
    /// yet, in batches of bounded size. A batch that does not fit in the
    /// client's queue is lost, but names not delivered are sent again with
    /// the next one.
    fn send_stacks(&mut self, probes: &ProbeSet, parts: &StackBatchParts) {
        let kernel_filter = &self.kernel_filter;
        let cgroups = &mut self.cgroups;
        for client in self.clients.values_mut() {
            if !probes.wants_stacks(&client.enabled) {
                continue;
            }
            // The kernel filtered the main object's and the profiler's
            // stacks by the filter every client shares; a pack's program
            // filters by its own knobs, if at all, so its stacks are always
            // refined here.
            let refine_all = !client.filter.is_empty() && client.filter != *kernel_filter;
            let refine_packs = !client.filter.is_empty();
            let (batch, _) =
                parts.batch_for(probes.frames(), client.frames_sent, |p| client.wants(p));
            let stacks: Vec<StackCount> = batch
                .stacks
                .into_iter()
                .filter(|s| {
                    let refine = refine_all || (refine_packs && probes.has_pack_stacks(s.probe));
                    !refine || keeps(&client.filter, s.tgid, &s.comm, cgroups)
                })
                .collect();
            send_stack_batches(client, batch.start_ns, batch.end_ns, batch.frames, stacks);
        }
    }

    fn send_aggregates(&self, probes: &ProbeSet, ts_ns: u64) {
        for (id, client) in &self.clients {
            if let Some(aggregates) = probes.aggregates_for(*id, &client.enabled, ts_ns) {
                // A full queue only loses this snapshot; the next one is cumulative.
                client
                    .outbox
                    .send(&HelperMessage::Aggregates(aggregates), FrameKind::Data);
            }
            for data in probes.pack_data_for(&client.enabled, ts_ns) {
                client
                    .outbox
                    .send(&HelperMessage::PackData(data), FrameKind::Data);
            }
        }
    }
}

/// Sends `frames` then `stacks` to `client` in batches of at most
/// [`MAX_FRAMES_PER_BATCH`] names and [`MAX_STACKS_PER_BATCH`] stacks,
/// advancing `frames_sent` past each batch of names queued.
fn send_stack_batches(
    client: &mut ClientState,
    start_ns: u64,
    end_ns: u64,
    frames: Vec<microscope_wire::Frame>,
    stacks: Vec<StackCount>,
) {
    let mut frames = frames.into_iter().peekable();
    let mut stacks = stacks.into_iter().peekable();
    let mut first = true;
    while first || frames.peek().is_some() || stacks.peek().is_some() {
        first = false;
        let chunk: Vec<microscope_wire::Frame> =
            frames.by_ref().take(MAX_FRAMES_PER_BATCH).collect();
        // Names go first, on their own, until the last batch of them.
        let stack_chunk: Vec<StackCount> = if frames.peek().is_none() {
            stacks.by_ref().take(MAX_STACKS_PER_BATCH).collect()
        } else {
            Vec::new()
        };
        let next_frames_sent = chunk.last().map(|f| f.id.saturating_add(1));
        let batch = StackBatch {
            start_ns,
            end_ns,
            frames: chunk,
            stacks: stack_chunk,
        };
        if !client
            .outbox
            .send(&HelperMessage::Stacks(batch), FrameKind::Data)
        {
            // Names not delivered go with the next drain.
            return;
        }
        if let Some(sent) = next_frames_sent {
            client.frames_sent = client.frames_sent.max(sent);
        }
    }
}

/// Sends a client's pending events in batches of at most
/// [`MAX_BATCH_EVENTS`] events and about [`MAX_BATCH_BYTES`] bytes; a batch
/// its queue cannot take is counted in its `client_drops`.
fn flush(client: &mut ClientState, kernel_drops: &[ProbeStats]) {
    let mut events = std::mem::take(&mut client.pending).into_iter().peekable();
    client.pending_bytes = 0;
    client.oldest_pending = None;
    while events.peek().is_some() {
        let mut bytes = 0;
        let mut batch = Vec::new();
        while let Some(event) = events.next_if(|e| {
            batch.is_empty()
                || (batch.len() < MAX_BATCH_EVENTS && bytes + event_bytes(e) <= MAX_BATCH_BYTES)
        }) {
            bytes += event_bytes(&event);
            batch.push(event);
        }
        let mut counts: HashMap<ProbeKey, u64> = HashMap::new();
        for e in &batch {
            *counts.entry(e.probe).or_default() += 1;
        }
        let stats = kernel_drops
            .iter()
            .filter(|s| client.wants(s.probe))
            .map(|s| ProbeStats {
                client_drops: client.client_drops.get(&s.probe).copied().unwrap_or(0),
                ..s.clone()
            })
            .collect();
        let message = HelperMessage::Batch(EventBatch {
            events: batch,
            stats,
        });
        if !client.outbox.send(&message, FrameKind::Data) {
            for (probe, n) in counts {
                *client.client_drops.entry(probe).or_default() += n;
            }
        }
    }
}

/// About how many bytes `event` takes encoded (an upper estimate: postcard
/// writes integers as varints and strings with a varint length).
fn event_bytes(event: &Event) -> usize {
    let data = match &event.data {
        EventData::SchedSwitch {
            prev_comm,
            next_comm,
            ..
        } => 40 + prev_comm.len() + next_comm.len(),
        EventData::SchedWakeup { comm, .. } => 24 + comm.len(),
        EventData::SchedFork { .. } | EventData::SchedExit { .. } => 16,
        EventData::SchedExec { filename, .. } => 16 + filename.len(),
        EventData::Openat { filename, .. } => 24 + filename.len(),
        EventData::Fields(values) => {
            values
                .iter()
                .map(|v| match v {
                    FieldValue::Str(s) => 6 + s.len(),
                    FieldValue::Bytes(b) => 6 + b.len(),
                    FieldValue::Named { text, .. } => 16 + text.len(),
                    FieldValue::Int(_) | FieldValue::Uint(_) | FieldValue::Missing => 11,
                })
                .sum::<usize>()
                + 6
        }
    };
    40 + event.comm.len() + data
}

/// The widest filter every client's filter fits in: the common filter when
/// all clients filter alike, else none (keep everything).
fn union_filter<'a>(filters: impl Iterator<Item = &'a ProcessFilter>) -> ProcessFilter {
    let mut common: Option<&ProcessFilter> = None;
    for filter in filters {
        match common {
            None => common = Some(filter),
            Some(seen) if seen == filter => {}
            Some(_) => return ProcessFilter::default(),
        }
    }
    common.cloned().unwrap_or_default()
}

/// Whether `filter` keeps a task of process `tgid` named `comm`.
fn keeps(filter: &ProcessFilter, tgid: u32, comm: &str, cgroups: &mut CgroupCache) -> bool {
    filter.pid.is_none_or(|pid| pid == tgid)
        && filter.comm.as_deref().is_none_or(|c| c == comm)
        && filter
            .cgroup
            .is_none_or(|cgroup| cgroups.of(tgid) == Some(cgroup))
}

/// cgroup v2 ids of processes, read from `/proc/PID/cgroup`, cached until
/// the next [`clear`](Self::clear) (every [`AGGREGATE_INTERVAL`]).
#[derive(Default)]
struct CgroupCache {
    ids: HashMap<u32, Option<u64>>,
}

/// Most processes cached between clears.
const MAX_CGROUP_CACHE: usize = 16_384;

impl CgroupCache {
    fn of(&mut self, tgid: u32) -> Option<u64> {
        if self.ids.len() >= MAX_CGROUP_CACHE {
            self.ids.clear();
        }
        *self.ids.entry(tgid).or_insert_with(|| cgroup_id(tgid))
    }

    fn clear(&mut self) {
        self.ids.clear();
    }
}

/// The cgroup v2 id (inode of its directory) of process `tgid`.
fn cgroup_id(tgid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let text = std::fs::read_to_string(format!("/proc/{tgid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::Frame;

    fn event(probe: ProbeKey, tgid: u32, comm: &str, filename_len: usize) -> Event {
        Event {
            probe,
            cpu: 0,
            ts_ns: 1,
            pid: tgid,
            tgid,
            comm: comm.to_owned(),
            data: EventData::Openat {
                dfd: -100,
                filename: "x".repeat(filename_len),
                flags: 0,
                mode: 0,
            },
        }
    }

    /// A client whose queue is read by the returned receiver.
    fn client() -> (ClientState, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE_FRAMES);
        let outbox = Outbox::new(
            tx,
            Budget::new(USER_QUEUED_BYTES),
            Budget::new(TOTAL_QUEUED_BYTES),
        );
        (ClientState::new(Peer::root(), outbox), rx)
    }

    fn decode_all(rx: &mut mpsc::Receiver<Queued>) -> Vec<HelperMessage> {
        let mut decoder = FrameDecoder::<HelperMessage>::new();
        let mut out = Vec::new();
        while let Ok((frame, _)) = rx.try_recv() {
            decoder.push(&frame);
            while let Some(m) = decoder.next_message().unwrap() {
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn batches_are_split_by_count_and_by_bytes_never_dropped_for_size() {
        let (mut c, mut rx) = client();
        c.enabled.insert(1);
        // 20 000 small events: three batches by count.
        c.pending = (0..20_000).map(|_| event(1, 5, "a", 1)).collect();
        flush(&mut c, &[]);
        let sizes: Vec<usize> = decode_all(&mut rx)
            .into_iter()
            .map(|m| match m {
                HelperMessage::Batch(b) => b.events.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            sizes,
            vec![
                MAX_BATCH_EVENTS,
                MAX_BATCH_EVENTS,
                20_000 - 2 * MAX_BATCH_EVENTS
            ]
        );
        // 300 events of ~4 KiB: split by bytes, each batch well under the frame limit.
        c.pending = (0..300).map(|_| event(1, 5, "a", 4000)).collect();
        flush(&mut c, &[]);
        let messages = decode_all(&mut rx);
        assert!(messages.len() >= 2, "{} batches", messages.len());
        let total: usize = messages
            .iter()
            .map(|m| match m {
                HelperMessage::Batch(b) => b.events.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(total, 300);
        assert!(c.client_drops.is_empty());
    }

    #[test]
    fn a_full_queue_drops_batches_and_counts_them() {
        let (mut c, rx) = client();
        c.enabled.insert(1);
        let per_batch = MAX_BATCH_BYTES / event_bytes(&event(1, 5, "a", 4000));
        let mut pushed = 0u64;
        // Nobody reads `rx`: past CLIENT_DATA_BYTES, batches are dropped.
        for _ in 0..(CLIENT_DATA_BYTES / MAX_BATCH_BYTES + 3) {
            c.pending = (0..per_batch).map(|_| event(1, 5, "a", 4000)).collect();
            pushed += per_batch as u64;
            flush(&mut c, &[]);
        }
        let dropped = c.client_drops.get(&1).copied().unwrap_or(0);
        assert!(dropped > 0, "nothing was dropped");
        assert!(dropped < pushed);
        assert!(c.outbox.data.used() <= CLIENT_DATA_BYTES);
        // Replies have their own budget.
        assert!(c.reply(&HelperMessage::Error {
            message: "still answered".into()
        }));
        drop(rx);
    }

    #[test]
    fn one_users_stalled_clients_cannot_take_everyones_room() {
        let total = Budget::new(TOTAL_QUEUED_BYTES);
        let hostile = Budget::new(USER_QUEUED_BYTES);
        let mut receivers = Vec::new();
        let big = HelperMessage::Error {
            message: "x".repeat(1 << 20),
        };
        // 32 clients of one user that never read.
        let mut queued = 0;
        for _ in 0..MAX_CLIENTS_PER_UID {
            let (tx, rx) = mpsc::channel(CLIENT_QUEUE_FRAMES);
            receivers.push(rx);
            let outbox = Outbox::new(tx, hostile.clone(), total.clone());
            while outbox.send(&big, FrameKind::Data) {
                queued += 1;
            }
        }
        assert!(hostile.used() <= USER_QUEUED_BYTES);
        assert_eq!(queued, USER_QUEUED_BYTES / ((1 << 20) + 8));
        // Another user's client still has all its room.
        let (tx, mut rx) = mpsc::channel(CLIENT_QUEUE_FRAMES);
        let other = Outbox::new(tx, Budget::new(USER_QUEUED_BYTES), total.clone());
        let mut sent = 0;
        while other.send(&big, FrameKind::Data) {
            sent += 1;
        }
        assert_eq!(sent, CLIENT_DATA_BYTES / ((1 << 20) + 8));
        // Writing gives the room back.
        while let Ok((frame, kind)) = rx.try_recv() {
            other.sent(frame.len(), kind);
        }
        assert!(other.send(&big, FrameKind::Data));
    }

    #[test]
    fn frame_tables_go_out_in_bounded_batches_before_the_stacks() {
        let (mut c, mut rx) = client();
        let frames: Vec<Frame> = (0..20_000)
            .map(|id| Frame {
                id,
                name: format!("f{id}"),
                kernel: false,
            })
            .collect();
        let stacks = vec![StackCount {
            probe: 1,
            tgid: 5,
            comm: "a".into(),
            frames: vec![0, 19_999],
            value: 3,
        }];
        send_stack_batches(&mut c, 1, 2, frames, stacks);
        let batches: Vec<StackBatch> = decode_all(&mut rx)
            .into_iter()
            .map(|m| match m {
                HelperMessage::Stacks(b) => b,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(batches.len(), 3);
        assert!(
            batches
                .iter()
                .all(|b| b.frames.len() <= MAX_FRAMES_PER_BATCH)
        );
        assert!(batches[..2].iter().all(|b| b.stacks.is_empty()));
        assert_eq!(batches[2].stacks.len(), 1);
        assert_eq!(c.frames_sent, 20_000);
        let ids: Vec<u32> = batches
            .iter()
            .flat_map(|b| b.frames.iter().map(|f| f.id))
            .collect();
        assert_eq!(ids, (0..20_000).collect::<Vec<_>>());
    }

    #[test]
    fn the_kernel_filters_on_what_every_client_lets_through() {
        let pid = |p| ProcessFilter {
            pid: Some(p),
            ..ProcessFilter::default()
        };
        assert_eq!(union_filter([pid(1), pid(1)].iter()), pid(1));
        assert_eq!(
            union_filter([pid(1), pid(2)].iter()),
            ProcessFilter::default()
        );
        assert_eq!(
            union_filter([pid(1), ProcessFilter::default()].iter()),
            ProcessFilter::default()
        );
        assert_eq!(union_filter(std::iter::empty()), ProcessFilter::default());
        let mut cache = CgroupCache::default();
        let comm = ProcessFilter {
            comm: Some("cat".into()),
            ..ProcessFilter::default()
        };
        assert!(keeps(&comm, 9, "cat", &mut cache));
        assert!(!keeps(&comm, 9, "dog", &mut cache));
        assert!(keeps(&pid(9), 9, "dog", &mut cache));
        assert!(!keeps(&pid(9), 8, "dog", &mut cache));
        let me = std::process::id();
        let mine = ProcessFilter {
            cgroup: cgroup_id(me),
            ..ProcessFilter::default()
        };
        if mine.cgroup.is_some() {
            assert!(keeps(&mine, me, "x", &mut cache));
        }
    }

    #[test]
    fn connection_slots_are_bounded_in_all_and_per_user() {
        let slots = Arc::new(Mutex::new(Slots::default()));
        let mine: Vec<Slot> = (0..MAX_CLIENTS_PER_UID)
            .map(|_| Slot::take(&slots, 1000).unwrap())
            .collect();
        let err = Slot::take(&slots, 1000).err().unwrap();
        assert!(err.contains("uid 1000 has 32 connections open"), "{err}");
        // Another user and root still get in.
        let other = Slot::take(&slots, 1001).unwrap();
        drop(mine);
        assert!(Slot::take(&slots, 1000).is_ok());
        let mut roots: Vec<Slot> = Vec::new();
        while let Ok(slot) = Slot::take(&slots, 0) {
            roots.push(slot);
        }
        assert_eq!(roots.len(), MAX_CLIENTS - 1);
        let err = Slot::take(&slots, 0).err().unwrap();
        assert!(err.contains("256 connections"), "{err}");
        drop(other);
        assert!(Slot::take(&slots, 0).is_ok());
    }
}
