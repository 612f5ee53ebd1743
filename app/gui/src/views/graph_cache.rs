//! A graph built from the stack store, rebuilt only when what it depends on
//! changes, and off the UI thread when it is large.
//!
//! Building a flame graph of 100k unique stacks takes far longer than a
//! frame, so a large build runs on a worker thread while the view keeps
//! drawing the previous graph; the worker wakes the UI when it is done.
//! What the worker needs is copied first (a [`StackSlice`](crate::StackSlice):
//! the selected stacks and their values, with the frame names shared), so
//! it never touches the model. Small builds happen at once, which keeps a
//! small live graph in step with every batch and tests deterministic.

use crossbeam_channel::{Receiver, TryRecvError, bounded};
use std::time::{Duration, Instant};

/// Slices of more unique stacks than this are built on a worker thread.
pub(crate) const INLINE_BUILD_MAX_STACKS: usize = 5_000;
/// A live graph is rebuilt at most once per this many build times, so
/// rebuilding uses at most about 1/20 of a core however large the graph is
/// (small graphs follow every batch).
const LIVE_REBUILD_FACTOR: u32 = 20;
/// …and at least every this long.
const MAX_LIVE_REBUILD_INTERVAL: Duration = Duration::from_secs(2);

/// The work of one build, and whether it is small enough to do at once.
pub(crate) struct BuildJob<T> {
    /// Build on the UI thread rather than a worker.
    pub(crate) inline: bool,
    /// The build; owns everything it reads.
    pub(crate) run: Box<dyn FnOnce() -> T + Send>,
}

/// See the module documentation. `S` is what the user chose (a change
/// rebuilds at once, even while frozen), `Q` the resolved queries (which
/// move with new data, like the store's generation).
pub(crate) struct GraphCache<S, Q, T> {
    entry: Option<CacheEntry<S, Q, T>>,
    pending: Option<PendingBuild<S, Q, T>>,
    builds: u64,
    /// Worker threads could not be started: build inline from then on.
    no_workers: bool,
}

struct CacheEntry<S, Q, T> {
    inputs: Inputs<S, Q>,
    value: T,
    built_at: Instant,
    build_time: Duration,
}

struct PendingBuild<S, Q, T> {
    inputs: Inputs<S, Q>,
    result: Receiver<(T, Duration)>,
}

struct Inputs<S, Q> {
    settings: S,
    generation: u64,
    queries: Q,
}

impl<S, Q, T> Default for GraphCache<S, Q, T> {
    fn default() -> Self {
        Self {
            entry: None,
            pending: None,
            builds: 0,
            no_workers: false,
        }
    }
}

impl<S: PartialEq, Q: PartialEq, T: Send + 'static> GraphCache<S, Q, T> {
    /// The graph, once built.
    pub(crate) fn get(&self) -> Option<&T> {
        self.entry.as_ref().map(|entry| &entry.value)
    }

    /// Counts finished builds: caches of things derived from the graph
    /// (search, layout) compare it to know when to recompute.
    pub(crate) fn builds(&self) -> u64 {
        self.builds
    }

    /// How long the last build took.
    pub(crate) fn build_time(&self) -> Option<Duration> {
        self.entry.as_ref().map(|entry| entry.build_time)
    }

    /// Whether a worker is building a newer graph.
    pub(crate) fn is_building(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes a finished build, then starts a new one if needed: when the
    /// settings changed (at once), or when the data (store generation,
    /// resolved queries) changed while live (at most once per
    /// [`LIVE_REBUILD_FACTOR`] build times; a repaint is asked for when the
    /// wait is over). A frozen graph ignores new data; a new store (its
    /// generation went back) always rebuilds. `now` is the frame's time;
    /// `prepare` copies what the build needs. Returns whether the graph
    /// changed.
    #[expect(
        clippy::too_many_arguments,
        reason = "each input is a separate reason to rebuild; a struct would only rename them"
    )]
    pub(crate) fn refresh(
        &mut self,
        settings: S,
        generation: u64,
        queries: Q,
        live: bool,
        now: Instant,
        ctx: &egui::Context,
        prepare: impl FnOnce() -> BuildJob<T>,
    ) -> bool {
        let finished = self.collect_finished(now);
        if self.pending.is_some() {
            // One build at a time; the worker wakes the UI when it is done.
            return finished;
        }
        if let Some(entry) = &self.entry
            && entry.inputs.settings == settings
            && generation >= entry.inputs.generation
        {
            if entry.inputs.generation == generation && entry.inputs.queries == queries {
                return finished;
            }
            if !live {
                return finished;
            }
            let interval = (entry.build_time * LIVE_REBUILD_FACTOR).min(MAX_LIVE_REBUILD_INTERVAL);
            let elapsed = now.saturating_duration_since(entry.built_at);
            if elapsed < interval {
                ctx.request_repaint_after(interval - elapsed);
                return finished;
            }
        }
        let inputs = Inputs {
            settings,
            generation,
            queries,
        };
        let job = prepare();
        if job.inline || self.no_workers {
            // The build takes what it takes on the real clock; the next
            // rebuild is timed from this frame's `now`, like everything else
            // the frame decides.
            let started = Instant::now();
            let value = (job.run)();
            self.store(inputs, value, started.elapsed(), now);
            return true;
        }
        let (sender, result) = bounded(1);
        let waker = ctx.clone();
        let run = job.run;
        let spawned = std::thread::Builder::new()
            .name("microscope-graph-build".to_owned())
            .spawn(move || {
                let started = Instant::now();
                let value = run();
                // The view may be gone; then nobody wants the graph.
                let _ = sender.send((value, started.elapsed()));
                waker.request_repaint();
            });
        match spawned {
            Ok(_detached) => self.pending = Some(PendingBuild { inputs, result }),
            Err(err) => {
                log::warn!(
                    "could not start a thread to build a graph ({err}); building on the UI thread from now on"
                );
                self.no_workers = true;
                ctx.request_repaint();
            }
        }
        finished
    }

    /// Takes the result of a finished worker, if any.
    fn collect_finished(&mut self, now: Instant) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        match pending.result.try_recv() {
            Ok((value, build_time)) => {
                if let Some(pending) = self.pending.take() {
                    self.store(pending.inputs, value, build_time, now);
                }
                true
            }
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => {
                log::warn!("a graph build stopped without a result; trying again");
                self.pending = None;
                false
            }
        }
    }

    fn store(&mut self, inputs: Inputs<S, Q>, value: T, build_time: Duration, now: Instant) {
        self.entry = Some(CacheEntry {
            inputs,
            value,
            built_at: now,
            build_time,
        });
        self.builds += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(value: u32) -> impl FnOnce() -> BuildJob<u32> {
        move || BuildJob {
            inline: true,
            run: Box::new(move || value),
        }
    }

    #[test]
    fn rebuilds_on_settings_and_ignores_data_while_frozen() {
        let ctx = egui::Context::default();
        let mut cache: GraphCache<u8, u64, u32> = GraphCache::default();
        // Frame times are given, not read: `t0`, and a frame well past any
        // rebuild interval.
        let t0 = Instant::now();
        let later = t0 + MAX_LIVE_REBUILD_INTERVAL;
        assert!(cache.refresh(1, 0, 0, true, t0, &ctx, inline(1)));
        assert!(!cache.refresh(1, 0, 0, true, t0, &ctx, inline(2)));
        assert_eq!(cache.get(), Some(&1));

        // New data, live, in the same frame as a build that took 5 ms:
        // waits for 20 build times, then rebuilds.
        let slow = || BuildJob {
            inline: true,
            run: Box::new(|| {
                std::thread::sleep(Duration::from_millis(5));
                3
            }),
        };
        assert!(cache.refresh(2, 0, 0, true, t0, &ctx, slow));
        assert!(cache.build_time() >= Some(Duration::from_millis(5)));
        assert!(!cache.refresh(2, 1, 0, true, t0, &ctx, inline(4)));
        assert_eq!(cache.get(), Some(&3));
        assert!(cache.refresh(2, 1, 0, true, later, &ctx, inline(4)));
        assert_eq!(cache.get(), Some(&4));

        // New data, frozen: kept. New settings: rebuilt at once, frozen or not.
        assert!(!cache.refresh(2, 2, 5, false, later, &ctx, inline(5)));
        assert!(cache.refresh(3, 2, 5, false, later, &ctx, inline(6)));
        // A new store (generation went back): rebuilt.
        assert!(cache.refresh(3, 0, 5, false, later, &ctx, inline(7)));
        assert_eq!(cache.get(), Some(&7));
        assert_eq!(cache.builds(), 5);
    }

    #[test]
    fn large_builds_run_on_a_worker_and_arrive_later() {
        let ctx = egui::Context::default();
        let mut cache: GraphCache<u8, u64, u32> = GraphCache::default();
        let (release, gate) = bounded::<()>(1);
        let worker = move || BuildJob {
            inline: false,
            run: Box::new(move || {
                let _ = gate.recv();
                42
            }),
        };
        assert!(!cache.refresh(1, 0, 0, true, Instant::now(), &ctx, worker));
        assert!(cache.is_building());
        assert_eq!(cache.get(), None);
        // While it runs, no second build starts.
        assert!(!cache.refresh(2, 0, 0, true, Instant::now(), &ctx, inline(7)));
        release.send(()).unwrap();
        let mut arrived = false;
        for _ in 0..500 {
            if cache.refresh(1, 0, 0, true, Instant::now(), &ctx, inline(9)) {
                arrived = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(arrived, "the worker's graph arrives");
        assert_eq!(cache.get(), Some(&42));
        assert!(!cache.is_building());
    }
}
