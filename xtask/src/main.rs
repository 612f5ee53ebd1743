//! `cargo xtask`: the one entry point for every developer task of Microscope.
//!
//! Each subcommand lives in its own module; this file only parses arguments
//! and prepares the environment that every child process shares.
//!
//! Dependencies: `clap` (the subcommands), `anyhow` (errors with context
//! for a person at a terminal), `serde_json` (`cargo metadata` and the
//! benchmarks' reports), `libc` (signals, CPU affinity, `wait4` resource
//! usage, the uid), `microscope-wire` (recordings and the thread CPU clock
//! for the benchmarks), `microscope-model` (the app's default probe set,
//! which `bench defaults` measures), `fastrand` (seeded synthetic events and a CPU-bound
//! loop).

mod bench;
mod bench_all;
mod bench_defaults;
mod bench_flame;
mod bench_profile;
mod bench_recording;
mod bench_replay;
mod bench_toggle;
mod cpuloop;
mod demo;
mod fuzz;
mod helper;
mod initramfs;
mod openloop;
mod package;
mod package_test;
mod packs;
mod proc;
mod run;
mod screenshot;
mod setup;
mod test;
mod test_vm;
mod workload;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks for Microscope.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what building and running need (apt packages, nightly
    /// rust-src, bpf-linker, tracefs). Quick when everything is present.
    Setup,
    /// Build, start the helper as root, and open the desktop app.
    Run(run::Options),
    /// Run fmt, clippy, unit and GUI tests, and (as root) the kernel and VM tests.
    Test,
    /// Test kprobe, fentry and uprobe function probes on Debian's 6.1 and
    /// 6.12 kernels in QEMU (installs QEMU and downloads the kernels once).
    #[command(name = "test-vm")]
    TestVm,
    /// Capture a screenshot of the real app tracing a small workload.
    Screenshot(screenshot::Options),
    /// Build the example packs and extract the libbpf-tools objects into
    /// target/packs, ready to install where the helper reads packs.
    Packs(packs::Options),
    /// Record the demo recording (assets/demo.mscr) on this kernel.
    Demo(demo::Options),
    /// Fuzz the parsers of untrusted bytes (wire frames, recordings, tracefs
    /// formats, tracepoint records, pack manifests) with cargo-fuzz.
    Fuzz(fuzz::Options),
    /// Build the Debian package (release binaries, systemd unit, group,
    /// desktop entry, man pages) into target/package/.
    Package(package::Options),
    /// Measure performance: what tracing costs a syscall-heavy loop, opening
    /// large recordings, drawing the flame graph.
    Bench(bench::Options),
    /// Internal: the `openat`+`close` loop that `bench` measures.
    #[command(name = "__openloop", hide = true)]
    OpenLoop(openloop::Options),
    /// Internal: the package test's uprobe client (run as a group member).
    #[command(name = "__uprobe-client", hide = true)]
    UprobeClient(package_test::UprobeClientOptions),
    /// Internal: the CPU-bound loop that `bench profile` measures.
    #[command(name = "__cpuloop", hide = true)]
    CpuLoop(cpuloop::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    workspace::prepare_environment();
    let result = match cli.command {
        Command::Setup => setup::run(),
        Command::Run(options) => run::run(&options),
        Command::Test => test::run(),
        Command::TestVm => test_vm::run(),
        Command::Screenshot(options) => screenshot::run(&options),
        Command::Demo(options) => demo::run(&options),
        Command::Fuzz(options) => fuzz::run(&options),
        Command::Package(options) if options.test => package_test::run_test(!options.no_build),
        Command::Package(options) => package::run(&options),
        Command::Packs(options) => packs::run(&options),
        Command::Bench(options) => bench::run(&options),
        Command::OpenLoop(options) => openloop::run(&options),
        Command::CpuLoop(options) => cpuloop::run(&options),
        Command::UprobeClient(options) => package_test::uprobe_client(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
