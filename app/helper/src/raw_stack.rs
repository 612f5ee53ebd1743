//! A stack as read from the kernel, before it has names: the types that
//! the reading side (`stacks`) hands to the naming side (`symbolize`). They
//! live apart from both so that neither module imports the other's
//! importer (no module cycle).

use microscope_wire::ProbeKey;

/// A stack as captured: addresses leaf-first, or why there are none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapturedStack {
    /// Nothing to capture in this address space (`-EFAULT`), or not
    /// captured (`-1`, which `bpf_get_stackid` never returns itself).
    Absent,
    /// A stack was there but could not be kept or read (its bucket in the
    /// stack map held another stack, or it was freed).
    Lost,
    /// Return addresses, innermost first (the last may be the exact
    /// instruction; see [`RawStack::leaf_is_ip`]).
    Frames(Vec<u64>),
}

impl CapturedStack {
    /// `Frames`, or `Absent` when `frames` is empty.
    pub fn from_frames(frames: Vec<u64>) -> Self {
        if frames.is_empty() {
            Self::Absent
        } else {
            Self::Frames(frames)
        }
    }

    /// The addresses, innermost first; empty unless `Frames`.
    pub fn frames(&self) -> &[u64] {
        match self {
            Self::Frames(frames) => frames,
            Self::Absent | Self::Lost => &[],
        }
    }
}

/// One count read from the kernel, with its stacks as addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawStack {
    /// Probe key (from `probe_of(StackKey::id)`).
    pub probe: ProbeKey,
    /// Process id.
    pub tgid: u32,
    /// Thread command name.
    pub comm: String,
    /// Kernel stack.
    pub kernel: CapturedStack,
    /// User stack.
    pub user: CapturedStack,
    /// Samples, hits or ns blocked.
    pub value: u64,
    /// The innermost frame is the exact instruction that was running (a
    /// timer sample) rather than a return address (stacks captured at a
    /// tracepoint or at a context switch).
    pub leaf_is_ip: bool,
}
