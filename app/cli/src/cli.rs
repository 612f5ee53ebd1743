//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use microscope_gui::CentralTab;
use std::path::PathBuf;

/// Default sampling rate of `microscope profile`, per CPU: 99 rather than
/// 100 so sampling does not run in lockstep with timer-driven work.
pub const DEFAULT_HZ: u32 = 99;

/// Microscope: watch the Linux kernel work, live.
///
/// With no subcommand, opens the window. The privileged helper `microscoped`
/// must be running (`sudo microscoped`, or `cargo xtask run`).
#[derive(Debug, Parser)]
#[command(name = "microscope", version)]
pub struct Cli {
    /// Socket of the helper daemon.
    #[arg(long, global = true, value_name = "PATH", default_value = microscope_wire::DEFAULT_SOCKET_PATH)]
    pub socket: PathBuf,
    /// Probe to enable as soon as the window opens (repeatable), e.g.
    /// `--enable sched:sched_switch`; the same as ticking its box.
    #[arg(long = "enable", value_name = "ID")]
    pub enable: Vec<String>,
    /// The view to open on (for a classroom: straight to the map).
    #[arg(long, value_enum, value_name = "VIEW")]
    pub view: Option<View>,
    /// Open the map on this subsystem's details, by catalogue id (`block`,
    /// `sched`, `tcp`…).
    #[arg(long, value_name = "SUBSYSTEM")]
    pub select: Option<String>,
    /// Do not switch on the default probes when the window connects to the
    /// helper. By default a few cheap tracepoints (one per subsystem, none
    /// on system calls) are counted in the kernel so the map lights at
    /// once; with this flag the map stays dark until you tick probes.
    #[arg(long)]
    pub no_default_probes: bool,
    /// Open this recording (made by `microscope record`) instead of
    /// connecting to the helper; needs no privileges.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Start a guided tour beside the map, by id (`read`, `write`, `exec`,
    /// `tcp`, `fault`; the Tours tab lists them).
    #[arg(long, value_name = "ID")]
    pub tour: Option<String>,
    /// With `--tour`: the step to open on, from 1.
    #[arg(long, value_name = "N", requires = "tour")]
    pub tour_step: Option<usize>,
    /// Follow the slowest recent call of this system call (`read`) in the
    /// waterfall: as soon as a recording has played, or at once when live.
    #[arg(long, value_name = "SYSCALL")]
    pub follow: Option<String>,
    /// A second recording to compare with (with --replay, or live): the
    /// flame graph, the rates and the latency histogram show both.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// What to do; opens the window if omitted.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// The app's central views (`--view`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// The subsystem map.
    Map,
    /// Events per second and latency histograms.
    Rates,
    /// The per-CPU scheduler timeline.
    Cpus,
    /// The event inspector.
    Events,
    /// The flame graph of stack samples.
    Flame,
    /// The call graph of the stacks into a probe.
    Paths,
    /// The guided tours.
    Tours,
    /// One system call followed end to end.
    Waterfall,
    /// Pack probes' counter tables and histograms.
    Packs,
    /// What each probe and the helper cost (BPF run time, events, drops).
    Cost,
}

impl View {
    /// The window's tab for this view.
    pub fn tab(self) -> CentralTab {
        match self {
            Self::Map => CentralTab::Map,
            Self::Rates => CentralTab::Rates,
            Self::Cpus => CentralTab::Cpus,
            Self::Events => CentralTab::Events,
            Self::Flame => CentralTab::Flame,
            Self::Paths => CentralTab::Paths,
            Self::Tours => CentralTab::Tours,
            Self::Waterfall => CentralTab::Waterfall,
            Self::Packs => CentralTab::Packs,
            Self::Cost => CentralTab::Cost,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Print the helper's version, the kernel's tracing capabilities and every probe.
    Probes(ProbesArgs),
    /// Check a probe pack directory against the built-in pack: every file,
    /// every entry, no clash. Prints what it holds or what is wrong.
    CheckPack(CheckPackArgs),
    /// Write a new probe pack (manifest and a BPF program in C or Rust that
    /// builds as is) into DIR; docs/packs.md walks through it.
    NewPack(NewPackArgs),
    /// Enable probes and print `<probe id> <events>` for each probe, once a second.
    Watch(WatchArgs),
    /// Enable probes and write everything the helper sends for N seconds to
    /// a recording file that opens anywhere, without root.
    Record(RecordArgs),
    /// Describe a recording: helper, kernel, time span, events and drops per
    /// probe, index, damage.
    Info(InfoArgs),
    /// Profile the whole system (or one process) for N seconds and write
    /// folded stacks for flame-graph tools (inferno, flamegraph.pl).
    ///
    /// On-CPU (default): where the CPUs spend their time, sampled at --hz
    /// per CPU; values are samples. Off-CPU (--off-cpu): where threads
    /// wait, blocked 1 ms or longer; values are microseconds blocked.
    Profile(ProfileArgs),
    /// Convert a recording for other tools.
    Export(ExportArgs),
    /// What grew and what shrank between two recordings (their stacks, or
    /// their events per command and probe), each as a share of its own
    /// total.
    Diff(DiffArgs),
    /// Internal: time the flame graph view per frame on synthetic stacks and
    /// print the numbers as JSON (`cargo xtask bench flame` runs it).
    #[command(name = "__bench-flame", hide = true)]
    BenchFlame(BenchFlameArgs),
    /// Replay a recording in the whole window, headless, and print open
    /// time, time to moments and UI time per frame as JSON (`cargo xtask
    /// bench replay` runs it).
    #[command(name = "__bench-replay", hide = true)]
    BenchReplay(BenchReplayArgs),
}

/// Arguments of `probes`.
#[derive(Debug, Args)]
pub struct ProbesArgs {
    /// Instead, print the whole verifier log of a pack probe the kernel
    /// refused (its id, e.g. `mypack:probe`).
    #[arg(long, value_name = "ID")]
    pub verifier_log: Option<String>,
    /// Instead, print what every attached probe costs (BPF run time per run
    /// and share of a CPU, runs and events per second, ring-buffer fill,
    /// drops) and the helper's own CPU and memory, once a second. The
    /// kernel's BPF run-time statistics are on only while it runs.
    #[arg(long, conflicts_with = "verifier_log")]
    pub cost: bool,
    /// With --cost: how many one-second reports to print.
    #[arg(long, default_value_t = 3, value_name = "N", requires = "cost")]
    pub reports: u32,
    /// With --cost: enable this probe for the measurement (repeatable);
    /// without it, the probes others (the app) have attached are measured.
    #[arg(long = "enable", value_name = "ID", requires = "cost")]
    pub enable: Vec<String>,
}

/// Arguments of `new-pack`.
#[derive(Debug, Args)]
pub struct NewPackArgs {
    /// The program's language.
    #[arg(long, value_enum)]
    pub lang: PackLanguage,
    /// A new directory; its name becomes the pack's id.
    pub dir: PathBuf,
}

/// The language of a new pack's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PackLanguage {
    /// libbpf-style C, built with clang.
    C,
    /// Rust with aya-ebpf, built with nightly and bpf-linker.
    Rust,
}

/// Arguments of `check-pack`.
#[derive(Debug, Args)]
pub struct CheckPackArgs {
    /// The pack's directory (with its `pack.toml`).
    pub dir: PathBuf,
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Probe id to enable (repeatable), e.g. `sched:sched_switch`.
    #[arg(long = "probe", value_name = "ID", required = true)]
    pub probes: Vec<String>,
    /// How many one-second lines to print before exiting.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub seconds: u64,
}

/// Arguments of `record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Probe id to enable (repeatable), e.g. `sched:sched_switch`.
    #[arg(long = "probe", value_name = "ID", required = true)]
    pub probes: Vec<String>,
    /// How long to record.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub seconds: u64,
    /// The recording to create, e.g. `trace.mscr`.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The recording.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Arguments of `profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// How long to profile.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub seconds: u64,
    /// Only this process (by process id), filtered in the kernel.
    #[arg(long, value_name = "P")]
    pub pid: Option<u32>,
    /// Profile time spent blocked instead of time on the CPU.
    #[arg(long)]
    pub off_cpu: bool,
    /// Samples per second per CPU (on-CPU only).
    #[arg(long, value_name = "HZ", default_value_t = DEFAULT_HZ)]
    pub hz: u32,
    /// The folded file to write, e.g. `cpu.folded`; `-` for standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The recording.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// `perfetto` (Chrome trace JSON for ui.perfetto.dev), `csv` (a row per
    /// event) or `folded` (`comm;probe count` for flame-graph tools).
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Where to write; `-` for standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The recording to compare against.
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The recording compared.
    #[arg(value_name = "COMPARISON")]
    pub comparison: PathBuf,
    /// `summary` (what grew and shrank, for a person) or `folded` (`stack
    /// baseline comparison` lines for a differential flame graph).
    #[arg(long, value_enum, default_value = "summary")]
    pub format: DiffFormat,
    /// Where to write; `-` for standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT", default_value = "-")]
    pub output: PathBuf,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Functions listed as grown and as shrunk in the summary.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
}

/// Output formats of `microscope diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// What grew and what shrank, for a person.
    Summary,
    /// Two-count folded lines for flamegraph.pl / inferno-flamegraph.
    Folded,
}

/// Output formats of `microscope export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Chrome trace-event JSON, for ui.perfetto.dev.
    Perfetto,
    /// One row per event.
    Csv,
    /// `comm;probe count` lines for flame-graph tools.
    Folded,
    /// Pack probes' counter tables and histograms, one CSV row per value
    /// and reading.
    Tables,
}

/// Arguments of `__bench-flame`.
#[derive(Debug, Args)]
pub struct BenchFlameArgs {
    /// Unique stacks in the synthetic store.
    #[arg(long, default_value_t = 100_000)]
    pub stacks: usize,
    /// Frames measured per scenario.
    #[arg(long, default_value_t = 200)]
    pub frames: usize,
}

/// Arguments of `__bench-replay`.
#[derive(Debug, Args)]
pub struct BenchReplayArgs {
    /// The recording.
    pub file: PathBuf,
    /// Frames measured per scenario.
    #[arg(long, default_value_t = 200)]
    pub frames: usize,
    /// Points per series of the Rates timeline measured alone.
    #[arg(long, default_value_t = 1_000_000)]
    pub rates_points: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_is_accepted_before_and_after_the_subcommand() {
        let cli = Cli::parse_from(["microscope", "probes", "--socket", "/tmp/s"]);
        assert_eq!(cli.socket, PathBuf::from("/tmp/s"));
        let cli = Cli::parse_from(["microscope", "--socket", "/tmp/t", "probes"]);
        assert_eq!(cli.socket, PathBuf::from("/tmp/t"));
        let cli = Cli::parse_from(["microscope"]);
        assert_eq!(
            cli.socket,
            PathBuf::from(microscope_wire::DEFAULT_SOCKET_PATH)
        );
        assert!(cli.command.is_none());
        let cli = Cli::parse_from(["microscope", "--enable", "a:b", "--enable", "c:d"]);
        assert_eq!(cli.enable, ["a:b", "c:d"]);
    }

    #[test]
    fn watch_takes_repeated_probes() {
        let cli = Cli::parse_from([
            "microscope",
            "watch",
            "--probe",
            "a:b",
            "--probe",
            "c:d",
            "--seconds",
            "3",
        ]);
        let Some(CliCommand::Watch(WatchArgs { probes, seconds })) = cli.command else {
            panic!("expected watch");
        };
        assert_eq!(probes, ["a:b", "c:d"]);
        assert_eq!(seconds, 3);
        assert!(Cli::try_parse_from(["microscope", "watch"]).is_err());
    }

    #[test]
    fn profile_parses_with_defaults() {
        let cli = Cli::parse_from(["microscope", "profile", "-o", "cpu.folded"]);
        let Some(CliCommand::Profile(ProfileArgs {
            seconds,
            pid,
            off_cpu,
            hz,
            output,
            force,
        })) = cli.command
        else {
            panic!("expected profile");
        };
        assert_eq!(
            (seconds, pid, off_cpu, hz, force),
            (5, None, false, 99, false)
        );
        assert_eq!(output, PathBuf::from("cpu.folded"));
        let cli = Cli::parse_from([
            "microscope",
            "profile",
            "--seconds",
            "3",
            "--pid",
            "42",
            "--off-cpu",
            "-o",
            "-",
        ]);
        assert!(matches!(
            cli.command,
            Some(CliCommand::Profile(ProfileArgs {
                seconds: 3,
                pid: Some(42),
                off_cpu: true,
                ..
            }))
        ));
        assert!(
            Cli::try_parse_from(["microscope", "profile"]).is_err(),
            "needs -o"
        );
    }

    #[test]
    fn record_info_and_export_parse() {
        let cli = Cli::parse_from([
            "microscope",
            "record",
            "--probe",
            "a:b",
            "--seconds",
            "2",
            "-o",
            "x.mscr",
        ]);
        let Some(CliCommand::Record(RecordArgs {
            probes,
            seconds,
            output,
            force,
        })) = cli.command
        else {
            panic!("expected record");
        };
        assert_eq!((probes, seconds, force), (vec!["a:b".to_owned()], 2, false));
        assert_eq!(output, PathBuf::from("x.mscr"));
        assert!(Cli::try_parse_from(["microscope", "record", "--probe", "a:b"]).is_err());

        let cli = Cli::parse_from(["microscope", "info", "x.mscr"]);
        assert!(matches!(cli.command, Some(CliCommand::Info(_))));

        let cli = Cli::parse_from([
            "microscope",
            "export",
            "x.mscr",
            "--format",
            "csv",
            "-o",
            "-",
            "--force",
        ]);
        let Some(CliCommand::Export(ExportArgs { format, force, .. })) = cli.command else {
            panic!("expected export");
        };
        assert_eq!(format, ExportFormat::Csv);
        assert!(force);
        assert!(
            Cli::try_parse_from(["microscope", "export", "x", "--format", "pdf", "-o", "y"])
                .is_err()
        );
    }

    /// The man pages in `assets/package/man/` (shipped by the Debian
    /// package) must be what clap says today: `microscope.1` and one
    /// `microscope-<command>.1` per visible subcommand.
    /// `UPDATE_MAN=1 cargo test -p microscope man_pages` rewrites them.
    #[test]
    fn man_pages_are_up_to_date() {
        use clap::CommandFactory as _;

        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/package/man");
        let mut cli = Cli::command();
        // Propagates `--socket` (global) into every subcommand.
        cli.build();
        let mut pages = vec![("microscope.1".to_owned(), cli.clone())];
        for sub in cli
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        {
            let name = sub.get_name();
            // clap keeps command names as `&'static str` (without its
            // `string` feature); a test may leak a few.
            let page_name: &'static str = Box::leak(format!("microscope-{name}").into_boxed_str());
            let page = sub
                .clone()
                .name(page_name)
                .bin_name(format!("microscope {name}"));
            pages.push((format!("microscope-{name}.1"), page));
        }
        let update = std::env::var_os("UPDATE_MAN").is_some();
        let mut stale = Vec::new();
        for (file, command) in pages {
            let mut rendered = Vec::new();
            clap_mangen::Man::new(command)
                .section("1")
                .manual("Microscope")
                .render(&mut rendered)
                .unwrap();
            let path = dir.join(&file);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &rendered).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(rendered.as_slice()) {
                stale.push(file);
            }
        }
        assert!(
            stale.is_empty(),
            "man pages out of date: {stale:?}; run `UPDATE_MAN=1 cargo test -p microscope man_pages`"
        );
    }
}
