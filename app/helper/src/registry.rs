//! Every probe this helper knows, by wire key: the built-in ones with their
//! own programs, and those created when a client first asks for them (any
//! tracepoint of the running kernel).
//!
//! A probe id says where its data comes from:
//!
//! | id | source |
//! |---|---|
//! | an id of [`catalogue::PROBES`] | a dedicated program of Microscope's object |
//! | `category:name` | any tracepoint, through the generic program |
//!
//! Keys are handed out in registration order and never reused while the
//! helper runs, so a client (or a recording) can keep them.

use crate::catalogue::PROBES;
use crate::generic;
use crate::tracefs::{self, Format};
use crate::tracer::Tracer;
use microscope_wire::{Availability, ProbeInfo, ProbeKind, ProbeOptions};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a probe's data comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A dedicated program of Microscope's object: [`catalogue::PROBES`]
    /// entry, whose index is also the probe's key.
    Builtin,
    /// Any tracepoint, decoded from its format file.
    Tracepoint {
        /// Its parsed format (whose `id` is `category:name`).
        format: Arc<Format>,
    },
}

/// One registered probe.
#[derive(Clone, Debug)]
pub struct Registered {
    /// What clients see (with `enabled` false; set per client when listing).
    pub info: ProbeInfo,
    /// Where its data comes from.
    pub source: Source,
    /// How it collects.
    pub options: ProbeOptions,
}

/// The helper's probes.
pub struct Registry {
    probes: Vec<Registered>,
    by_id: HashMap<String, u16>,
    tracefs: Option<PathBuf>,
}

impl Registry {
    /// The built-in probes, with their availability on this kernel.
    pub fn new(tracer: &Tracer, tracefs: Option<PathBuf>) -> Self {
        let mut registry = Self {
            probes: Vec::new(),
            by_id: HashMap::new(),
            tracefs,
        };
        for (i, p) in PROBES.iter().enumerate() {
            let key = i as u16;
            registry.push(Registered {
                info: ProbeInfo {
                    id: p.id.to_owned(),
                    key,
                    subsystem: p.subsystem.to_owned(),
                    description: p.description.to_owned(),
                    kind: p.kind,
                    availability: tracer.availability(key),
                    enabled: false,
                    fields: Vec::new(),
                },
                source: Source::Builtin,
                options: ProbeOptions::default(),
            });
        }
        registry
    }

    fn push(&mut self, probe: Registered) -> u16 {
        let key = self.probes.len() as u16;
        self.by_id.insert(probe.info.id.clone(), key);
        self.probes.push(Registered {
            info: ProbeInfo { key, ..probe.info },
            ..probe
        });
        key
    }

    /// The probe with wire key `key`.
    pub fn get(&self, key: u16) -> Option<&Registered> {
        self.probes.get(usize::from(key))
    }

    /// The key of a registered probe.
    pub fn key_of(&self, id: &str) -> Option<u16> {
        self.by_id.get(id).copied()
    }

    /// The key of probe `id`, registering it first if it is a tracepoint
    /// this kernel has. Returns the key and, when it was just registered,
    /// its description for clients. An error is a sentence for the user.
    pub fn resolve(&mut self, id: &str) -> Result<(u16, Option<ProbeInfo>), String> {
        if let Some(key) = self.key_of(id) {
            return Ok((key, None));
        }
        let Some((category, name)) = id.split_once(':') else {
            return Err(unknown(id));
        };
        let Some(tracefs) = &self.tracefs else {
            return Err(format!(
                "cannot look up tracepoint {id}: tracefs is not mounted; \
                 run `sudo mount -t tracefs nodev /sys/kernel/tracing` and restart the helper"
            ));
        };
        let format = Arc::new(tracefs::read_full_format(tracefs, category, name)?);
        let info = ProbeInfo {
            id: id.to_owned(),
            key: 0,
            subsystem: subsystem_of_category(category).to_owned(),
            description: format!("Tracepoint {id}: every hit, with all its fields."),
            kind: ProbeKind::Fields,
            availability: Availability::yes(format!(
                "tracepoint {id} (id {}) exists on this kernel",
                format.event_id
            )),
            enabled: false,
            fields: generic::field_infos(&format, |_| None),
        };
        let key = self.push(Registered {
            info,
            source: Source::Tracepoint { format },
            options: ProbeOptions::default(),
        });
        let info = self.probes[usize::from(key)].info.clone();
        log::info!("registered tracepoint {id} as probe {key}");
        Ok((key, Some(info)))
    }

    /// Changes how probe `key` collects.
    pub fn set_options(&mut self, key: u16, options: ProbeOptions) {
        if let Some(probe) = self.probes.get_mut(usize::from(key)) {
            probe.options = options;
        }
    }

    /// Every probe as a client with `enabled` probes sees it.
    pub fn list(&self, enabled: &BTreeSet<u16>) -> Vec<ProbeInfo> {
        self.probes
            .iter()
            .map(|p| ProbeInfo {
                enabled: enabled.contains(&p.info.key),
                ..p.info.clone()
            })
            .collect()
    }
}

fn unknown(id: &str) -> String {
    format!(
        "unknown probe `{id}`; `microscope probes` lists the probes this helper offers, \
         and any tracepoint can be named as `category:name`"
    )
}

/// The subsystem a tracepoint category belongs to, for grouping in the app.
pub fn subsystem_of_category(category: &str) -> &'static str {
    match category {
        "sched" | "task" => "Scheduler",
        "syscalls" | "raw_syscalls" => "System calls",
        "block" | "iocost" | "bfq" => "Block I/O",
        "ext4" | "jbd2" | "xfs" | "btrfs" | "f2fs" => "File systems",
        "filemap" | "writeback" => "Page cache and writeback",
        "kmem" | "vmscan" | "compaction" | "oom" | "mmap" | "exceptions" | "huge_memory"
        | "migrate" | "percpu" | "cma" => "Memory",
        "sock" | "tcp" | "udp" | "skb" | "net" | "napi" | "qdisc" | "neigh" | "fib" | "fib6"
        | "inet_sock" => "Network",
        "irq" | "timer" | "hrtimer" | "irq_vectors" | "workqueue" => "Interrupts and timers",
        "lock" | "rcu" => "Locking",
        "signal" | "cgroup" => "Process lifecycle",
        _ => "Other tracepoints",
    }
}
