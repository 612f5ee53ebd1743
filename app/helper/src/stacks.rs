//! Reading in-kernel stack counts: a `HashMap<StackKey, u64>` of counts and
//! the `StackTrace` map their stack ids point into, as every object with
//! stacks has them (the profiler's on-CPU and off-CPU pairs, the main
//! object's stacks at tracepoints).
//!
//! [`take_stack_counts`] reads and deletes the counts, reads their stacks,
//! then frees the stacks nothing refers to any more, so the stack map only
//! ever holds about one drain interval's worth of stacks (fewer bucket
//! collisions, no leak). It is all map syscalls and cheap enough for the
//! hub; naming the frames ([`crate::Symbolizer`]) is the slow part and
//! happens elsewhere. [`drain_stack_counts`] does both in one call, for
//! callers on a thread that may block.
//!
//! Races with the programs, which keep running meanwhile, are narrow and
//! never lose a stack silently: a hit between reading a count and deleting
//! it is lost (microseconds per key); a stack freed in the instant between
//! the final re-check and its removal while a new hit starts using it shows
//! as [`crate::symbolize::LOST_STACK`] in the next drain.

use crate::raw_stack::{CapturedStack, RawStack};
use crate::symbolize::{FrameInterner, NamedStack, Symbolizer};
use aya::maps::{HashMap, MapData, MapError, StackTraceMap};
use microscope_wire::ProbeKey;
use microscope_wire::StackCount;
use probes_common::{COMM_LEN, StackKey};
use std::collections::{HashMap as StdHashMap, HashSet};

/// `bpf_get_stackid`'s error when there was no stack to take (user space
/// of a kernel thread, kernel space of a user-mode sample).
const EFAULT: i32 = 14;
/// "Not captured", as objects that do not keep the error store it.
const NOT_CAPTURED: i32 = -1;

/// Reads and deletes every entry of `counts`, reads the stacks they refer
/// to, and frees those stacks unless a count that arrived meanwhile or an
/// id in `keep` still needs them.
///
/// `probe_of` maps [`StackKey::id`] to the probe key shown to clients;
/// counts of ids it does not know are deleted without being returned.
/// `leaf_is_ip` says whether the stacks come from timer samples (see
/// [`RawStack::leaf_is_ip`]). Map errors are logged, not returned: a drain
/// that reads part of the map is still worth having.
pub fn take_stack_counts(
    counts: &mut HashMap<MapData, StackKey, u64>,
    stacks: &mut StackTraceMap<MapData>,
    probe_of: impl Fn(u32) -> Option<ProbeKey>,
    keep: &HashSet<u32>,
    leaf_is_ip: bool,
) -> Vec<RawStack> {
    // Deleting while iterating restarts the kernel's iteration: collect first.
    let keys = map_keys(counts);
    let mut taken = Vec::with_capacity(keys.len());
    for key in keys {
        match counts.get(&key, 0) {
            Ok(value) => taken.push((key, value)),
            Err(MapError::KeyNotFound) => continue,
            Err(err) => {
                log::warn!("reading a stack count failed: {err}");
                continue;
            }
        }
        if let Err(err) = counts.remove(&key)
            && !matches!(err, MapError::KeyNotFound)
        {
            log::warn!("deleting a stack count failed: {err}");
        }
    }
    let raw = read_stacks(&taken, stacks, probe_of, leaf_is_ip);

    // Free the stacks just read, except those still in use.
    let mut in_use = keep.clone();
    for key in map_keys(counts) {
        in_use.extend(stack_ids(&key));
    }
    let read: HashSet<u32> = taken.iter().flat_map(|(key, _)| stack_ids(key)).collect();
    for id in read.difference(&in_use) {
        if let Err(err) = stacks.remove(id)
            && !matches!(err, MapError::KeyNotFound)
        {
            log::warn!("freeing stack {id} failed: {err}");
        }
    }
    raw
}

/// The stacks of `counts` as addresses. Each distinct stack id is read
/// once; an id that is no longer in `stacks` becomes [`CapturedStack::Lost`].
pub fn read_stacks(
    counts: &[(StackKey, u64)],
    stacks: &StackTraceMap<MapData>,
    probe_of: impl Fn(u32) -> Option<ProbeKey>,
    leaf_is_ip: bool,
) -> Vec<RawStack> {
    let mut cache: StdHashMap<i32, CapturedStack> = StdHashMap::new();
    let mut read = |id: i32| -> CapturedStack {
        cache
            .entry(id)
            .or_insert_with(|| read_stack(stacks, id))
            .clone()
    };
    counts
        .iter()
        .filter_map(|(key, value)| {
            let probe = probe_of(key.id)?;
            Some(RawStack {
                probe,
                tgid: key.tgid,
                comm: comm_string(&key.comm),
                kernel: read(key.kernel_stack),
                user: read(key.user_stack),
                value: *value,
                leaf_is_ip,
            })
        })
        .collect()
}

/// Empties a stack map (used when a profile stops: nothing refers to its
/// stacks any more).
pub fn clear_stacks(stacks: &mut StackTraceMap<MapData>) {
    let ids: Vec<u32> = stacks.stack_ids().filter_map(Result::ok).collect();
    for id in ids {
        if let Err(err) = stacks.remove(&id)
            && !matches!(err, MapError::KeyNotFound)
        {
            log::warn!("freeing stack {id} failed: {err}");
        }
    }
}

/// [`take_stack_counts`], then names the frames and interns them: the
/// whole drain in one call. Symbolizing can take a while the first time a
/// process is seen (its ELF and DWARF are parsed), so call this from a
/// thread that may block, not from an async task.
pub fn drain_stack_counts(
    counts: &mut HashMap<MapData, StackKey, u64>,
    stacks: &mut StackTraceMap<MapData>,
    probe_of: impl Fn(u32) -> Option<ProbeKey>,
    leaf_is_ip: bool,
    symbolizer: &mut Symbolizer,
    interner: &mut FrameInterner,
) -> Vec<StackCount> {
    let raw = take_stack_counts(counts, stacks, probe_of, &HashSet::new(), leaf_is_ip);
    intern_stacks(symbolizer.symbolize_all(&raw), interner)
}

/// Interns the frames of `named`, merging stacks that came out identical
/// (different addresses in the same functions), sorted for stable output.
pub fn intern_stacks(named: Vec<NamedStack>, interner: &mut FrameInterner) -> Vec<StackCount> {
    // Before, never during: every id of this batch stays defined.
    interner.trim();
    let mut merged: StdHashMap<(ProbeKey, u32, String, Vec<u32>), u64> = StdHashMap::new();
    for stack in named {
        let frames = stack
            .frames
            .iter()
            .map(|(name, kernel)| interner.intern(name, *kernel))
            .collect();
        *merged
            .entry((stack.probe, stack.tgid, stack.comm, frames))
            .or_default() += stack.value;
    }
    let mut out: Vec<StackCount> = merged
        .into_iter()
        .map(|((probe, tgid, comm, frames), value)| StackCount {
            probe,
            tgid,
            comm,
            frames,
            value,
        })
        .collect();
    out.sort_by(|a, b| {
        (a.probe, a.tgid, &a.comm, &a.frames).cmp(&(b.probe, b.tgid, &b.comm, &b.frames))
    });
    out
}

fn read_stack(stacks: &StackTraceMap<MapData>, id: i32) -> CapturedStack {
    if id == -EFAULT || id == NOT_CAPTURED {
        return CapturedStack::Absent;
    }
    let Ok(id) = u32::try_from(id) else {
        // EEXIST (bucket taken by another stack), ENOMEM, ...
        return CapturedStack::Lost;
    };
    match stacks.get(&id, 0) {
        Ok(trace) => CapturedStack::from_frames(trace.frames().iter().map(|f| f.ip).collect()),
        Err(MapError::KeyNotFound) => CapturedStack::Lost,
        Err(err) => {
            log::warn!("reading stack {id} failed: {err}");
            CapturedStack::Lost
        }
    }
}

fn map_keys(counts: &HashMap<MapData, StackKey, u64>) -> Vec<StackKey> {
    let mut keys = Vec::new();
    for key in counts.keys() {
        match key {
            Ok(key) => keys.push(key),
            Err(err) => {
                log::warn!("listing stack counts failed: {err}");
                break;
            }
        }
    }
    keys
}

/// The valid stack ids of `key`.
pub fn stack_ids(key: &StackKey) -> impl Iterator<Item = u32> {
    [key.kernel_stack, key.user_stack]
        .into_iter()
        .filter_map(|id| u32::try_from(id).ok())
}

/// A NUL-padded kernel comm as text.
pub fn comm_string(comm: &[u8; COMM_LEN]) -> String {
    let end = comm.iter().position(|b| *b == 0).unwrap_or(COMM_LEN);
    String::from_utf8_lossy(comm.get(..end).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn comm_stops_at_the_first_nul() {
        assert_eq!(comm_string(b"bash\0\0\0\0\0\0\0\0\0\0\0\0"), "bash");
        assert_eq!(comm_string(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(comm_string(&[0; COMM_LEN]), "");
    }

    #[test]
    fn negative_stack_ids_are_not_ids() {
        let key = StackKey {
            kernel_stack: -EFAULT,
            user_stack: 7,
            ..StackKey::default()
        };
        assert_eq!(stack_ids(&key).collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn identical_named_stacks_merge_and_sort() {
        let stack = |probe, frames: &[(&str, bool)], value| NamedStack {
            probe,
            tgid: 5,
            comm: "x".into(),
            frames: frames.iter().map(|(n, k)| (Arc::from(*n), *k)).collect(),
            value,
        };
        let mut interner = FrameInterner::new();
        let out = intern_stacks(
            vec![
                stack(2, &[("main", false)], 1),
                stack(1, &[("main", false), ("read", true)], 3),
                stack(1, &[("main", false), ("read", true)], 4),
            ],
            &mut interner,
        );
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].probe, out[0].value), (1, 7));
        assert_eq!(out[0].frames, [0, 1]);
        assert_eq!((out[1].probe, out[1].value), (2, 1));
        assert!(intern_stacks(Vec::new(), &mut interner).is_empty());
    }
}
