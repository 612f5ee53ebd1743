//! Data shared between Microscope's eBPF programs (`ebpf/`) and its helper
//! (`app/helper`).
//!
//! Everything here is `no_std` and `#[repr(C)]`: the kernel writes these
//! structs into the ring buffer and the maps, and the helper reads the very
//! same definitions back. Each struct is laid out without implicit padding
//! (explicit `_pad` fields) and its size is checked at compile time, so the two
//! sides cannot drift apart.
//!
//! Time stamps are `bpf_ktime_get_ns()`: nanoseconds of `CLOCK_MONOTONIC`.
#![no_std]

/// Length of a task's command name, as in the kernel's `TASK_COMM_LEN`.
pub const COMM_LEN: usize = 16;
/// Longest path copied from a tracepoint or from user memory, NUL included.
pub const PATH_LEN: usize = 256;

/// Capacity of the event ring buffer in bytes (a power of two, a multiple of
/// the page size). 16 MiB holds ~50 ms of the fastest `openat` loop this
/// project was measured with, so a 10 ms poll keeps up with room to spare.
pub const RING_BYTES: u32 = 16 << 20;

/// Number of slots in the per-syscall counter array; syscall numbers on
/// x86_64 stay below 512.
pub const SYSCALL_SLOTS: u32 = 512;
/// Number of buckets of the log2 latency histogram: bucket `i` counts
/// latencies `d` (in ns) with `2^i <= d < 2^(i+1)` (bucket 0 also holds 0).
pub const LATENCY_BUCKETS: u32 = 64;
/// Entries of the map that remembers when each thread entered its syscall.
pub const SYSCALL_START_ENTRIES: u32 = 65_536;
/// Entries of each function probe's map of entry times (one per thread
/// inside the function at once). A function where more threads block at
/// once, like `schedule`, loses the oldest entries: those calls are counted
/// but not timed.
pub const FUNCTION_START_ENTRIES: u32 = 10_240;

/// What a ring buffer record is. Stored in [`EventHeader::kind`].
///
/// One kind per streamed probe; the value also indexes the `DROPS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `sched:sched_switch`, [`SchedSwitchEvent`].
    SchedSwitch = 0,
    /// `sched:sched_wakeup`, [`SchedWakeupEvent`].
    SchedWakeup = 1,
    /// `sched:sched_process_fork`, [`SchedForkEvent`].
    SchedFork = 2,
    /// `sched:sched_process_exec`, [`SchedExecEvent`].
    SchedExec = 3,
    /// `sched:sched_process_exit`, [`SchedExitEvent`].
    SchedExit = 4,
    /// `syscalls:sys_enter_openat`, [`OpenatEvent`].
    Openat = 5,
    /// Any tracepoint, copied raw for the helper to decode, [`TracepointEvent`].
    Tracepoint = 6,
}

/// Number of [`EventKind`]s, the length of the `DROPS` array.
pub const EVENT_KINDS: u32 = 7;

impl EventKind {
    /// Every kind, in discriminant order.
    pub const ALL: [EventKind; EVENT_KINDS as usize] = [
        EventKind::SchedSwitch,
        EventKind::SchedWakeup,
        EventKind::SchedFork,
        EventKind::SchedExec,
        EventKind::SchedExit,
        EventKind::Openat,
        EventKind::Tracepoint,
    ];

    /// The kind stored as `raw`, if it is one.
    pub fn from_u32(raw: u32) -> Option<Self> {
        Self::ALL.get(raw as usize).copied()
    }
}

/// Common start of every ring buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// An [`EventKind`] as `u32`.
    pub kind: u32,
    /// CPU the event happened on.
    pub cpu: u32,
    /// Time of the event, ns of `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// Kernel pid of the current task (a thread id in user-space terms).
    pub pid: u32,
    /// Thread group id of the current task (the process id).
    pub tgid: u32,
    /// Command name of the current task, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// `sched:sched_switch`: `prev` leaves the CPU, `next` takes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedSwitchEvent {
    pub header: EventHeader,
    /// Pid of the task leaving the CPU.
    pub prev_pid: u32,
    /// Pid of the task taking the CPU.
    pub next_pid: u32,
    /// Kernel priority of `prev` (lower runs first; 120 is nice 0).
    pub prev_prio: i32,
    /// Kernel priority of `next`.
    pub next_prio: i32,
    /// State `prev` left in: 0 = runnable (preempted), else `TASK_*` bits.
    pub prev_state: u64,
    /// Command name of `prev`.
    pub prev_comm: [u8; COMM_LEN],
    /// Command name of `next`.
    pub next_comm: [u8; COMM_LEN],
}

/// `sched:sched_wakeup`: a sleeping task was made runnable.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedWakeupEvent {
    pub header: EventHeader,
    /// Pid of the task woken up.
    pub pid: u32,
    /// Its kernel priority.
    pub prio: i32,
    /// CPU it was queued on.
    pub target_cpu: u32,
    pub _pad: u32,
    /// Its command name.
    pub comm: [u8; COMM_LEN],
}

/// `sched:sched_process_fork`: a task created a child (process or thread).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedForkEvent {
    pub header: EventHeader,
    /// Pid of the parent.
    pub parent_pid: u32,
    /// Pid of the new child.
    pub child_pid: u32,
}

/// `sched:sched_process_exec`: a process replaced its program.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedExecEvent {
    pub header: EventHeader,
    /// Pid after exec.
    pub pid: u32,
    /// Pid before exec (differs when a non-leader thread execs).
    pub old_pid: u32,
    /// Path of the new program, NUL-terminated.
    pub filename: [u8; PATH_LEN],
}

/// `sched:sched_process_exit`: a task is exiting.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedExitEvent {
    pub header: EventHeader,
    /// Pid of the exiting task.
    pub pid: u32,
    /// Its kernel priority.
    pub prio: i32,
    /// 1 when the whole thread group (the process) is gone, else 0.
    pub group_dead: u32,
    pub _pad: u32,
}

/// `syscalls:sys_enter_openat`: a task asks to open a path.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OpenatEvent {
    pub header: EventHeader,
    /// Directory fd the path is relative to (`AT_FDCWD` = -100).
    pub dfd: i32,
    /// `O_*` flags.
    pub flags: u32,
    /// Creation mode bits.
    pub mode: u32,
    pub _pad: u32,
    /// The path as the task passed it, NUL-terminated (truncated to
    /// [`PATH_LEN`] - 1 bytes).
    pub filename: [u8; PATH_LEN],
}

const _: () = {
    assert!(core::mem::size_of::<EventHeader>() == 40);
    assert!(core::mem::size_of::<SchedSwitchEvent>() == 40 + 24 + 32);
    assert!(core::mem::size_of::<SchedWakeupEvent>() == 40 + 16 + 16);
    assert!(core::mem::size_of::<SchedForkEvent>() == 40 + 8);
    assert!(core::mem::size_of::<SchedExecEvent>() == 40 + 8 + PATH_LEN);
    assert!(core::mem::size_of::<SchedExitEvent>() == 40 + 16);
    assert!(core::mem::size_of::<OpenatEvent>() == 40 + 16 + PATH_LEN);
};

/// A tracepoint field whose offset the eBPF programs read from a global that
/// the helper sets at load time from the tracepoint's `format` file.
///
/// Tracepoint layouts are not a stable ABI (for example `sched_process_fork`
/// changed its comm fields to `__data_loc` in 6.x), so offsets are looked up
/// on the running kernel rather than compiled in.
#[derive(Clone, Copy, Debug)]
pub struct FieldGlobal {
    /// Name of the `u32` global in the eBPF object.
    pub global: &'static str,
    /// Tracepoint category, e.g. `sched`.
    pub category: &'static str,
    /// Tracepoint name, e.g. `sched_switch`.
    pub name: &'static str,
    /// Field name in the format file.
    pub field: &'static str,
}

macro_rules! field_globals {
    ($($global:ident = $category:literal / $name:literal . $field:literal;)*) => {
        /// Every offset global the eBPF object declares (see [`FieldGlobal`]).
        pub const FIELD_GLOBALS: &[FieldGlobal] = &[
            $(FieldGlobal { global: stringify!($global), category: $category, name: $name, field: $field },)*
        ];
    };
}

field_globals! {
    SWITCH_PREV_COMM = "sched" / "sched_switch" . "prev_comm";
    SWITCH_PREV_PID = "sched" / "sched_switch" . "prev_pid";
    SWITCH_PREV_PRIO = "sched" / "sched_switch" . "prev_prio";
    SWITCH_PREV_STATE = "sched" / "sched_switch" . "prev_state";
    SWITCH_NEXT_COMM = "sched" / "sched_switch" . "next_comm";
    SWITCH_NEXT_PID = "sched" / "sched_switch" . "next_pid";
    SWITCH_NEXT_PRIO = "sched" / "sched_switch" . "next_prio";
    WAKEUP_COMM = "sched" / "sched_wakeup" . "comm";
    WAKEUP_PID = "sched" / "sched_wakeup" . "pid";
    WAKEUP_PRIO = "sched" / "sched_wakeup" . "prio";
    WAKEUP_TARGET_CPU = "sched" / "sched_wakeup" . "target_cpu";
    FORK_PARENT_PID = "sched" / "sched_process_fork" . "parent_pid";
    FORK_CHILD_PID = "sched" / "sched_process_fork" . "child_pid";
    EXEC_FILENAME = "sched" / "sched_process_exec" . "filename";
    EXEC_PID = "sched" / "sched_process_exec" . "pid";
    EXEC_OLD_PID = "sched" / "sched_process_exec" . "old_pid";
    EXIT_PID = "sched" / "sched_process_exit" . "pid";
    EXIT_PRIO = "sched" / "sched_process_exit" . "prio";
    EXIT_GROUP_DEAD = "sched" / "sched_process_exit" . "group_dead";
    OPENAT_DFD = "syscalls" / "sys_enter_openat" . "dfd";
    OPENAT_FILENAME = "syscalls" / "sys_enter_openat" . "filename";
    OPENAT_FLAGS = "syscalls" / "sys_enter_openat" . "flags";
    OPENAT_MODE = "syscalls" / "sys_enter_openat" . "mode";
    RAW_ENTER_ID = "raw_syscalls" / "sys_enter" . "id";
}

/// Sentinel offset: the field was not found on this kernel; programs that
/// need it are not attached.
pub const FIELD_MISSING: u32 = u32::MAX;

/// Bytes of a tracepoint record the generic program copies: the fixed
/// fields and, behind them, the `__data_loc` strings and arrays (cut off at
/// this length; the helper marks what did not fit).
pub const TP_RECORD_BYTES: usize = 256;

/// How many tracepoints the generic programs can trace at once: the eBPF
/// object holds one copy of the generic program per slot.
///
/// Why copies: a tracepoint program cannot tell which tracepoint it runs on.
/// The record's leading `common_type` would say, but the kernel overwrites
/// the first 8 bytes of the record with a `pt_regs` pointer before running
/// BPF programs. So each attached tracepoint gets its own copy, which stamps
/// its slot number on every record.
pub const TP_SLOTS: u32 = 64;

/// [`TracepointEvent`]'s slot options: also count stacks at every hit.
pub const SLOT_STACKS: u32 = 1;

/// Slot option: only count the hits, per CPU in `TP_HITS`, and send no
/// record. What the map's default probes use: a hit then costs one
/// per-CPU increment instead of a ring-buffer reservation and a copy.
pub const SLOT_COUNT_ONLY: u32 = 2;

/// Any tracepoint's raw record, from the generic program of slot `slot`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TracepointEvent {
    pub header: EventHeader,
    /// Which generic program copy (and so which tracepoint) produced it.
    pub slot: u32,
    pub _pad: u32,
    /// The first [`TP_RECORD_BYTES`] bytes of the record. The first 8 hold a
    /// kernel pointer, not the `common_*` fields (see [`TP_SLOTS`]).
    pub data: [u8; TP_RECORD_BYTES],
}

const _: () = assert!(core::mem::size_of::<TracepointEvent>() == 48 + TP_RECORD_BYTES);

/// Key of the in-kernel stack counts (`STACK_COUNTS` maps): who, where.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackKey {
    /// What captured it: a generic tracepoint slot, or an object-defined
    /// id (for example 0 = on-CPU sample).
    pub id: u32,
    /// Process id.
    pub tgid: u32,
    /// Kernel stack id in the `STACKS` map, negative when not captured.
    pub kernel_stack: i32,
    /// User stack id in the `STACKS` map, negative when not captured.
    pub user_stack: i32,
    /// Command name of the thread, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<StackKey>() == 32);

/// Distinct stacks each `STACKS` map holds.
pub const STACK_ENTRIES: u32 = 16_384;
/// Frames kept per stack (the kernel's `PERF_MAX_STACK_DEPTH` is 127).
pub const STACK_DEPTH: u32 = 127;

/// [`StackKey::id`] of the profiler object's on-CPU samples (value: samples).
pub const PROFILE_ON_CPU: u32 = 0;
/// [`StackKey::id`] of the profiler object's off-CPU blocks (value: ns blocked).
pub const PROFILE_OFF_CPU: u32 = 1;
/// Threads the off-CPU profiler tracks as blocked at once. The map is an
/// LRU, so threads that exit while blocked (and never come back) cannot
/// fill it: the longest-blocked ones are forgotten first.
pub const BLOCKED_ENTRIES: u32 = 32_768;
/// Default sampling rate of the on-CPU profiler, per CPU: 99 Hz rather than
/// 100 so that sampling does not run in lockstep with timer-driven work.
pub const DEFAULT_SAMPLE_HZ: u32 = 99;
/// Default shortest block the off-CPU profiler counts, in ns (1 ms).
pub const DEFAULT_MIN_BLOCK_NS: u64 = 1_000_000;

/// Where and since when a thread has been blocked: the value of the off-CPU
/// profiler's `BLOCKED` map, keyed by the thread's kernel pid. Written when
/// the thread leaves the CPU (its stacks are captured then, while it is
/// still `current`), consumed when it is switched back in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStart {
    /// When the thread left the CPU, ns of `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// The counts key its blocked time will be added to
    /// ([`PROFILE_OFF_CPU`], its process, stacks and comm).
    pub key: StackKey,
}

const _: () = assert!(core::mem::size_of::<BlockStart>() == 8 + 32);

/// [`ProcessFilterConfig::flags`]: keep only this process id (tgid).
pub const FILTER_PID: u32 = 1;
/// [`ProcessFilterConfig::flags`]: keep only this command name.
pub const FILTER_COMM: u32 = 2;
/// [`ProcessFilterConfig::flags`]: keep only this cgroup v2 id.
pub const FILTER_CGROUP: u32 = 4;

/// One process filter, a slot of the [`FilterTable`]. A task passes it when
/// it matches every condition set in `flags` (none set: every task).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessFilterConfig {
    /// Which conditions are set ([`FILTER_PID`] | [`FILTER_COMM`] |
    /// [`FILTER_CGROUP`]); 0 keeps everything.
    pub flags: u32,
    /// Process id to keep.
    pub tgid: u32,
    /// cgroup v2 id to keep (`bpf_get_current_cgroup_id`).
    pub cgroup: u64,
    /// Command name to keep, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<ProcessFilterConfig>() == 32);

impl ProcessFilterConfig {
    /// Whether a task with these properties passes the filter.
    #[inline(always)]
    pub fn keeps(&self, tgid: u32, comm: &[u8; COMM_LEN], cgroup: impl FnOnce() -> u64) -> bool {
        if self.flags & FILTER_PID != 0 && self.tgid != tgid {
            return false;
        }
        if self.flags & FILTER_COMM != 0 && self.comm != *comm {
            return false;
        }
        if self.flags & FILTER_CGROUP != 0 && self.cgroup != cgroup() {
            return false;
        }
        true
    }
}

/// Process filters the kernel applies at once: one slot per distinct filter
/// of the helper's clients ("no filter" is one too). In-kernel aggregates
/// are counted per slot, so each client reads exactly what its own filter
/// keeps.
pub const FILTER_SLOTS: u32 = 8;

/// The in-kernel process filters, the single entry of each object's
/// `FILTER` array map. Every program reads it first: one array lookup. The
/// helper keeps the two masks in step with the slots, so that the common
/// cases cost no more than one filter did: a slot without conditions keeps
/// every task without reading anything about it, and with only such slots
/// the filtered slots are not looked at.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterTable {
    /// Slots in use: bit `i` for `slots[i]`. All zero keeps nothing.
    pub active: u32,
    /// Slots in use whose filter has no condition (keeps every task).
    pub keep_all: u32,
    /// The union of the `flags` of the slots in use: which properties of a
    /// task the programs must read (its comm, its cgroup), each at most once.
    pub flags: u32,
    /// Padding, zero.
    pub _pad: u32,
    /// The filters, by slot.
    pub slots: [ProcessFilterConfig; FILTER_SLOTS as usize],
}

const _: () = assert!(core::mem::size_of::<FilterTable>() == 16 + 32 * FILTER_SLOTS as usize);

impl FilterTable {
    /// A table whose only slot (0) is `filter`.
    pub fn single(filter: ProcessFilterConfig) -> Self {
        let mut table = Self::default();
        table.set(0, Some(filter));
        table
    }

    /// Puts `filter` in slot `slot` (`None`: frees it) and updates the masks.
    /// A slot past [`FILTER_SLOTS`] is ignored.
    pub fn set(&mut self, slot: usize, filter: Option<ProcessFilterConfig>) {
        let Some(entry) = self.slots.get_mut(slot) else {
            return;
        };
        *entry = filter.unwrap_or_default();
        let bit = 1u32 << slot;
        self.active &= !bit;
        self.keep_all &= !bit;
        if let Some(filter) = filter {
            self.active |= bit;
            if filter.flags == 0 {
                self.keep_all |= bit;
            }
        }
        self.flags = 0;
        for (i, entry) in self.slots.iter().enumerate() {
            if self.active & (1 << i) != 0 {
                self.flags |= entry.flags;
            }
        }
    }

    /// The slots that keep a task of process `tgid` named `comm` in cgroup
    /// `cgroup`, as a mask (bit `i` for slot `i`). `comm` and `cgroup` are
    /// only looked at when some slot in use filters on them.
    #[inline(always)]
    pub fn keeping(&self, tgid: u32, comm: &[u8; COMM_LEN], cgroup: u64) -> u32 {
        let mut mask = self.keep_all & self.active;
        let filtered = self.active & !self.keep_all;
        if filtered == 0 {
            return mask;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if filtered & (1 << i) != 0 && slot.keeps(tgid, comm, || cgroup) {
                mask |= 1 << i;
            }
        }
        mask
    }
}

/// When a thread entered a syscall or a probed function, and which filter
/// slots kept it then: the exit is counted in the same slots, even if the
/// thread changed meanwhile (an `execve` changes its comm).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryStart {
    /// Entry time, ns of `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// [`FilterTable::keeping`] at entry.
    pub slots: u32,
    /// Padding, zero.
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<EntryStart>() == 16);

/// The log2 bucket of `value`: `i` such that `2^i <= value < 2^(i+1)`,
/// bucket 0 for 0 and 1. Always below [`LATENCY_BUCKETS`]. Loop-free, so
/// the eBPF verifier sees a fixed number of instructions.
#[inline(always)]
pub fn log2_bucket(mut value: u64) -> u32 {
    let mut bucket = 0;
    for shift in [32u32, 16, 8, 4, 2, 1] {
        if value >> shift != 0 {
            value >>= shift;
            bucket += shift;
        }
    }
    bucket
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_bucket_bounds() {
        assert_eq!(log2_bucket(0), 0);
        assert_eq!(log2_bucket(1), 0);
        assert_eq!(log2_bucket(2), 1);
        assert_eq!(log2_bucket(1023), 9);
        assert_eq!(log2_bucket(1024), 10);
        assert_eq!(log2_bucket(u64::MAX), 63);
    }

    #[test]
    fn filter_keeps_what_matches() {
        let comm = *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let other = *b"dog\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let all = ProcessFilterConfig::default();
        assert!(all.keeps(7, &comm, || 1));
        let pid = ProcessFilterConfig {
            flags: FILTER_PID,
            tgid: 7,
            ..all
        };
        assert!(pid.keeps(7, &other, || 1));
        assert!(!pid.keeps(8, &comm, || 1));
        let both = ProcessFilterConfig {
            flags: FILTER_PID | FILTER_COMM | FILTER_CGROUP,
            tgid: 7,
            comm,
            cgroup: 42,
        };
        assert!(both.keeps(7, &comm, || 42));
        assert!(!both.keeps(7, &other, || 42));
        assert!(!both.keeps(7, &comm, || 41));
    }

    #[test]
    fn the_table_says_which_slots_keep_a_task() {
        let comm = *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let other = *b"dog\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let mut table = FilterTable::default();
        assert_eq!(
            table.keeping(7, &comm, 1),
            0,
            "no slot in use keeps nothing"
        );
        table.set(0, Some(ProcessFilterConfig::default()));
        assert_eq!((table.active, table.keep_all, table.flags), (1, 1, 0));
        assert_eq!(table.keeping(7, &comm, 1), 0b1);
        let pid7 = ProcessFilterConfig {
            flags: FILTER_PID,
            tgid: 7,
            ..ProcessFilterConfig::default()
        };
        let cat = ProcessFilterConfig {
            flags: FILTER_COMM,
            comm,
            ..ProcessFilterConfig::default()
        };
        table.set(3, Some(pid7));
        table.set(7, Some(cat));
        assert_eq!((table.active, table.keep_all), (0b1000_1001, 0b1));
        assert_eq!(table.flags, FILTER_PID | FILTER_COMM);
        assert_eq!(table.keeping(7, &comm, 1), 0b1000_1001);
        assert_eq!(table.keeping(7, &other, 1), 0b0000_1001);
        assert_eq!(table.keeping(8, &comm, 1), 0b1000_0001);
        table.set(0, None);
        assert_eq!(table.keeping(8, &other, 1), 0);
        assert_eq!(table.flags, FILTER_PID | FILTER_COMM);
        table.set(7, None);
        assert_eq!((table.active, table.flags), (0b1000, FILTER_PID));
        assert_eq!(table.slots[7], ProcessFilterConfig::default());
        table.set(99, Some(pid7));
        assert_eq!(table.active, 0b1000, "a slot past the table is ignored");
        assert_eq!(FilterTable::single(pid7).keeping(7, &comm, 1), 1);
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all these are `#[repr(C)]`, `Copy`, made only of integers and
    // integer arrays, with no implicit padding (sizes asserted above), so every
    // bit pattern is a valid value.
    unsafe impl aya::Pod for super::EventHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SchedSwitchEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SchedWakeupEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SchedForkEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SchedExecEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SchedExitEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::OpenatEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ProcessFilterConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FilterTable {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::EntryStart {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TracepointEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::StackKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::BlockStart {}
}
