//! `microscope __bench-flame` (hidden): what `cargo xtask bench flame` runs.

use crate::cli::BenchFlameArgs;
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
