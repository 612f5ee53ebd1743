//! `cargo xtask screenshot`: the real app, on a virtual display, tracing a
//! small workload through the real helper, captured to a PNG.
//!
//! Every process started here sits in a guard, so an error anywhere still
//! stops Xvfb, the app and the helper.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::helper;
use crate::proc::{self, ChildGuard};
use crate::workload::Workload;
use crate::{run, setup, workspace};

/// Probes the app enables at start (`--enable`), chosen so that every view
/// has something to show.
const PROBES: &[&str] = &[
    "sched:sched_switch",
    "syscalls:sys_enter_openat",
    "raw_syscalls:sys_enter",
    "syscalls:latency",
];
/// For `--flame`: the on-CPU profile.
const FLAME_PROBES: &[&str] = &["profile:cpu"];
/// For `--view map`: at least one probe in most subsystems, so the map
/// lights up where the workload goes.
const MAP_PROBES: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_process_exec",
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_openat",
    "ext4:ext4_da_write_begin",
    "filemap:mm_filemap_add_to_page_cache",
    "writeback:writeback_dirty_folio",
    "block:block_rq_issue",
    "block:block_rq_complete",
    "irq:softirq_entry",
    "kmem:mm_page_alloc",
    "sock:inet_sock_set_state",
    "tcp:tcp_probe",
    "net:net_dev_queue",
];
/// Displays tried for Xvfb, first free one wins.
const DISPLAYS: std::ops::RangeInclusive<u32> = 97..=120;
/// How long the app traces before the capture.
const SETTLE: Duration = Duration::from_secs(25);
const WINDOW_TITLE: &str = "Microscope";

/// Options of `cargo xtask screenshot`.
#[derive(Debug, Args)]
pub struct Options {
    /// Where to write the PNG (default: assets/screenshot.png in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Capture the subsystem map (with `block` selected) instead of the
    /// rates view; writes assets/screenshot-map.png unless --out says.
    #[arg(long)]
    map: bool,
    /// Capture the flame graph of an on-CPU profile instead; writes
    /// assets/screenshot-flame.png unless --out says.
    #[arg(long, conflicts_with = "map")]
    flame: bool,
    /// Capture this guided tour (`read`...) on the bundled demo recording,
    /// no helper needed; writes assets/screenshot-tour.png unless --out says.
    #[arg(long, value_name = "ID", conflicts_with_all = ["map", "flame"])]
    tour: Option<String>,
    /// With --tour: the step shown, from 1.
    #[arg(long, value_name = "N", requires = "tour", default_value_t = 1)]
    tour_step: usize,
    /// Capture the waterfall of the slowest recorded call of this system
    /// call (`read`) in the demo; writes assets/screenshot-waterfall.png
    /// unless --out says.
    #[arg(long, value_name = "SYSCALL", conflicts_with_all = ["map", "flame", "tour"])]
    waterfall: Option<String>,
    /// Build and run the dev profile instead of release (quicker to build on
    /// a busy machine; the pixels are the same).
    #[arg(long)]
    dev: bool,
    /// Do not run `cargo xtask setup` first (the tools are installed, and
    /// another setup may be running on this machine).
    #[arg(long)]
    skip_setup: bool,
}

/// How long the app plays the demo before a tour or waterfall capture: the
/// demo lasts about 8 s at 1×.
const DEMO_SETTLE: Duration = Duration::from_secs(14);

/// Runs `cargo xtask screenshot`.
pub fn run(options: &Options) -> Result<()> {
    let on_demo = options.tour.is_some() || options.waterfall.is_some();
    let out = options.out.clone().unwrap_or_else(|| {
        workspace::root().join(if options.tour.is_some() {
            "assets/screenshot-tour.png"
        } else if options.waterfall.is_some() {
            "assets/screenshot-waterfall.png"
        } else if options.map {
            "assets/screenshot-map.png"
        } else if options.flame {
            "assets/screenshot-flame.png"
        } else {
            "assets/screenshot.png"
        })
    });
    let release = !options.dev;
    if !options.skip_setup {
        setup::run()?;
    }
    run::build(release)?;
    proc::survive_ctrl_c();

    let temp = TempDir::create()?;
    let socket = temp.0.join("helper.sock");

    let (display, _xvfb) = start_xvfb()?;
    println!("screenshot: Xvfb on :{display}");

    // The demo needs neither the helper nor root: what a student sees.
    let _helper = (!on_demo)
        .then(|| helper::start_own_built(&socket, "the screenshot", release))
        .transpose()?;
    let _workload = (!on_demo).then(Workload::start).transpose()?;

    let app_binary = workspace::built_binary("microscope", release);
    let mut cmd = Command::new(&app_binary);
    cmd.arg("--socket").arg(&socket);
    if on_demo {
        cmd.arg("--replay")
            .arg(workspace::root().join("assets/demo.mscr"));
    }
    if let Some(tour) = &options.tour {
        cmd.args([
            "--tour",
            tour,
            "--tour-step",
            &options.tour_step.to_string(),
        ]);
    }
    if let Some(call) = &options.waterfall {
        cmd.args(["--view", "waterfall", "--follow", call]);
    }
    let probes = if on_demo {
        &[][..]
    } else if options.map {
        MAP_PROBES
    } else if options.flame {
        FLAME_PROBES
    } else {
        PROBES
    };
    for probe in probes {
        cmd.args(["--enable", probe]);
    }
    if on_demo {
        // The tour or waterfall options above chose the view.
    } else if options.map {
        cmd.args(["--view", "map", "--select", "block"]);
    } else if options.flame {
        cmd.args(["--view", "flame"]);
    } else {
        cmd.args(["--view", "rates"]);
    }
    cmd.env("DISPLAY", format!(":{display}"))
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null());
    let mut app = proc::spawn_guarded(&mut cmd, "the app", "Run `cargo xtask setup`.")?;

    let window = find_window(display, &mut app)?;
    // The pointer starts in the middle of the screen, over the app, where
    // its tooltip would spoil the shot: park it in the corner outside the
    // window (the screen is larger than the window).
    proc::run_checked(
        Command::new("xdotool")
            .env("DISPLAY", format!(":{display}"))
            .args(["mousemove", "1279", "899"]),
        "moving the pointer out of the window with xdotool",
        "Run `cargo xtask setup` to install xdotool.",
    )?;
    let settle = if on_demo { DEMO_SETTLE } else { SETTLE };
    println!(
        "screenshot: window {window}; waiting {} s",
        settle.as_secs()
    );
    let deadline = Instant::now() + settle;
    while Instant::now() < deadline {
        if let Some(status) = app.try_wait()? {
            bail!("the app exited ({status}) before the capture; its messages above say why");
        }
        thread::sleep(Duration::from_millis(100));
    }

    if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    proc::run_checked(
        Command::new("import")
            .env("DISPLAY", format!(":{display}"))
            .args(["-window", &window])
            .arg(&out),
        "capturing the window with ImageMagick's import",
        "Run `cargo xtask setup` to install imagemagick.",
    )?;
    println!("screenshot: wrote {}", out.display());
    Ok(())
}

/// Starts Xvfb on the first free display and waits for its socket.
fn start_xvfb() -> Result<(u32, ChildGuard)> {
    let display = DISPLAYS
        .clone()
        .find(|n| {
            !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .context("no free X display between :97 and :120 (stale /tmp/.X*-lock files?)")?;
    // -noreset: without it the pointer jumps to the centre when a client
    // connects, and a tooltip then spoils the shot.
    let mut xvfb = proc::spawn_guarded(
        Command::new("Xvfb")
            .arg(format!(":{display}"))
            .args([
                "-screen",
                "0",
                "1280x900x24",
                "-noreset",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "Xvfb",
        "Run `cargo xtask setup` to install xvfb.",
    )?;
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        if let Some(status) = xvfb.try_wait()? {
            bail!("Xvfb exited ({status}) on display :{display}");
        }
        if Instant::now() >= deadline {
            bail!("Xvfb did not open display :{display} within 10 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok((display, xvfb))
}

/// Polls `xdotool search` (bounded, unlike `--sync`) for the app's window.
fn find_window(display: u32, app: &mut ChildGuard) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = app.try_wait()? {
            bail!(
                "the app exited ({status}) before opening its window; its messages above say why"
            );
        }
        let found = proc::stdout_of(
            Command::new("xdotool")
                .env("DISPLAY", format!(":{display}"))
                .args(["search", "--onlyvisible", "--name", WINDOW_TITLE]),
        );
        if let Some(id) = found.as_deref().and_then(|out| out.lines().next()) {
            return Ok(id.trim().to_owned());
        }
        if Instant::now() >= deadline {
            bail!("no visible window named {WINDOW_TITLE:?} appeared within 30 s");
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// A private temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("microscope-screenshot-{}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ignored = fs::remove_dir_all(&self.0);
    }
}
