//! `microscope __bench-flame` and `__bench-replay` (hidden): what `cargo
//! xtask bench flame` and `cargo xtask bench replay` run.

use crate::cli::{BenchFlameArgs, BenchReplayArgs};
use microscope_gui::bench::{FlameBenchOptions, flame_frame_times, report_json};
use std::process::ExitCode;

/// Times the flame view on synthetic stacks and prints the report as JSON.
pub fn run(args: &BenchFlameArgs) -> anyhow::Result<ExitCode> {
    let report = flame_frame_times(&FlameBenchOptions {
        unique_stacks: args.stacks,
        frames: args.frames,
        ..Default::default()
    });
    println!("{}", report_json(&report));
    Ok(ExitCode::SUCCESS)
}

/// Replays a recording in the headless window, times it and prints the
/// report as JSON.
pub fn run_replay(args: &BenchReplayArgs) -> anyhow::Result<ExitCode> {
    use microscope_gui::bench_replay::{rates_frame_times, replay_frame_times};
    let report = replay_frame_times(&args.file, args.frames).map_err(anyhow::Error::msg)?;
    let rates = rates_frame_times(args.rates_points, args.frames);
    println!(
        "{}",
        microscope_gui::bench_replay::report_json(&report, &rates)
    );
    Ok(ExitCode::SUCCESS)
}
