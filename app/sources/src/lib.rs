//! Where the app's updates come from: the live helper (the ingest thread) or
//! a recording (the replay thread), and the recorder that saves what the
//! live helper sends. Both sources feed a bounded update channel; the app
//! holds the receiving end of the current one and drops it to stop the
//! thread behind it.
//!
//! ```text
//! socket ─▶ ingest (threads) ─┐
//!                             ├─Update─▶ (the app, over microscope-model)
//! recording ─▶ replay thread ─┘
//! ```
//!
//! - `ingest`: the named threads that own the connection, reconnect every
//!   second and re-enable the wanted probes. They talk to the UI only
//!   through two bounded channels, so the UI never waits on I/O.
//! - `replay`: plays a recording back at 1×, 10× or full speed, with seeks.
//! - `browse`: reads a replayed recording for the views that show single
//!   events (CPU timeline, inspector): its overview, then windows and pages
//!   on demand, so nothing of a large recording is lost to a memory cap.
//!   `overview`: that overview, read in parts on every core and merged.
//! - `recorder`: the window's *Record* button; the reader thread hands it
//!   every message before converting it.
//! - `tour_action`: what a guided tour's step does for the student (read a
//!   file, write and sync one, start a program, loopback TCP, touch memory)
//!   on a thread of its own, so the step has events of its own to show.
//!
//! # Dependencies and why
//!
//! - `microscope-model`: the [`Update`]s these threads produce, and the one
//!   conversion from wire messages.
//! - `microscope-wire`: the socket client and the recording format.
//! - `crossbeam-channel`: bounded channels with `select!` and deadlines,
//!   which the ingest thread needs to wait on the UI and on its reader at
//!   once.
//! - `log`: diagnostics of the threads (`RUST_LOG=debug microscope`).
//! - `nix`: the real uid that names the demo recording's temporary file
//!   (already built for the wire's clock), and the tour actions' thread id,
//!   `posix_fadvise` and `statfs`.
//! - `microscope-catalogue`: the tour actions' names.

mod browse;
mod ingest;
mod overview;
mod recorder;
mod replay;
mod tour_action;

pub use browse::{
    BrowseRequest, MAX_PAGE_EVENTS, MAX_WINDOW_SWITCHES, cpu_window, event_page, spawn_baseline,
    spawn_browser,
};
pub use ingest::{RETRY_INTERVAL, spawn_ingest};
pub use recorder::{Recorder, RecordingStatus, default_path};
pub use replay::{ReplayControl, spawn_replay};
pub use tour_action::{ACTION_THREAD, ActionReport, perform, scratch_dir, spawn_tour_action};

use crossbeam_channel::{Receiver, Sender, bounded};
use microscope_model::Update;
use microscope_wire::ClientMessage;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Called after each update is sent, to wake the UI (`Context::request_repaint`).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Updates waiting for the UI. At ~20 batches and 4 aggregates per second this
/// is minutes of slack; when it is full the reader blocks and the helper
/// counts client drops instead of the app growing without bound.
const UPDATE_CHANNEL_CAPACITY: usize = 4096;
/// Requests waiting for the socket or the replay; clicks never come close.
const COMMAND_CHANNEL_CAPACITY: usize = 256;

/// The demo recording, made by `cargo xtask demo` on a real kernel.
static DEMO_RECORDING: &[u8] = include_bytes!("../../../assets/demo.mscr");

/// Starts the ingest thread for the helper at `socket`.
pub fn live(
    socket: &Path,
    wake: Wake,
    recorder: Recorder,
) -> std::io::Result<(Receiver<Update>, Sender<ClientMessage>)> {
    let (update_tx, update_rx) = bounded(UPDATE_CHANNEL_CAPACITY);
    let (command_tx, command_rx) = bounded(COMMAND_CHANNEL_CAPACITY);
    spawn_ingest(socket.to_owned(), update_tx, command_rx, wake, recorder)?;
    Ok((update_rx, command_tx))
}

/// Starts replaying `path`, delivering frames on the time axis of `epoch`.
pub fn replay(
    path: &Path,
    epoch: Instant,
    wake: Wake,
) -> std::io::Result<(Receiver<Update>, Sender<ReplayControl>)> {
    let (update_tx, update_rx) = bounded(UPDATE_CHANNEL_CAPACITY);
    let (control_tx, control_rx) = bounded(COMMAND_CHANNEL_CAPACITY);
    spawn_replay(path.to_owned(), epoch, update_tx, control_rx, wake)?;
    Ok((update_rx, control_tx))
}

/// Starts reading `path` for browsing (see `browse`): its updates come on
/// their own channel, so answers never wait behind a fast replay's frames.
pub fn browse(
    path: &Path,
    wake: Wake,
) -> std::io::Result<(Receiver<Update>, Sender<BrowseRequest>)> {
    let (update_tx, update_rx) = bounded(BROWSE_CHANNEL_CAPACITY);
    let (request_tx, request_rx) = bounded(COMMAND_CHANNEL_CAPACITY);
    spawn_browser(path.to_owned(), update_tx, request_rx, wake)?;
    Ok((update_rx, request_tx))
}

/// Reads `path` whole in a thread, as the baseline to compare with; the
/// answer (or a sentence saying why not) comes on the returned channel.
pub fn baseline(path: &Path, wake: Wake) -> std::io::Result<Receiver<Update>> {
    let (update_tx, update_rx) = bounded(1);
    spawn_baseline(path.to_owned(), update_tx, wake)?;
    Ok(update_rx)
}

/// Answers waiting for the UI: a few progress reports, an overview, windows.
const BROWSE_CHANNEL_CAPACITY: usize = 64;

/// Writes the embedded demo recording to a private temporary file (the
/// recording reader works on files) and returns its path.
pub fn demo_file() -> std::io::Result<PathBuf> {
    let uid = nix::unistd::getuid();
    let path = std::env::temp_dir().join(format!("microscope-demo-{uid}.mscr"));
    // Unique per call: two windows (or tests) of one process may write it
    // at once, and a shared partial file would be renamed from under one.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = path.with_extension(format!("mscr.{}.{call}", std::process::id()));
    std::fs::write(&partial, DEMO_RECORDING)?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_recording_is_written_to_a_file_named_for_the_user() {
        let path = demo_file().expect("the temporary directory is writable");
        let name = format!("microscope-demo-{}.mscr", nix::unistd::getuid());
        assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(&*name));
        assert_eq!(std::fs::read(&path).expect("written"), DEMO_RECORDING);
    }
}
