//! Which process filter slot each client uses.
//!
//! The kernel applies up to [`FILTER_SLOTS`] process filters at once
//! ([`FilterTable`]) and counts its aggregates (syscall counts, the syscall
//! latency histogram, function calls and latencies) once per slot, so each
//! client reads exactly what its own filter keeps. Each distinct filter of
//! the connected clients takes a slot: clients with equal filters share
//! one, "no filter" is a filter like the others, and a slot is freed when
//! its last client leaves or changes its filter. The next distinct filter
//! when every slot is taken is refused with a sentence; the client keeps
//! its previous one.
//!
//! A freed slot is taken again as late as possible (the search for a free
//! slot goes round the table), and its counters are cleared before it is
//! given a new filter ([`Assigned::fresh`]), so a client never reads counts
//! of another client's filter. Clearing costs the hub a few hundred to a
//! few thousand map writes (more with many function probes attached), so
//! at most [`MAX_FRESH_PER_SECOND`] new filters a second are taken, by all
//! clients together; past that a client is told to try again, and a
//! hostile one cannot stall the hub by changing its filter in a loop.

use microscope_wire::ProcessFilter;
use probes_common::{FILTER_SLOTS, FilterTable, ProcessFilterConfig};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// New filters (slots cleared and given a filter) allowed per second, for
/// all clients together.
pub const MAX_FRESH_PER_SECOND: usize = 20;

/// One slot in use.
#[derive(Clone, Debug)]
struct Slot {
    filter: ProcessFilter,
    config: ProcessFilterConfig,
    /// Clients using it (at least one).
    users: usize,
}

/// A client's place after [`FilterSlots::assign`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// Its slot.
    pub slot: usize,
    /// The slot was free and now has this filter: clear its counters before
    /// writing the table.
    pub fresh: bool,
}

/// The slots and the clients using them. Pure bookkeeping: the caller writes
/// [`FilterSlots::table`] into the kernel.
#[derive(Debug)]
pub struct FilterSlots {
    slots: Vec<Option<Slot>>,
    clients: HashMap<u64, usize>,
    /// Where the search for a free slot starts.
    next: usize,
    /// When the last [`MAX_FRESH_PER_SECOND`] new filters were taken.
    recent_fresh: VecDeque<Instant>,
}

impl Default for FilterSlots {
    fn default() -> Self {
        Self {
            slots: vec![None; FILTER_SLOTS as usize],
            clients: HashMap::new(),
            next: 0,
            recent_fresh: VecDeque::new(),
        }
    }
}

impl FilterSlots {
    /// Gives `client` the slot of `filter` (`config` is its kernel form),
    /// sharing one that holds an equal filter, else a free one. The client's
    /// previous slot is released; if no slot is left, the client keeps it
    /// and the error is a sentence for it.
    pub fn assign(
        &mut self,
        client: u64,
        filter: &ProcessFilter,
        config: ProcessFilterConfig,
        now: Instant,
    ) -> Result<Assigned, String> {
        let previous = self.clients.get(&client).copied();
        if let Some(slot) = previous
            && self.slots[slot]
                .as_ref()
                .is_some_and(|s| s.filter == *filter)
        {
            return Ok(Assigned { slot, fresh: false });
        }
        if let Some(slot) = self.slot_of_filter(filter) {
            self.release(client);
            self.use_slot(client, slot);
            return Ok(Assigned { slot, fresh: false });
        }
        // The client's own slot is free for the taking if it is its only user.
        let own_alone = previous.filter(|&slot| self.users(slot) == 1);
        let Some(slot) = self.free_slot().or(own_alone) else {
            return Err(format!(
                "the helper cannot apply the process filter {filter}: its clients already use \
                 {FILTER_SLOTS} different process filters, the most the kernel applies at once \
                 (each keeps its own counts). Use a filter another client uses, or try again \
                 when one of them has left or changed its filter; your previous filter stays"
            ));
        };
        if self.recent_fresh.len() >= MAX_FRESH_PER_SECOND
            && self
                .recent_fresh
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) < Duration::from_secs(1))
        {
            return Err(format!(
                "the helper's clients took {MAX_FRESH_PER_SECOND} new process filters within the \
                 last second, the most it allows (each one clears counters in the kernel); set \
                 the filter {filter} again in a moment; your previous filter stays"
            ));
        }
        if self.recent_fresh.len() >= MAX_FRESH_PER_SECOND {
            self.recent_fresh.pop_front();
        }
        self.recent_fresh.push_back(now);
        self.release(client);
        self.slots[slot] = Some(Slot {
            filter: filter.clone(),
            config,
            users: 0,
        });
        self.use_slot(client, slot);
        self.next = (slot + 1) % self.slots.len();
        Ok(Assigned { slot, fresh: true })
    }

    /// Releases `client`'s slot; whether the slot is now free (the table
    /// changed).
    pub fn release(&mut self, client: u64) -> bool {
        let Some(slot) = self.clients.remove(&client) else {
            return false;
        };
        let Some(entry) = self.slots[slot].as_mut() else {
            return false;
        };
        entry.users -= 1;
        if entry.users == 0 {
            self.slots[slot] = None;
            return true;
        }
        false
    }

    /// The slot `client` uses, if it has one.
    pub fn slot_of(&self, client: u64) -> Option<usize> {
        self.clients.get(&client).copied()
    }

    /// The table to write into the kernel.
    pub fn table(&self) -> FilterTable {
        let mut table = FilterTable::default();
        for (i, slot) in self.slots.iter().enumerate() {
            table.set(i, slot.as_ref().map(|s| s.config));
        }
        table
    }

    /// Slots in use.
    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    fn slot_of_filter(&self, filter: &ProcessFilter) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.filter == *filter))
    }

    fn users(&self, slot: usize) -> usize {
        self.slots[slot].as_ref().map_or(0, |s| s.users)
    }

    /// The first free slot from `next` on, going round.
    fn free_slot(&self) -> Option<usize> {
        let n = self.slots.len();
        (0..n)
            .map(|i| (self.next + i) % n)
            .find(|&slot| self.slots[slot].is_none())
    }

    fn use_slot(&mut self, client: u64, slot: usize) {
        if let Some(entry) = self.slots[slot].as_mut() {
            entry.users += 1;
            self.clients.insert(client, slot);
        }
    }
}

/// Zeroes entries `indices` of a per-CPU counter map on every CPU: the
/// counters of a slot about to get a new filter. An error is a sentence.
pub fn clear_per_cpu(
    map: &mut aya::maps::PerCpuArray<aya::maps::MapData, u64>,
    indices: std::ops::Range<u32>,
) -> Result<(), String> {
    let cpus = aya::util::nr_cpus()
        .map_err(|(what, err)| format!("could not count the CPUs ({what}: {err})"))?;
    for index in indices {
        let zeros = aya::maps::PerCpuValues::try_from(vec![0u64; cpus])
            .map_err(|err| format!("could not clear a filter slot's counters: {err}"))?;
        map.set(index, zeros, 0)
            .map_err(|err| format!("could not clear a filter slot's counters: {err}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes_common::FILTER_PID;

    fn pid(p: u32) -> (ProcessFilter, ProcessFilterConfig) {
        (
            ProcessFilter {
                pid: Some(p),
                ..ProcessFilter::default()
            },
            ProcessFilterConfig {
                flags: FILTER_PID,
                tgid: p,
                ..ProcessFilterConfig::default()
            },
        )
    }

    fn none() -> (ProcessFilter, ProcessFilterConfig) {
        (ProcessFilter::default(), ProcessFilterConfig::default())
    }

    fn assign(
        slots: &mut FilterSlots,
        client: u64,
        f: (ProcessFilter, ProcessFilterConfig),
    ) -> Result<Assigned, String> {
        // A second apart: never held back by the rate of new filters.
        let now = slots
            .recent_fresh
            .back()
            .map_or_else(Instant::now, |t| *t + Duration::from_secs(1));
        slots.assign(client, &f.0, f.1, now)
    }

    #[test]
    fn equal_filters_share_a_slot_and_no_filter_is_one_too() {
        let mut slots = FilterSlots::default();
        assert_eq!(
            assign(&mut slots, 1, none()),
            Ok(Assigned {
                slot: 0,
                fresh: true
            })
        );
        assert_eq!(
            assign(&mut slots, 2, none()),
            Ok(Assigned {
                slot: 0,
                fresh: false
            })
        );
        assert_eq!(
            assign(&mut slots, 3, pid(7)),
            Ok(Assigned {
                slot: 1,
                fresh: true
            })
        );
        assert_eq!(
            assign(&mut slots, 4, pid(7)),
            Ok(Assigned {
                slot: 1,
                fresh: false
            })
        );
        // Setting the same filter again changes nothing.
        assert_eq!(
            assign(&mut slots, 4, pid(7)),
            Ok(Assigned {
                slot: 1,
                fresh: false
            })
        );
        assert_eq!(slots.in_use(), 2);
        let table = slots.table();
        assert_eq!(
            (table.active, table.keep_all, table.flags),
            (0b11, 0b01, FILTER_PID)
        );
        assert_eq!(table.slots[1].tgid, 7);
        assert_eq!(slots.slot_of(3), Some(1));
        assert_eq!(slots.slot_of(99), None);
    }

    #[test]
    fn a_slot_is_released_when_its_last_client_leaves_or_changes() {
        let mut slots = FilterSlots::default();
        assign(&mut slots, 1, pid(7)).unwrap();
        assign(&mut slots, 2, pid(7)).unwrap();
        assert!(!slots.release(1), "client 2 still uses it");
        assert_eq!(slots.table().active, 0b1);
        // Client 2 changes its filter: a fresh slot (not the one just
        // freed, which would be taken last), and slot 0 is free.
        assert_eq!(
            assign(&mut slots, 2, pid(8)),
            Ok(Assigned {
                slot: 1,
                fresh: true
            })
        );
        assert_eq!(slots.table().active, 0b10);
        assert!(slots.release(2));
        assert_eq!(slots.table(), FilterTable::default());
        assert!(!slots.release(2), "released twice");
        assert_eq!(slots.in_use(), 0);
        // The search goes round: slot 2 next, not slot 0 again.
        assert_eq!(assign(&mut slots, 3, none()).unwrap().slot, 2);
    }

    #[test]
    fn the_ninth_distinct_filter_is_refused_and_the_old_one_stays() {
        let mut slots = FilterSlots::default();
        for client in 0..u64::from(FILTER_SLOTS) {
            assign(&mut slots, client, pid(100 + client as u32)).unwrap();
        }
        assert_eq!(slots.table().active, 0xff);
        // A new client: refused, with a sentence, and holds no slot.
        let err = assign(&mut slots, 50, none()).unwrap_err();
        assert!(err.contains("8 different process filters"), "{err}");
        assert!(err.contains("Use a filter another client uses"), "{err}");
        assert_eq!(slots.slot_of(50), None);
        // But it may share one that exists.
        assert_eq!(assign(&mut slots, 50, pid(103)).unwrap().slot, 3);
        // Client 3 shares its slot now: it cannot take a ninth filter, and
        // keeps its own.
        let err = assign(&mut slots, 3, pid(999)).unwrap_err();
        assert!(err.contains("your previous filter stays"), "{err}");
        assert_eq!(slots.slot_of(3), Some(3));
        assert_eq!(slots.table().slots[3].tgid, 103);
        // Client 0 is alone in its slot: it may change its filter in place.
        assert_eq!(
            assign(&mut slots, 0, pid(999)),
            Ok(Assigned {
                slot: 0,
                fresh: true
            })
        );
        assert_eq!(slots.table().slots[0].tgid, 999);
        // When a client leaves, the next distinct filter fits.
        assert!(slots.release(5));
        assert_eq!(
            assign(&mut slots, 60, none()),
            Ok(Assigned {
                slot: 5,
                fresh: true
            })
        );
    }

    #[test]
    fn new_filters_are_limited_per_second_for_everyone() {
        let mut slots = FilterSlots::default();
        let start = Instant::now();
        // One client switching between new filters as fast as it can.
        for i in 0..MAX_FRESH_PER_SECOND as u32 {
            assert!(slots.assign(1, &pid(i).0, pid(i).1, start).unwrap().fresh);
        }
        let err = slots.assign(1, &pid(999).0, pid(999).1, start).unwrap_err();
        assert!(err.contains("again in a moment"), "{err}");
        let last = MAX_FRESH_PER_SECOND as u32 - 1;
        assert_eq!(slots.table().slots[slots.slot_of(1).unwrap()].tgid, last);
        // Sharing an existing filter needs no clearing: still allowed.
        let shared = slots.assign(2, &pid(last).0, pid(last).1, start).unwrap();
        assert!(!shared.fresh);
        // Still within the second: refused; a second after them: taken.
        let almost = start + Duration::from_millis(999);
        assert!(slots.assign(3, &pid(999).0, pid(999).1, almost).is_err());
        let later = start + Duration::from_secs(1);
        assert!(
            slots
                .assign(3, &pid(999).0, pid(999).1, later)
                .unwrap()
                .fresh
        );
    }
}
