//! Microscope's probe catalogue: which parts of the kernel Microscope knows
//! about, how they connect, and the probes that watch them, read from
//! *probe packs*.
//!
//! The probes Microscope ships are themselves a pack, `builtin`, in
//! `assets/packs/builtin/` and compiled into the binary
//! ([`Catalogue::builtin`]). Third-party packs use the same format
//! ([`Catalogue::load_pack_dir`], merged with [`Catalogue::from_packs`]).
//!
//! # A pack
//!
//! A directory of TOML files:
//!
//! - `pack.toml` names the pack and draws the map: its `[[layer]]` rows and
//!   the `[[edge]]` arrows between subsystems.
//! - every other `*.toml` file holds at most one `[subsystem]` (a node of the
//!   map) and any number of `[[probe]]` entries. A probe belongs to its
//!   file's subsystem unless it names another with `subsystem = "..."`, which
//!   is how a pack adds probes to a subsystem another pack defines.
//!
//! ```toml
//! # pack.toml
//! [pack]
//! id = "builtin"
//! name = "Microscope built-in probes"
//! description = "The kernel subsystems Microscope explains, and their probes."
//! version = "1.0.0"
//!
//! [[layer]]
//! index = 1
//! name = "System call interface"
//!
//! [[edge]]
//! from = "syscalls"
//! to = "vfs"
//! label = "read/write/open enter the VFS"
//! ```
//!
//! ```toml
//! # block.toml
//! [subsystem]
//! id = "block"
//! name = "Block I/O"
//! layer = 5
//! explanation = "..."
//! docs = ["https://docs.kernel.org/block/blk-mq.html"]
//! source = ["block/blk-mq.c"]
//!
//! [[probe]]
//! id = "block:block_rq_issue"
//! type = "tracepoint"
//! target = "block:block_rq_issue"
//! summary = "A request is handed to the device driver."
//! stacks = true
//!
//! [probe.fields]
//! rwbs = "R read, W write, S sync, M metadata..."
//! nr_sector = "size in 512-byte sectors"
//! ```
//!
//! A probe's `type` is one of [`ProbeType`]'s spellings. Tracepoint-based
//! types name their tracepoint in `target` (`category:name`) with an
//! optional `program` (a dedicated program in the pack's eBPF object; without
//! one, the generic program copies the record and the helper decodes every
//! field from the tracepoint's `format` file). A probe that attaches several
//! programs lists them instead:
//!
//! ```toml
//! [[probe]]
//! id = "syscalls:latency"
//! type = "syscall_latency"
//! summary = "Time from syscall entry to exit, as a log2 histogram built in the kernel."
//!
//! [[probe.attach]]
//! program = "sys_enter_latency"
//! target = "raw_syscalls:sys_enter"
//!
//! [[probe.attach]]
//! program = "sys_exit_latency"
//! target = "raw_syscalls:sys_exit"
//! ```
//!
//! `function` probes name a kernel function (`target = "vfs_read"`, id
//! `func:vfs_read`), `uprobe` probes a `path:symbol` (`libc.so.6:malloc`),
//! and the profilers (`profile_cpu`, `profile_offcpu`) take no target.
//!
//! A pack may also hold guided tours in `tours/*.toml` (see [`Tour`]): the
//! steps of a scenario, each highlighting nodes and edges of the map and
//! switching on the probes whose events show what happens.
//!
//! # Why TOML
//!
//! These files are written and reviewed by people, many of them students or
//! kernel developers rather than Rust programmers. TOML has comments, plain
//! multi-line strings for explanations, `[[probe]]` arrays that read like a
//! list of entries, and no significant indentation; and the `toml` crate
//! reports errors with a line and column, which every [`CatalogueError`]
//! passes on (`assets/packs/builtin/tcp.toml:12:8: ...`). Unknown keys are
//! errors, so a misspelt `sumary` is caught rather than silently ignored.

mod bpf;
mod btf_patch;
mod builtin;
mod catalogue;
mod check;
mod error;
mod manifest;
mod model;
pub mod object;
mod pack;
pub mod targets;
mod tour;

pub use bpf::{
    AttachChoice, AttachPoint, AttachSlot, BpfProbe, Buckets, Decode, FieldSpec, FieldType, Knob,
    KnobValue, Layout, MapSizes, ObjectDef, Output, OutputKind, Role, StacksSpec, Unit,
};
pub use builtin::BUILTIN_ORIGIN;
pub use catalogue::Catalogue;
pub use check::{PackCheck, ProbeCheck, check_pack_dir};
pub use error::{CatalogueError, Definition, Location};
pub use model::{
    Attachment, Edge, FieldDoc, Layer, PackInfo, ProbeDef, ProbeType, Subsystem, Target,
};
pub use pack::{PACK_MANIFEST, Pack};
pub use tour::{TOURS_DIR, Tour, TourAction, TourStep};

/// The built-in subsystem (by id) a tracepoint category belongs to: where
/// a tracepoint no pack names is placed on the map, `other` if none fits.
pub fn subsystem_of_category(category: &str) -> &'static str {
    match category {
        "sched" => "sched",
        "task" | "signal" | "cgroup" => "process",
        "syscalls" | "raw_syscalls" => "syscalls",
        "block" | "iocost" | "bfq" | "nvme" | "scsi" => "block",
        "ext4" | "jbd2" | "xfs" | "btrfs" | "f2fs" => "ext4",
        "filemap" | "writeback" => "pagecache",
        "kmem" | "vmscan" | "compaction" | "oom" | "mmap" | "exceptions" | "huge_memory"
        | "migrate" | "percpu" | "cma" => "memory",
        "sock" | "inet_sock" => "socket",
        "tcp" => "tcp",
        "udp" => "udp",
        "fib" | "fib6" | "neigh" => "ip",
        "net" | "napi" | "qdisc" | "skb" => "netdev",
        "irq" | "timer" | "hrtimer" | "irq_vectors" | "workqueue" => "irq",
        "lock" | "rcu" => "locking",
        _ => "other",
    }
}
