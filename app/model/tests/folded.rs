//! One frame, one folded name: `microscope profile` and `export --format
//! folded` (through `FoldedProfile`) and the window's *Export folded…*
//! (through the model and the flame graph) write the same lines.

use microscope_model::{BuildOptions, FlameGraph, FoldedProfile, Model, StackQuery, Update};
use microscope_wire::ProbeKey;
use microscope_wire::{Frame, StackBatch, StackCount};

fn frame(id: u32, name: &str, kernel: bool) -> Frame {
    Frame {
        id,
        name: name.to_owned(),
        kernel,
    }
}

fn count(probe: ProbeKey, tgid: u32, comm: &str, frames: &[u32], value: u64) -> StackCount {
    StackCount {
        probe,
        tgid,
        comm: comm.to_owned(),
        frames: frames.to_vec(),
        value,
    }
}

fn batch(start_ns: u64, end_ns: u64, frames: Vec<Frame>, stacks: Vec<StackCount>) -> StackBatch {
    StackBatch {
        start_ns,
        end_ns,
        frames,
        stacks,
    }
}

#[test]
fn the_profile_and_the_flame_graph_name_every_frame_alike() {
    // Names that need care: spaces and `;` in a C++ name, a kernel
    // function, and an id the helper never defined.
    let frames = vec![
        frame(0, "main", false),
        frame(1, "operator new(unsigned long)", false),
        frame(2, "a;b", false),
        frame(3, "vfs_read", true),
    ];
    let stacks = vec![
        count(1, 7, "app", &[0, 1, 3], 5),
        count(1, 7, "app", &[0, 2, 9], 2),
    ];
    let batch = batch(0, 1_000, frames, stacks);

    // `microscope profile` and `export --format folded`.
    let mut profile = FoldedProfile::new(1, None, false);
    profile.add_batch(&batch, 0);
    // The app: the model files the batch, the flame view's graph
    // (without the per-process frame, which the profile writes as
    // the command name) is what *Export folded…* writes.
    let mut model = Model::new(std::time::Instant::now());
    model.apply(Update::Stacks(batch));
    let options = BuildOptions {
        by_process: false,
        ..BuildOptions::default()
    };
    let graph = FlameGraph::from_store(&model.stacks, StackQuery::all(), options);

    let expected = [
        "main;a:b;[unknown_frame_#9] 2",
        "main;operator_new(unsigned_long);vfs_read_[k] 5",
    ];
    let from_profile: Vec<String> = profile
        .lines()
        .iter()
        .map(|line| line.strip_prefix("app;").unwrap_or(line).to_owned())
        .collect();
    assert_eq!(from_profile, expected);
    let from_app = graph.to_folded();
    assert_eq!(from_app.lines().collect::<Vec<_>>(), expected);
}
