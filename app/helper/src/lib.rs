//! `microscoped`, Microscope's privileged helper.
//!
//! It loads the eBPF programs of `ebpf/` with aya, detects what the running
//! kernel can trace, and serves clients on a Unix socket (protocol in
//! `microscope-wire`). It only ever loads its own embedded programs: clients
//! choose probes by id, never send code.
//!
//! Modules, in the order an event flows through them:
//! - [`tracefs`]: tracepoint formats, from which field offsets are set;
//! - `registry`: the probes offered (the built-in pack's, and those created
//!   on demand) and where each one's data comes from;
//! - `tracer`: the loaded object; attach, detach, drain, read aggregates;
//! - `filter_slots`: which of the kernel's process filter slots each
//!   client uses (aggregates are counted per slot);
//! - `funcprobe`: function probes (kprobe, fentry, uprobe), one small
//!   object instance per probed function;
//! - `decode`: ring buffer records → wire events;
//! - `profiler`: on-CPU sampling and off-CPU blocked time (the `profile`
//!   object), drained about once a second;
//! - `stacks`: reading and freeing in-kernel stack counts (any object);
//! - `symbolize`: addresses → function names (blazesym), the frame interner;
//! - `server`: the socket, the peer check (`auth`), the hub that batches.
//!
//! Dependencies: `aya` (pure-Rust BPF loader, no libbpf/C toolchain needed),
//! `blazesym` (symbolization: kallsyms, ELF, DWARF with inlined functions),
//! `tokio` (one runtime, created in `main`, for the socket server), `nix` (safe
//! wrappers for chown/mount/group lookups instead of raw `libc` calls).

mod auth;
mod capabilities;
mod cost;
mod decode;
mod filter_slots;
mod funcprobe;
mod generic;
mod pack;
mod perfmap;
mod probeset;
mod profiler;
mod raw_stack;
mod registry;
mod server;
mod stacks;
mod symbolize;
mod target_file;
pub mod tracefs;
mod tracer;

pub use auth::{Peer, Policy, peer_groups};
pub use capabilities::detect_standalone as detect_capabilities;
pub use funcprobe::{FunctionProbes, FunctionTarget, Mechanism, kernel_functions};
/// The generic record decoder, public for its fuzz target (`app/fuzz`).
pub use generic::decode_fields;
pub use microscope_catalogue::targets::{binary_symbols, find_library};
pub use pack::trust::SYSTEM_PACK_DIRS;
pub use profiler::{
    DRAIN_INTERVAL, MAX_SAMPLE_HZ, ProfileKind, Profiler, RESULT_WAIT, StackBatchParts,
    monotonic_ns,
};
pub use raw_stack::{CapturedStack, RawStack};
pub use stacks::{
    clear_stacks, comm_string, drain_stack_counts, intern_stacks, read_stacks, take_stack_counts,
};
pub use symbolize::{
    FrameInterner, INLINED_SUFFIX, LOST_STACK, NamedStack, Symbolizer, lookup_addresses,
    unknown_address,
};
pub use tracer::{LoadError, Tracer};

use anyhow::Context as _;
use microscope_wire::HelperInfo;
use probeset::ProbeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;
use tokio::sync::watch;

/// Default group whose members may connect.
pub const DEFAULT_GROUP: &str = "microscope";

/// How the helper is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Socket path.
    pub socket: PathBuf,
    /// Group allowed to connect besides root.
    pub group: String,
    /// Extra trusted pack directories (`--pack-dir`), besides
    /// [`SYSTEM_PACK_DIRS`]: each a pack, or a directory of packs.
    pub pack_dirs: Vec<PathBuf>,
}

/// Loads the probes, listens on the socket and serves until `shutdown` flips
/// to true. Every probe is detached and the socket removed before it returns.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let tracefs = match tracefs::find_or_mount() {
        Ok(path) => Some(path),
        Err(reason) => {
            log::warn!("{reason}");
            None
        }
    };
    let mut tracer = Tracer::load(tracefs.as_deref())?;
    let capabilities = capabilities::detect(tracefs.as_deref(), Some(tracer.ebpf_mut()));
    let info = HelperInfo {
        helper_version: env!("CARGO_PKG_VERSION").to_owned(),
        kernel_release: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        capabilities,
    };
    let mut dirs: Vec<(PathBuf, bool)> = SYSTEM_PACK_DIRS
        .iter()
        .map(|d| (PathBuf::from(d), false))
        .collect();
    dirs.extend(config.pack_dirs.iter().map(|d| (d.clone(), true)));
    let packs = pack::PackProbes::load(&dirs, tracefs.as_deref(), &info.capabilities);
    for problem in packs.problems() {
        log::warn!("{problem}");
    }
    let probes = ProbeSet::new(tracer, tracefs.clone(), &info.capabilities, packs);
    for probe in probes.list(&Default::default()) {
        if !probe.availability.available {
            log::warn!(
                "probe {} unavailable: {}",
                probe.id,
                probe.availability.reason
            );
        }
    }
    let policy = Policy::for_group(&config.group);
    let listener = listen(&config.socket, &policy)?;
    log::info!(
        "microscoped {} listening on {} (root and group `{}`)",
        info.helper_version,
        config.socket.display(),
        config.group
    );
    let served = server::serve(listener, probes, info, policy, tracefs, shutdown).await;
    if let Err(err) = std::fs::remove_file(&config.socket) {
        log::warn!("could not remove {}: {err}", config.socket.display());
    }
    served.map_err(|reason| anyhow::anyhow!("{reason}; every probe was detached"))
}

/// Creates the socket: parent directory, stale-file check, mode 0660,
/// group ownership.
fn listen(path: &Path, policy: &Policy) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create the socket directory {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("could not set the mode of {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another helper is already listening on {}; stop it first (or pass --socket)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("could not remove the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("could not listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("could not set the mode of {}", path.display()))?;
    match policy.group_gid {
        Some(gid) => nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .with_context(|| format!("could not give {} to group {gid}", path.display()))?,
        None => log::warn!(
            "group `{}` does not exist, so only root can connect; create it with \
             `sudo groupadd {}` and add users with `sudo usermod -aG {} <user>`",
            policy.group_name,
            policy.group_name,
            policy.group_name
        ),
    }
    Ok(listener)
}
