//! Synthetic stack samples shaped like a kernel's, for benchmarks and tests
//! of the flame graph and paths views (deterministic for a given seed).

use crate::stacks::StackStore;
use std::collections::HashSet;

/// Mean time between two synthetic samples: 100k unique stacks make about
/// 240k samples, ten seconds' worth.
const SAMPLE_GAP_NS: u64 = 40_000;
/// Function-name parts of the synthetic stacks.
const PREFIXES: [&str; 20] = [
    "vfs",
    "ext4",
    "do",
    "sys",
    "__x64_sys",
    "tcp",
    "ip",
    "sock",
    "page",
    "mem",
    "sched",
    "irq",
    "blk",
    "bio",
    "filemap",
    "kmem_cache",
    "copy",
    "fsnotify",
    "security",
    "rcu",
];
const SUFFIXES: [&str; 20] = [
    "read", "write", "open", "alloc", "free", "lookup", "submit", "wait", "wake", "poll", "fault",
    "flush", "map", "unmap", "lock", "unlock", "enqueue", "dequeue", "send", "recv",
];
const ROOTS: [&str; 4] = [
    "entry_SYSCALL_64",
    "ret_from_fork",
    "asm_sysvec_apic_timer_interrupt",
    "cpu_startup_entry",
];
const PROCESSES: [&str; 16] = [
    "postgres",
    "nginx",
    "java",
    "python3",
    "cc1",
    "ld",
    "bash",
    "sshd",
    "systemd",
    "kworker/0:1",
    "node",
    "rustc",
    "dd",
    "tar",
    "chrome",
    "Xorg",
];

/// In `0..n`, skewed towards 0 (popular paths are shared by many stacks).
fn skewed(rng: &mut fastrand::Rng, n: u64) -> u64 {
    (rng.f64().powi(5) * n as f64) as u64
}

/// A hash of a node of the synthetic call tree and one of its children.
fn mix(parent: u64, child: u64) -> u64 {
    let mut x = parent ^ child.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// A store of `unique_stacks` unique stacks, 10 to 40 frames deep, that
/// share prefixes like a kernel's: they walk down a fixed random call tree
/// (fan-out 1 near the entry points, growing with depth to 10; popular
/// callees chosen far more often) from one of four entry points, in one of
/// sixteen processes. About two samples per stack, in time order, 40 µs
/// apart on average.
/// 100k such stacks make a flame graph of about 800k frames.
pub fn synthetic_store(unique_stacks: usize, seed: u64) -> StackStore {
    let mut store = StackStore::new();
    store.set_max_samples(usize::MAX);
    let names: Vec<String> = ROOTS
        .iter()
        .map(|root| (*root).to_owned())
        .chain(PREFIXES.iter().flat_map(|prefix| {
            SUFFIXES.iter().flat_map(move |suffix| {
                (0..10).map(move |variant| match variant {
                    0 => format!("{prefix}_{suffix}"),
                    _ => format!("__{prefix}_{suffix}_{variant}"),
                })
            })
        }))
        .collect();
    for (id, name) in (0u32..).zip(&names) {
        store.intern_frame(id, name.clone(), false);
    }
    let roots = ROOTS.len() as u64;
    let pool = names.len() as u64 - roots;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seen: HashSet<(u32, Vec<u32>)> = HashSet::with_capacity(unique_stacks);
    let mut frames = Vec::with_capacity(40);
    let mut attempts = 0usize;
    let mut t_ns = 0;
    while seen.len() < unique_stacks && attempts < unique_stacks.saturating_mul(50) {
        attempts += 1;
        let depth = 10 + rng.u64(..31) as usize;
        let root = skewed(&mut rng, roots);
        let mut node = mix(seed, root);
        frames.clear();
        frames.push(root as u32);
        while frames.len() < depth {
            // Few alternatives near the entry points (entry → do_syscall_64
            // → x64_sys_call), more deeper down.
            let fan_out = 1 + node % (1 + frames.len() as u64 / 4);
            let child = skewed(&mut rng, fan_out);
            node = mix(node, child);
            frames.push((roots + node % pool) as u32);
        }
        let process = skewed(&mut rng, PROCESSES.len() as u64) as usize;
        let tgid = 1000 + process as u32;
        let comm = PROCESSES.get(process).copied().unwrap_or("task");
        // Seen before: one more sample of it; new: one to three.
        let samples = if seen.insert((tgid, frames.clone())) {
            1 + rng.u64(..3)
        } else {
            1
        };
        for _ in 0..samples {
            // Samples arrive in time order, 40 µs apart on average.
            t_ns += 1 + rng.u64(..SAMPLE_GAP_NS * 2);
            store.add(t_ns, 1, tgid, comm, &frames, 1 + rng.u64(..5));
        }
    }
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_stacks_are_unique_deep_and_deterministic() {
        let store = synthetic_store(500, 7);
        assert_eq!(store.unique_stacks(), 500);
        assert!(store.len() >= 500);
        let depths: Vec<usize> = (0..store.unique_stacks())
            .filter_map(|i| {
                let id = store
                    .samples()
                    .iter()
                    .map(|s| s.stack)
                    .find(|s| s.index() == i)?;
                store.stack(id).map(|s| s.frames.len())
            })
            .collect();
        assert!(depths.iter().all(|d| (10..=40).contains(d)));
        assert_eq!(synthetic_store(500, 7).samples(), store.samples());
    }
}
