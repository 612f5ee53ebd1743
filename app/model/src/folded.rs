//! Folded stacks, the text flame-graph tools read: one line per distinct
//! stack, `comm;root;...;leaf value`, sorted.
//!
//! [`FoldedProfile`] gathers the helper's [`StackBatch`]es (frame names
//! defined once by id, then referred to) and writes them as folded lines;
//! `microscope profile` and `microscope export --format folded` both use it.
//! User frames come first, then kernel frames, which carry the `_[k]`
//! suffix of `stackcollapse-perf.pl --kernel` (both tools colour them
//! apart).
//!
//! One frame has one folded name wherever it is written: [`folded_frame`]
//! (the name made safe by [`sanitize_frame`], plus the kernel suffix) is
//! used by `microscope profile`, `microscope export --format folded` and
//! the flame graph's *Export folded…*
//! ([`FlameGraph::to_folded`](crate::FlameGraph::to_folded)).

use crate::stacks::unknown_frame_name;
use microscope_wire::{Frame, HelperMessage, StackBatch, StackCount};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// Stack counts gathered from [`StackBatch`]es, as folded lines.
#[derive(Debug, Default)]
pub struct FoldedProfile {
    probe: u16,
    pid: Option<u32>,
    off_cpu: bool,
    frames: HashMap<u32, Frame>,
    counts: HashMap<(String, Vec<u32>), u64>,
    first_start_ns: Option<u64>,
    last_end_ns: u64,
}

impl FoldedProfile {
    /// Collects the stacks of probe `probe`, of process `pid` only if set.
    /// Off-CPU values (ns) are written as µs.
    pub fn new(probe: u16, pid: Option<u32>, off_cpu: bool) -> Self {
        Self {
            probe,
            pid,
            off_cpu,
            ..Self::default()
        }
    }

    /// Takes the frame definitions of any [`HelperMessage::Stacks`], and
    /// its counts if the batch ends after `since_ns` (an earlier batch
    /// covers only time before this profile began).
    pub fn add_message(&mut self, message: &HelperMessage, since_ns: u64) {
        if let HelperMessage::Stacks(batch) = message {
            self.add_batch(batch, since_ns);
        }
    }

    /// See [`add_message`](Self::add_message).
    pub fn add_batch(&mut self, batch: &StackBatch, since_ns: u64) {
        // Definitions count even from early batches: later ones refer to them.
        for frame in &batch.frames {
            self.frames.insert(frame.id, frame.clone());
        }
        if batch.end_ns <= since_ns {
            return;
        }
        let (probe, pid) = (self.probe, self.pid);
        let wanted = |s: &&StackCount| s.probe == probe && pid.is_none_or(|pid| s.tgid == pid);
        for stack in batch.stacks.iter().filter(wanted) {
            *self
                .counts
                .entry((stack.comm.clone(), stack.frames.clone()))
                .or_default() += stack.value;
        }
        // A batch of a profile another client started earlier may begin
        // before ours did.
        let start_ns = batch.start_ns.max(since_ns);
        self.first_start_ns = Some(self.first_start_ns.map_or(start_ns, |s| s.min(start_ns)));
        self.last_end_ns = self.last_end_ns.max(batch.end_ns);
    }

    /// End of the latest batch taken, ns of `CLOCK_MONOTONIC` (0 if none).
    pub fn last_end_ns(&self) -> u64 {
        self.last_end_ns
    }

    /// Time the batches taken cover, in ns.
    pub fn span_ns(&self) -> u64 {
        self.first_start_ns
            .map_or(0, |start| self.last_end_ns.saturating_sub(start))
    }

    /// Sum of the values of [`lines`](Self::lines).
    pub fn total(&self) -> u64 {
        self.lines_with_values().values().sum()
    }

    /// The folded lines, sorted (see the module docs for the format).
    pub fn lines(&self) -> Vec<String> {
        self.lines_with_values()
            .into_iter()
            .map(|(stack, value)| format!("{stack} {value}"))
            .collect()
    }

    /// Folded stacks and their values; stacks that fold to the same text
    /// (names differing only in what was sanitized) are merged.
    fn lines_with_values(&self) -> BTreeMap<String, u64> {
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        for ((comm, frames), value) in &self.counts {
            let value = if self.off_cpu { value / 1000 } else { *value };
            if value == 0 {
                continue;
            }
            let mut line = comm_frame(comm).into_owned();
            for id in frames {
                line.push(';');
                match self.frames.get(id) {
                    Some(frame) => line.push_str(&folded_frame(&frame.name, frame.kernel)),
                    // The helper defines every id before using it; keep
                    // the frame rather than drop the stack if not.
                    None => line.push_str(&folded_frame(&unknown_frame_name(*id), false)),
                }
            }
            *lines.entry(line).or_default() += value;
        }
        lines
    }
}

/// What kernel frames end with in folded lines, as `stackcollapse-perf.pl
/// --kernel` writes them.
pub const KERNEL_SUFFIX: &str = "_[k]";

/// The first frame of a stack whose thread has no command name.
pub const UNKNOWN_COMM: &str = "[unknown]";

/// The folded name of a frame: [`sanitize_frame`], and [`KERNEL_SUFFIX`]
/// for a kernel function.
pub fn folded_frame(name: &str, kernel: bool) -> Cow<'_, str> {
    let safe = sanitize_frame(name);
    if kernel {
        Cow::Owned(format!("{safe}{KERNEL_SUFFIX}"))
    } else {
        safe
    }
}

/// The folded frame of a thread's command name ([`UNKNOWN_COMM`] if empty).
pub fn comm_frame(comm: &str) -> Cow<'_, str> {
    sanitize_frame(if comm.is_empty() { UNKNOWN_COMM } else { comm })
}

/// `name` with `;` as `:` and white space as `_`, so a folded line splits
/// into frames at `;` and into stack and value at its last space.
pub fn sanitize_frame(name: &str) -> Cow<'_, str> {
    if !name.contains(|c: char| c == ';' || c.is_whitespace()) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .map(|c| match c {
                ';' => ':',
                c if c.is_whitespace() => '_',
                c => c,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u32, name: &str, kernel: bool) -> Frame {
        Frame {
            id,
            name: name.to_owned(),
            kernel,
        }
    }

    fn count(probe: u16, tgid: u32, comm: &str, frames: &[u32], value: u64) -> StackCount {
        StackCount {
            probe,
            tgid,
            comm: comm.to_owned(),
            frames: frames.to_vec(),
            value,
        }
    }

    fn batch(
        start_ns: u64,
        end_ns: u64,
        frames: Vec<Frame>,
        stacks: Vec<StackCount>,
    ) -> StackBatch {
        StackBatch {
            start_ns,
            end_ns,
            frames,
            stacks,
        }
    }

    #[test]
    fn names_are_sanitized_for_folded_lines() {
        assert_eq!(sanitize_frame("main"), "main");
        assert_eq!(
            sanitize_frame("operator new(unsigned long)"),
            "operator_new(unsigned_long)"
        );
        assert_eq!(sanitize_frame("a;b\tc\nd"), "a:b_c_d");
        assert_eq!(sanitize_frame(""), "");
    }

    #[test]
    fn batches_fold_into_sorted_lines_with_kernel_suffixes() {
        let mut profile = FoldedProfile::new(7, None, false);
        profile.add_batch(
            &batch(
                100,
                200,
                vec![
                    frame(0, "main", false),
                    frame(1, "work", false),
                    frame(2, "do_syscall_64", true),
                ],
                vec![
                    count(7, 1, "app", &[0, 1], 5),
                    count(7, 1, "app", &[0, 1, 2], 2),
                    count(9, 1, "app", &[0], 100), // another probe
                ],
            ),
            0,
        );
        // A later batch refers to earlier definitions and adds a new one.
        profile.add_batch(
            &batch(
                200,
                300,
                vec![frame(3, "helper fn;x", false)],
                vec![count(7, 1, "app", &[0, 1], 1), count(7, 2, "", &[3], 4)],
            ),
            0,
        );
        assert_eq!(
            profile.lines(),
            [
                "[unknown];helper_fn:x 4",
                "app;main;work 6",
                "app;main;work;do_syscall_64_[k] 2",
            ]
        );
        assert_eq!(profile.total(), 12);
        assert_eq!(profile.span_ns(), 200);
        assert_eq!(profile.last_end_ns(), 300);
    }

    #[test]
    fn pid_filter_early_batches_and_off_cpu_units() {
        let frames = vec![frame(0, "sleep", false)];
        let mut profile = FoldedProfile::new(1, Some(42), true);
        // Ends before the profile began: definitions only.
        profile.add_batch(
            &batch(0, 50, frames.clone(), vec![count(1, 42, "a", &[0], 9_000)]),
            60,
        );
        profile.add_batch(
            &batch(
                50,
                150,
                Vec::new(),
                vec![
                    count(1, 42, "a", &[0], 2_500_000),
                    count(1, 43, "b", &[0], 7_000_000),
                    count(1, 42, "a", &[9], 999), // below 1 µs: dropped
                ],
            ),
            60,
        );
        assert_eq!(profile.lines(), ["a;sleep 2500"]);
        assert_eq!(profile.span_ns(), 90, "from when the profile began");
    }

    #[test]
    fn unknown_ids_and_empty_profiles() {
        let mut profile = FoldedProfile::new(1, None, false);
        assert!(profile.lines().is_empty());
        assert_eq!((profile.total(), profile.span_ns()), (0, 0));
        profile.add_batch(&batch(1, 2, Vec::new(), vec![count(1, 1, "x", &[5], 1)]), 0);
        assert_eq!(profile.lines(), ["x;[unknown_frame_#5] 1"]);
    }

    #[test]
    fn inferno_accepts_the_folded_lines() {
        let mut profile = FoldedProfile::new(1, None, false);
        profile.add_batch(
            &batch(
                0,
                1,
                vec![
                    frame(0, "main", false),
                    frame(1, "std::vec::Vec<T, A>::push", false),
                    frame(2, "entry_SYSCALL_64", true),
                    frame(3, "a;b", false),
                ],
                vec![
                    count(1, 1, "my app", &[0, 1], 30),
                    count(1, 1, "my app", &[0, 2], 20),
                    count(1, 2, "other", &[3], 50),
                ],
            ),
            0,
        );
        let lines = profile.lines();
        let mut svg = Vec::new();
        let mut options = inferno::flamegraph::Options::default();
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
            .expect("inferno reads the folded lines");
        let svg = String::from_utf8(svg).expect("SVG is UTF-8");
        // Every frame made it into the graph with its count; inferno reads
        // `_[k]` as the kernel annotation and shows the bare name.
        for title in [
            "<title>all (100 samples, 100%)</title>",
            "<title>my_app (50 samples, 50.00%)</title>",
            "<title>std::vec::Vec&lt;T,_A&gt;::push (30 samples, 30.00%)</title>",
            "<title>entry_SYSCALL_64 (20 samples, 20.00%)</title>",
            "<title>a:b (50 samples, 50.00%)</title>",
        ] {
            assert!(svg.contains(title), "{title} missing from the flame graph");
        }
    }
}
