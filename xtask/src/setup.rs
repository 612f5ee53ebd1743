//! `cargo xtask setup`: installs what building, running and testing need.
//!
//! Every step checks first and does nothing when already satisfied, so a
//! second run takes a couple of seconds. Each step prints one line.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::proc::{as_root, run_checked, stdout_of};
use crate::workspace;

/// LLVM development files that bpf-linker links against.
const LLVM_PACKAGES: &[&str] = &["llvm-22-dev"];

/// What the desktop app loads at run time (X11, Wayland, GL, Vulkan are
/// dlopened) plus what the screenshot task drives it with.
const GUI_PACKAGES: &[&str] = &[
    "xvfb",
    "xauth",
    "x11-utils",
    "xdotool",
    "imagemagick",
    "libxkbcommon-x11-0",
    "libwayland-egl1",
    "libwayland-cursor0",
    "libgl1",
    "libegl1",
    "libgl1-mesa-dri",
    "libvulkan1",
    "mesa-vulkan-drivers",
];

/// The bpf-linker release known to work with the pinned aya and LLVM 22.
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_BIN_DIR: &str = "/usr/lib/llvm-22/bin";
const TRACEFS: &str = "/sys/kernel/tracing";

/// Runs every setup step, printing one line per step.
pub fn run() -> Result<()> {
    let started = Instant::now();
    step("apt packages", apt_packages)?;
    step("nightly toolchain", nightly_toolchain)?;
    step("nightly rust-src", nightly_rust_src)?;
    step("bpf-linker", bpf_linker)?;
    step("tracefs", tracefs)?;
    println!("setup: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn step(name: &str, action: fn() -> Result<String>) -> Result<()> {
    let outcome = action()?;
    println!("setup: {name:<18} {outcome}");
    Ok(())
}

/// What building C packs (`cargo xtask packs`) needs: the compiler and
/// libbpf's headers.
pub const C_PACK_PACKAGES: &[&str] = &["clang-22", "libbpf-dev"];

/// What the kernel tests use besides the kernel: `bindfs` mounts a FUSE
/// file system, on which the helper must refuse uprobe targets
/// (`app/helper/tests/kernel/hostile.rs`); the oracles they compare with,
/// `bpftool prog show` (what each probe costs) and a real Prometheus server
/// scraping the metrics endpoint (Debian's package; its service is not
/// started on machines without systemd, and the test starts its own on
/// loopback).
const TEST_PACKAGES: &[&str] = &["bindfs", "bpftool", "prometheus"];

fn apt_packages() -> Result<String> {
    let packages: Vec<&str> = LLVM_PACKAGES
        .iter()
        .chain(GUI_PACKAGES)
        .chain(C_PACK_PACKAGES)
        .chain(TEST_PACKAGES)
        .copied()
        .collect();
    install_apt_packages(&packages)
}

/// Installs those of `packages` that are missing with apt-get (through sudo
/// unless we are root); says what it did, `ok` when nothing was missing.
pub fn install_apt_packages(packages: &[&str]) -> Result<String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if missing.is_empty() {
        return Ok("ok".to_owned());
    }
    if !PathBuf::from("/usr/bin/apt-get").exists() {
        bail!(
            "these packages are missing and there is no apt-get to install them: {}. \
             Install their equivalents with your distribution's package manager.",
            missing.join(" ")
        );
    }
    println!("setup: installing {}", missing.join(" "));
    let hint = "Check the network and that you may use sudo, then run `cargo xtask setup` again.";
    run_checked(
        as_root("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["update", "-q"]),
        "apt-get update",
        hint,
    )?;
    run_checked(
        as_root("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
        "installing apt packages",
        hint,
    )?;
    Ok(format!("installed {}", missing.join(" ")))
}

/// Whether dpkg lists `package` as installed.
pub fn dpkg_installed(package: &str) -> bool {
    stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

/// `rustup` with the toolchain override that `cargo xtask` runs under
/// removed, so `+nightly` and `--toolchain nightly` mean what they say.
fn rustup() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

fn nightly_toolchain() -> Result<String> {
    let listed = stdout_of(rustup().args(["toolchain", "list"])).unwrap_or_default();
    if listed.lines().any(|line| line.starts_with("nightly")) {
        // Deliberately no update: the eBPF side is tested against the
        // nightly that is installed.
        return Ok("ok".to_owned());
    }
    run_checked(
        rustup().args(["toolchain", "install", "nightly", "--profile", "minimal"]),
        "installing the nightly toolchain",
        "Check the network, or install it by hand with `rustup toolchain install nightly`.",
    )?;
    Ok("installed nightly".to_owned())
}

fn nightly_rust_src() -> Result<String> {
    let installed =
        stdout_of(rustup().args(["component", "list", "--toolchain", "nightly", "--installed"]))
            .unwrap_or_default();
    if installed.lines().any(|line| line.trim() == "rust-src") {
        return Ok("ok".to_owned());
    }
    run_checked(
        rustup().args(["component", "add", "rust-src", "--toolchain", "nightly"]),
        "adding rust-src to nightly",
        "Check the network, or run `rustup component add rust-src --toolchain nightly` by hand.",
    )?;
    Ok("added rust-src".to_owned())
}

/// The bpf-linker version found in cargo's bin directory or on PATH.
fn bpf_linker_version() -> Option<String> {
    let candidates = workspace::cargo_bin_dir()
        .map(|dir| dir.join("bpf-linker"))
        .into_iter()
        .chain([PathBuf::from("bpf-linker")]);
    candidates
        .filter_map(|program| stdout_of(Command::new(program).arg("--version")))
        .map(|out| {
            out.trim()
                .trim_start_matches("bpf-linker")
                .trim()
                .to_owned()
        })
        .next()
}

fn bpf_linker() -> Result<String> {
    let found = bpf_linker_version();
    if found.as_deref() == Some(BPF_LINKER_VERSION) {
        return Ok("ok".to_owned());
    }
    // bpf-linker's build script finds LLVM through `llvm-config`, and
    // /usr/bin/llvm-config is an older LLVM: put LLVM 22 first.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![PathBuf::from(LLVM_BIN_DIR)];
    dirs.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(dirs)?;
    println!("setup: building bpf-linker {BPF_LINKER_VERSION} (about a minute)");
    run_checked(
        workspace::cargo()
            .env("PATH", path)
            .args(["install", &format!("bpf-linker@{BPF_LINKER_VERSION}")])
            .args(["--locked", "--no-default-features", "--features", "llvm-22"]),
        "installing bpf-linker",
        "It needs llvm-22-dev (installed by the apt step) and network access to crates.io.",
    )?;
    Ok(match found {
        Some(old) => format!("replaced bpf-linker {old} with {BPF_LINKER_VERSION}"),
        None => format!("installed bpf-linker {BPF_LINKER_VERSION}"),
    })
}

fn tracefs_mounted() -> bool {
    fs::read_to_string("/proc/mounts").is_ok_and(|mounts| {
        mounts.lines().any(|line| {
            let mut fields = line.split_whitespace();
            let (_device, mount_point, kind) = (fields.next(), fields.next(), fields.next());
            mount_point == Some(TRACEFS) && kind == Some("tracefs")
        })
    })
}

fn tracefs() -> Result<String> {
    if tracefs_mounted() {
        return Ok("ok".to_owned());
    }
    if !workspace::is_root() {
        return Ok(format!(
            "not mounted; the helper needs it: run `sudo mount -t tracefs nodev {TRACEFS}`"
        ));
    }
    run_checked(
        Command::new("mount").args(["-t", "tracefs", "nodev", TRACEFS]),
        "mounting tracefs",
        "The kernel may lack CONFIG_TRACING; tracepoint probes will be unavailable.",
    )?;
    Ok(format!("mounted tracefs at {TRACEFS}"))
}
