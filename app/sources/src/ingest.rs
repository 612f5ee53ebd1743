//! The ingest thread: owns the connection to the helper, turns its messages
//! into [`Update`]s for the UI and forwards the UI's requests.
//!
//! ```text
//!  UI ──ClientMessage──▶ microscope-ingest ──Writer──▶ socket
//!  UI ◀──Update──────── microscope-reader ◀──Connection── socket
//! ```
//!
//! Both channels are bounded. `microscope-ingest` connects (retrying every
//! [`RETRY_INTERVAL`]), handshakes, asks for the probe list, re-enables the
//! probes the UI wants, then writes whatever the UI sends while a
//! per-connection `microscope-reader` thread decodes frames. When the
//! connection drops it reports [`Update::Disconnected`] and starts over. Both
//! threads end when the UI drops its end of either channel.

use crate::Wake;
use crate::recorder::Recorder;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, select};
use microscope_model::{Update, update_from_message};
use microscope_wire::{ClientError, ClientMessage, Connection, HelperMessage};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long to wait between connection attempts.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the ingest thread for the helper at `socket`.
pub fn spawn_ingest(
    socket: PathBuf,
    updates: Sender<Update>,
    commands: Receiver<ClientMessage>,
    wake: Wake,
    recorder: Recorder,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("microscope-ingest".to_owned())
        .spawn(move || {
            Ingest {
                socket,
                updates,
                commands,
                wake,
                wanted: BTreeSet::new(),
                filter: None,
                options: std::collections::BTreeMap::new(),
                recorder,
                watch_cost: false,
            }
            .run()
        })
}

/// Why a connection ended.
enum Stop {
    /// The UI is gone: end the thread.
    UiGone,
    /// The connection failed: report it and reconnect.
    Lost(ClientError),
}

struct Ingest {
    socket: PathBuf,
    updates: Sender<Update>,
    commands: Receiver<ClientMessage>,
    wake: Wake,
    /// Probes the UI enabled, to re-enable after a reconnect.
    wanted: BTreeSet<String>,
    /// The process filter the UI set, to set again after a reconnect (a
    /// restarted helper starts with none).
    filter: Option<microscope_wire::ProcessFilter>,
    /// Probe options the UI set (stacks on), to set again after a reconnect.
    options: std::collections::BTreeMap<String, microscope_wire::ProbeOptions>,
    /// Sees every message first, to record it when asked.
    recorder: Recorder,
    /// The UI watches the cost, to ask again after a reconnect.
    watch_cost: bool,
}

impl Ingest {
    fn run(mut self) {
        let mut last_reason = None;
        loop {
            let stop = match Connection::connect(&self.socket) {
                Ok(connection) => {
                    last_reason = None;
                    log::info!("connected to the helper at {}", self.socket.display());
                    self.serve(connection)
                }
                Err(err) => Stop::Lost(err),
            };
            let Stop::Lost(err) = stop else { return };
            let reason = err.to_string();
            // Report each distinct failure once, not every second.
            if last_reason.as_ref() != Some(&reason) {
                log::warn!("{reason}");
                if !self.send(Update::Disconnected {
                    reason: reason.clone(),
                }) {
                    return;
                }
                last_reason = Some(reason);
            }
            if !self.wait_for_retry() {
                return;
            }
        }
    }

    /// Sends an update and wakes the UI; `false` once the UI is gone.
    fn send(&self, update: Update) -> bool {
        let sent = self.updates.send(update).is_ok();
        (self.wake)();
        sent
    }

    /// Waits [`RETRY_INTERVAL`] while still taking the UI's requests; `false`
    /// once the UI is gone.
    fn wait_for_retry(&mut self) -> bool {
        let deadline = Instant::now() + RETRY_INTERVAL;
        loop {
            match self.commands.recv_deadline(deadline) {
                Ok(message) => self.track(&message),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn track(&mut self, message: &ClientMessage) {
        match message {
            ClientMessage::Enable { probe } => {
                self.wanted.insert(probe.clone());
            }
            ClientMessage::Disable { probe } => {
                self.wanted.remove(probe);
            }
            ClientMessage::SetFilter(filter) => {
                self.filter = (!filter.is_empty()).then(|| filter.clone());
            }
            ClientMessage::SetOptions { probe, options } => {
                self.options.insert(probe.clone(), options.clone());
            }
            ClientMessage::WatchCost { watch } => self.watch_cost = *watch,
            // One-off questions: nothing to repeat after a reconnect.
            ClientMessage::ListProbes
            | ClientMessage::ListTracepoints
            | ClientMessage::ListKernelFunctions { .. }
            | ClientMessage::VerifierLog { .. } => {}
        }
    }

    fn serve(&mut self, connection: Connection) -> Stop {
        self.recorder
            .observe(&HelperMessage::Hello(connection.hello().clone()));
        if !self.send(Update::Connected(connection.hello().clone().into())) {
            return Stop::UiGone;
        }
        let mut writer = match connection.writer() {
            Ok(writer) => writer,
            Err(err) => return Stop::Lost(err),
        };
        let greeting = std::iter::once(ClientMessage::ListProbes)
            .chain(self.filter.clone().map(ClientMessage::SetFilter))
            .chain(
                self.options
                    .iter()
                    .map(|(probe, options)| ClientMessage::SetOptions {
                        probe: probe.clone(),
                        options: options.clone(),
                    }),
            )
            .chain(self.wanted.iter().map(|probe| ClientMessage::Enable {
                probe: probe.clone(),
            }))
            .chain(
                self.watch_cost
                    .then_some(ClientMessage::WatchCost { watch: true }),
            );
        for message in greeting {
            if let Err(err) = writer.send(&message) {
                return Stop::Lost(err);
            }
        }

        let (done_tx, done_rx) = bounded(1);
        let updates = self.updates.clone();
        let wake = Arc::clone(&self.wake);
        let recorder = self.recorder.clone();
        let reader = match thread::Builder::new()
            .name("microscope-reader".to_owned())
            .spawn(move || {
                // The receiver outlives this thread unless `serve` returned
                // early, in which case nobody needs to know.
                let _ = done_tx.send(read_loop(connection, &updates, &wake, &recorder));
            }) {
            Ok(reader) => reader,
            Err(err) => return Stop::Lost(err.into()),
        };

        let stop = loop {
            select! {
                recv(self.commands) -> message => match message {
                    Ok(message) => {
                        self.track(&message);
                        if let Err(err) = writer.send(&message) {
                            writer.shutdown();
                            // The reader wakes with an error of its own; ours says more.
                            let _ = done_rx.recv();
                            break Stop::Lost(err);
                        }
                    }
                    Err(_) => {
                        writer.shutdown();
                        break Stop::UiGone;
                    }
                },
                recv(done_rx) -> stop => break stop.unwrap_or(Stop::UiGone),
            }
        };
        if reader.join().is_err() {
            log::error!("the reader thread panicked");
        }
        stop
    }
}

fn read_loop(
    mut connection: Connection,
    updates: &Sender<Update>,
    wake: &Wake,
    recorder: &Recorder,
) -> Stop {
    loop {
        let message = match connection.recv() {
            Ok(message) => message,
            Err(err) => return Stop::Lost(err),
        };
        recorder.observe(&message);
        let Some(update) = update_from_message(message, Instant::now()) else {
            continue;
        };
        // Blocking on a full channel is the backpressure we want: the helper
        // then counts the batches it cannot deliver as client drops.
        if updates.send(update).is_err() {
            connection.shutdown();
            return Stop::UiGone;
        }
        wake();
    }
}
