//! `cargo xtask packs`: the example packs and the libbpf-tools pack, ready
//! to load: manifests copied, objects built (C with clang-22) or extracted
//! (libbpf-tools from Debian's package, never committed), in one directory
//! per pack under `--out` (default `target/packs`).
//!
//! The helper only reads packs from root-owned directories; the task says
//! how to install them (`sudo cp -r target/packs/* /etc/microscope/packs/`)
//! or to pass `--pack-dir` when the checkout itself is root-owned.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::proc::run_checked;
use crate::setup::{C_PACK_PACKAGES, install_apt_packages};
use crate::workspace;

/// The libbpf-tools whose objects the pack uses.
const LIBBPF_TOOLS: [&str; 5] = [
    "exitsnoop",
    "execsnoop",
    "runqlat",
    "syscount",
    "offcputime",
];

/// `cargo xtask packs` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where to write the packs (one directory each).
    #[arg(long, default_value = "target/packs")]
    out: PathBuf,
}

pub fn run(options: &Options) -> Result<()> {
    install_apt_packages(C_PACK_PACKAGES)?;
    let out = workspace::root().join(&options.out);
    let assets = workspace::root().join("assets/packs");
    let c = out.join("example-c");
    copy_manifests(&assets.join("example-c"), &c)?;
    for program in ["sleeps", "offcpu"] {
        build_c(
            &c.join(format!("{program}.bpf.c")),
            &c.join(format!("{program}.bpf.o")),
        )?;
    }
    let rust = out.join("example-rust");
    copy_manifests(&assets.join("example-rust"), &rust)?;
    build_rust(
        &assets.join("example-rust/program"),
        "writes",
        &rust.join("writes.bpf.o"),
    )?;
    let tools = out.join("libbpf-tools");
    copy_manifests(&assets.join("libbpf-tools"), &tools)?;
    extract_libbpf_tools(&tools)?;
    println!(
        "packs ready in {}: example-c, example-rust, libbpf-tools.\n\
         Install them where the helper reads packs:  sudo mkdir -p /etc/microscope/packs && sudo cp -r {}/* /etc/microscope/packs/\n\
         or start the helper with `--pack-dir {}` if every directory above it is owned by root.",
        out.display(),
        out.display(),
        out.display()
    );
    Ok(())
}

fn copy_manifests(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        if path.is_file()
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, to.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

/// Compiles a libbpf-style C program for the BPF target.
pub fn build_c(source: &Path, object: &Path) -> Result<()> {
    let arch_include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    run_checked(
        Command::new("clang-22")
            .args(["-g", "-O2", "-target", "bpf", &arch_include, "-c"])
            .arg(source)
            .arg("-o")
            .arg(object),
        &format!("compiling {}", source.display()),
        "clang-22 and libbpf-dev come from apt (`cargo xtask setup` installs them)",
    )
}

/// Builds an aya-ebpf pack project (its own nightly toolchain and BPF
/// target, from its `rust-toolchain.toml` and `.cargo/config.toml`) and
/// copies binary `bin` to `object`.
pub fn build_rust(project: &Path, bin: &str, object: &Path) -> Result<()> {
    let target_dir = workspace::root().join("target/packs-build").join(bin);
    run_checked(
        Command::new("cargo")
            .args(["build", "--release"])
            .current_dir(project)
            // The project's rust-toolchain.toml picks nightly; xtask's own
            // toolchain settings must not leak into it.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC")
            .env_remove("CARGO")
            .env("CARGO_TARGET_DIR", &target_dir),
        &format!("building {}", project.display()),
        "it needs nightly with rust-src and bpf-linker (`cargo xtask setup` installs them)",
    )?;
    let built = target_dir.join("bpfel-unknown-none/release").join(bin);
    std::fs::copy(&built, object).with_context(|| format!("copying {}", built.display()))?;
    Ok(())
}

/// Downloads Debian's `libbpf-tools` and writes `<tool>.bpf.o` for each tool
/// the pack uses into `dir`.
fn extract_libbpf_tools(dir: &Path) -> Result<()> {
    let work = workspace::root().join("target/libbpf-tools-deb");
    std::fs::create_dir_all(&work)?;
    run_checked(
        Command::new("apt-get")
            .args(["download", "libbpf-tools"])
            .current_dir(&work),
        "downloading libbpf-tools",
        "run `apt-get update` and check the network",
    )?;
    let Some(deb) = std::fs::read_dir(&work)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .max()
    else {
        bail!("apt-get download left no .deb in {}", work.display());
    };
    let root = work.join("root");
    run_checked(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
        "unpacking libbpf-tools",
        "dpkg comes with Debian",
    )?;
    for tool in LIBBPF_TOOLS {
        let binary = root.join("usr/sbin").join(tool);
        let bytes =
            std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
        let objects = microscope_catalogue::object::embedded_objects(&bytes);
        let [object] = objects.as_slice() else {
            bail!(
                "{} embeds {} BPF objects, expected one",
                binary.display(),
                objects.len()
            );
        };
        std::fs::write(dir.join(format!("{tool}.bpf.o")), object)?;
    }
    Ok(())
}
