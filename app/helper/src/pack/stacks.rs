//! A pack's `stacks` output: a hash map of counts (or time sums) keyed by
//! stack ids, and the `BPF_MAP_TYPE_STACK_TRACE` map the ids point into.
//!
//! Each stacks drain ([`crate::DRAIN_INTERVAL`]) reads the count map
//! without changing it and turns what each key *grew by* since the previous
//! reading into a [`RawStack`]; those go the profiler's way (symbolizer
//! thread, frame interner, [`microscope_wire::StackBatch`]es in bounded
//! chunks), so the flame graph and the paths view add them up like profiler
//! stacks. Deltas, not the cumulative values: the app sums batches, so the
//! flame graph's totals are the map's growth while the probe was enabled
//! and the app watched, and a map the program resets or an entry it deletes
//! is never counted twice.
//!
//! The maps are the pack's: the helper neither deletes counts nor frees
//! stacks (the program may still use them). A full stack map makes the
//! program's `bpf_get_stackid` fail; such a stack shows as
//! [`crate::symbolize::LOST_STACK`].
//!
//! Bounds: at most [`MAX_ENTRIES`] keys read per drain (the rest counted
//! and logged), at most [`MAX_FRAMES`] frames per stack, and the memory of
//! the previous reading is that many keys.

use std::collections::HashMap;
use std::os::fd::AsFd as _;

use aya::maps::{MapData, MapError, StackTraceMap};
use microscope_catalogue::{FieldType, Role, StacksSpec, Unit};
use microscope_wire::ProbeKey;

use super::{decode, instance::merged_value, rawmap};
use crate::raw_stack::{CapturedStack, RawStack};

/// Most keys of one count map read per drain.
pub const MAX_ENTRIES: usize = 16 * 1024;
/// Most frames kept of one kernel or user stack.
pub const MAX_FRAMES: usize = 256;

/// An open `stacks` output.
pub struct StacksOutput {
    pub spec: StacksSpec,
    /// The count map's name, for messages.
    pub map_name: String,
    pub counts: MapData,
    pub stacks: StackTraceMap<MapData>,
    pub key_size: usize,
    pub value_size: usize,
    pub per_cpu: bool,
    /// Each key's value at the previous reading.
    previous: HashMap<Vec<u8>, u64>,
    /// Keys left unread at the last reading (over [`MAX_ENTRIES`]).
    pub truncated: u64,
}

impl StacksOutput {
    /// An output whose first reading counts from zero.
    pub fn new(
        spec: StacksSpec,
        map_name: String,
        counts: MapData,
        stacks: StackTraceMap<MapData>,
        per_cpu: bool,
    ) -> Self {
        let key_size = spec.key.size as usize;
        let value_size = if per_cpu {
            (spec.value.size as usize).div_ceil(8) * 8 * rawmap::possible_cpus()
        } else {
            spec.value.size as usize
        };
        Self {
            spec,
            map_name,
            counts,
            stacks,
            key_size,
            value_size,
            per_cpu,
            previous: HashMap::new(),
            truncated: 0,
        }
    }

    /// What each stack grew by since the last call, as probe `probe`.
    pub fn take(&mut self, probe: ProbeKey) -> Vec<RawStack> {
        let (entries, truncated) = match rawmap::entries(
            self.counts.fd().as_fd(),
            self.key_size,
            self.value_size,
            MAX_ENTRIES,
        ) {
            Ok(read) => read,
            Err(err) => {
                log::warn!("reading stack counts `{}` failed: {err}", self.map_name);
                return Vec::new();
            }
        };
        if truncated > 0 && self.truncated == 0 {
            log::warn!(
                "stack counts `{}` hold more than {MAX_ENTRIES} keys; {truncated} were not read",
                self.map_name
            );
        }
        self.truncated = truncated;
        // The command name may be in the value (offcputime keeps it there).
        let value_comm = self
            .spec
            .value
            .fields
            .iter()
            .find(|f| f.role == Some(Role::Comm));
        let mut comms: HashMap<Vec<u8>, String> = HashMap::new();
        let totals: Vec<(Vec<u8>, u64)> = entries
            .into_iter()
            .filter_map(|(key, value)| {
                let value = merged_value(&self.spec.value, &value, self.per_cpu);
                let total = field_u64(&self.spec.value, &self.spec.count, &value)?;
                if let Some(f) = value_comm {
                    comms.insert(key.clone(), comm_of(f, &value));
                }
                Some((key, total))
            })
            .collect();
        let grown = growth(&mut self.previous, totals, truncated == 0);
        let mut stacks = self.raw_stacks(probe, &grown);
        if value_comm.is_some() {
            for (stack, (key, _)) in stacks.iter_mut().zip(&grown) {
                if stack.comm.is_empty()
                    && let Some(comm) = comms.remove(key)
                {
                    stack.comm = comm;
                }
            }
        }
        stacks
    }

    /// The grown keys as stacks of addresses, each stack id read once.
    fn raw_stacks(&self, probe: ProbeKey, grown: &[(Vec<u8>, u64)]) -> Vec<RawStack> {
        let spec = &self.spec;
        let tgid_field = spec
            .key_role(Role::Tgid)
            .or_else(|| spec.key_role(Role::Pid));
        let comm_field = spec.key_role(Role::Comm);
        let mut cache: HashMap<i64, CapturedStack> = HashMap::new();
        let mut read = |id: Option<i64>| -> CapturedStack {
            match id {
                None => CapturedStack::Absent,
                Some(id) => cache
                    .entry(id)
                    .or_insert_with(|| read_stack(&self.stacks, id))
                    .clone(),
            }
        };
        let id_of = |field: &Option<String>, key: &[u8]| {
            field.as_ref().and_then(|f| field_i64(&spec.key, f, key))
        };
        grown
            .iter()
            .map(|(key, delta)| RawStack {
                probe,
                tgid: tgid_field
                    .and_then(|f| decode::int(key, f.offset, int_bytes(f.ty), false))
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(0),
                comm: comm_field.map_or_else(String::new, |f| comm_of(f, key)),
                kernel: read(id_of(&spec.kernel_stack, key)),
                user: read(id_of(&spec.user_stack, key)),
                value: to_value(*delta, spec.unit),
                leaf_is_ip: false,
            })
            .collect()
    }
}

/// What each key's total grew by since `previous`, which becomes `totals`.
/// A key whose total shrank was deleted and created again by the program:
/// all of its new total is growth. Keys that did not grow are left out.
/// When the reading was cut short (`complete` false), the keys it did not
/// reach keep their previous totals (up to twice [`MAX_ENTRIES`] keys in
/// all), so that reaching them later does not count their whole past again.
fn growth(
    previous: &mut HashMap<Vec<u8>, u64>,
    totals: Vec<(Vec<u8>, u64)>,
    complete: bool,
) -> Vec<(Vec<u8>, u64)> {
    let mut now = HashMap::with_capacity(totals.len());
    let mut grown = Vec::new();
    for (key, total) in totals {
        let before = previous.get(&key).copied().unwrap_or(0);
        let delta = total.checked_sub(before).unwrap_or(total);
        if delta > 0 {
            grown.push((key.clone(), delta));
        }
        now.insert(key, total);
    }
    if !complete {
        for (key, total) in previous.drain() {
            if now.len() >= 2 * MAX_ENTRIES {
                break;
            }
            now.entry(key).or_insert(total);
        }
    }
    *previous = now;
    grown
}

/// A count as is; a time sum in nanoseconds, the flame graph's time unit.
fn to_value(delta: u64, unit: Unit) -> u64 {
    let ns_per_unit: u64 = match unit {
        Unit::Us => 1_000,
        Unit::Ms => 1_000_000,
        Unit::S => 1_000_000_000,
        _ => 1,
    };
    delta.saturating_mul(ns_per_unit)
}

fn int_bytes(ty: FieldType) -> u8 {
    match ty {
        FieldType::Int { bytes, .. } => bytes,
        _ => 0,
    }
}

fn field_i64(layout: &microscope_catalogue::Layout, name: &str, bytes: &[u8]) -> Option<i64> {
    let f = layout.field(name)?;
    match f.ty {
        FieldType::Int { bytes: size, .. } => {
            // Stack ids are signed whatever the manifest says: a negative
            // id is `bpf_get_stackid`'s error.
            let v = decode::int(bytes, f.offset, size, true)?;
            Some(if size == 4 { i64::from(v as i32) } else { v })
        }
        _ => None,
    }
}

fn field_u64(layout: &microscope_catalogue::Layout, name: &str, bytes: &[u8]) -> Option<u64> {
    let f = layout.field(name)?;
    match f.ty {
        FieldType::Int {
            bytes: size,
            signed,
        } => {
            let v = decode::int(bytes, f.offset, size, signed)?;
            // A negative count is a bug of the program's; count nothing.
            Some(if signed { v.max(0) as u64 } else { v as u64 })
        }
        _ => None,
    }
}

fn comm_of(field: &microscope_catalogue::FieldSpec, key: &[u8]) -> String {
    let FieldType::Chars(n) = field.ty else {
        return String::new();
    };
    let start = field.offset as usize;
    let bytes = key.get(start..start + n as usize).unwrap_or_default();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// Stack `id` of `stacks`: absent for "not captured" (`-EFAULT`, `-1`),
/// lost for other errors and ids no longer in the map.
fn read_stack(stacks: &StackTraceMap<MapData>, id: i64) -> CapturedStack {
    if id == -14 || id == -1 {
        return CapturedStack::Absent;
    }
    let Ok(id) = u32::try_from(id) else {
        return CapturedStack::Lost;
    };
    match stacks.get(&id, 0) {
        Ok(trace) => CapturedStack::from_frames(
            trace
                .frames()
                .iter()
                .take(MAX_FRAMES)
                .map(|f| f.ip)
                .collect(),
        ),
        Err(MapError::KeyNotFound) => CapturedStack::Lost,
        Err(err) => {
            log::warn!("reading stack {id} failed: {err}");
            CapturedStack::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growth_is_counted_and_a_recreated_key_counts_afresh() {
        let mut previous = HashMap::new();
        let k = |b: u8| vec![b];
        assert_eq!(
            growth(&mut previous, vec![(k(1), 5), (k(2), 0)], true),
            [(k(1), 5)]
        );
        assert_eq!(
            growth(&mut previous, vec![(k(1), 5), (k(2), 3)], true),
            [(k(2), 3)]
        );
        // Key 1 deleted and created again with 2; key 2 gone.
        assert_eq!(growth(&mut previous, vec![(k(1), 2)], true), [(k(1), 2)]);
        assert_eq!(previous.len(), 1);
        assert!(growth(&mut previous, Vec::new(), true).is_empty());
        assert!(previous.is_empty());
        // A reading cut short keeps the totals of the keys it missed.
        growth(&mut previous, vec![(k(1), 4), (k(2), 6)], true);
        assert!(growth(&mut previous, vec![(k(1), 4)], false).is_empty());
        assert_eq!(
            growth(&mut previous, vec![(k(1), 4), (k(2), 7)], true),
            [(k(2), 1)]
        );
    }

    #[test]
    fn time_sums_become_nanoseconds_and_counts_stay() {
        assert_eq!(to_value(7, Unit::Count), 7);
        assert_eq!(to_value(7, Unit::Ns), 7);
        assert_eq!(to_value(7, Unit::Us), 7_000);
        assert_eq!(to_value(3, Unit::S), 3_000_000_000);
        assert_eq!(to_value(u64::MAX, Unit::Ms), u64::MAX);
    }

    #[test]
    fn stack_ids_are_signed_whatever_the_manifest_says() {
        let layout = microscope_catalogue::Layout {
            fields: vec![microscope_catalogue::FieldSpec {
                name: "kstack".into(),
                ty: FieldType::Int {
                    bytes: 4,
                    signed: false,
                },
                offset: 0,
                decode: microscope_catalogue::Decode::Plain,
                role: None,
                meaning: String::new(),
            }],
            size: 4,
        };
        assert_eq!(
            field_i64(&layout, "kstack", &(-14i32).to_le_bytes()),
            Some(-14)
        );
        assert_eq!(field_i64(&layout, "kstack", &7u32.to_le_bytes()), Some(7));
        assert_eq!(field_i64(&layout, "kstack", &[1, 2]), None);
    }
}
