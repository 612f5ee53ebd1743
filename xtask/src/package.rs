//! `cargo xtask package`: the Debian package `microscope`.
//!
//! It holds the app (`/usr/bin/microscope`), the helper
//! (`/usr/sbin/microscoped`), the helper's hardened systemd unit, the
//! maintainer scripts that create the `microscope` group and enable the
//! service, a desktop entry with its icon, the man pages and the docs. The
//! files themselves live in `assets/package/`; this module only lays them out
//! and calls Debian's own tools.
//!
//! Built with `dpkg-deb` rather than cargo-deb: the package holds binaries of
//! two crates (cargo-deb describes one crate, from metadata in that crate's
//! manifest), its maintainer scripts are the point of the package, and
//! `dpkg-deb` and `dpkg-shlibdeps` (the tools Debian's own packages are built
//! with) are on every Debian machine, so nothing has to be compiled first.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::proc::{run_checked, stdout_of};
use crate::{run, workspace};

/// The package's name.
pub const PACKAGE: &str = "microscope";
/// Where the package's source files are.
const ASSETS: &str = "assets/package";
/// The helper's systemd unit, as installed.
pub const UNIT_PATH: &str = "/usr/lib/systemd/system/microscoped.service";
/// Libraries the window opens at run time with `dlopen` (dpkg-shlibdeps
/// cannot see them): without them the command line still works.
const RECOMMENDS: &str = "libgl1, libegl1, libxkbcommon-x11-0, libwayland-egl1, libwayland-cursor0";

/// Options of `cargo xtask package`.
#[derive(Debug, Args)]
pub struct Options {
    /// Package the release binaries already built instead of building them.
    #[arg(long)]
    pub no_build: bool,
    /// Then install it, run its helper as the unit says, remove and purge
    /// it, checking each step (root; the package step of `cargo xtask test`).
    #[arg(long)]
    pub test: bool,
}

/// One file of the package: where it comes from, where it goes, its mode.
struct Entry {
    source: PathBuf,
    dest: &'static str,
    mode: u32,
}

/// Runs `cargo xtask package` (without `--test`, which main hands to
/// `package_test`); prints where the package is.
pub fn run(options: &Options) -> Result<()> {
    let deb = build(!options.no_build)?;
    println!("package: {}", deb.display());
    println!(
        "install it with `sudo apt install {}` (or `sudo dpkg -i`), then see the README's Install section",
        deb.display()
    );
    Ok(())
}

/// Builds the release binaries (unless `compile` is false) and the package;
/// returns the `.deb`'s path.
pub fn build(compile: bool) -> Result<PathBuf> {
    if compile {
        run::build(true)?;
    }
    let root = workspace::root();
    let version = workspace_version(&root)?;
    let arch = stdout_of(Command::new("dpkg").arg("--print-architecture"))
        .map(|out| out.trim().to_owned())
        .filter(|arch| !arch.is_empty())
        .context("`dpkg --print-architecture` failed; packaging needs dpkg (Debian or Ubuntu)")?;
    let out_dir = workspace::target_dir().join("package");
    let stage = out_dir.join(format!("{PACKAGE}_{version}_{arch}"));
    if stage.exists() {
        fs::remove_dir_all(&stage)
            .with_context(|| format!("could not clear {}", stage.display()))?;
    }

    let entries = entries(&root);
    for entry in &entries {
        install(&entry.source, &stage.join(entry.dest), entry.mode)?;
    }
    for (binary, dest) in [
        ("microscope", "usr/bin/microscope"),
        ("microscoped", "usr/sbin/microscoped"),
    ] {
        strip_debug_info(&workspace::built_binary(binary, true), &stage.join(dest))?;
    }
    install_man_pages(&root.join(ASSETS).join("man"), &stage)?;

    let depends = shlib_depends(&stage, &["usr/bin/microscope", "usr/sbin/microscoped"])?;
    let debian = stage.join("DEBIAN");
    for script in ["postinst", "prerm", "postrm"] {
        install(&root.join(ASSETS).join(script), &debian.join(script), 0o755)?;
    }
    write_md5sums(&stage)?;
    let control = control_file(&version, &arch, &depends, installed_kib(&stage)?);
    fs::write(debian.join("control"), control).context("could not write DEBIAN/control")?;

    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    run_checked(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
        "dpkg-deb",
        "dpkg-deb's message above says which file is wrong.",
    )?;
    Ok(deb)
}

/// Every file copied as it is from the repository.
fn entries(root: &Path) -> Vec<Entry> {
    let asset = |name: &str| root.join(ASSETS).join(name);
    vec![
        Entry {
            source: asset("microscoped.service"),
            dest: "usr/lib/systemd/system/microscoped.service",
            mode: 0o644,
        },
        Entry {
            source: asset("microscope.desktop"),
            dest: "usr/share/applications/microscope.desktop",
            mode: 0o644,
        },
        Entry {
            source: asset("microscope.svg"),
            dest: "usr/share/icons/hicolor/scalable/apps/microscope.svg",
            mode: 0o644,
        },
        Entry {
            source: asset("copyright"),
            dest: "usr/share/doc/microscope/copyright",
            mode: 0o644,
        },
        Entry {
            source: root.join("README.md"),
            dest: "usr/share/doc/microscope/README.md",
            mode: 0o644,
        },
        Entry {
            source: root.join("SECURITY.md"),
            dest: "usr/share/doc/microscope/SECURITY.md",
            mode: 0o644,
        },
        // The metrics endpoint is off unless `--metrics` is given; the
        // example goes to /etc/microscope/metrics.toml when it is wanted.
        Entry {
            source: asset("metrics.toml"),
            dest: "usr/share/doc/microscope/examples/metrics.toml",
            mode: 0o644,
        },
        Entry {
            source: root.join("assets/grafana/microscope.json"),
            dest: "usr/share/microscope/grafana/microscope.json",
            mode: 0o644,
        },
    ]
}

/// The workspace's version, from `[workspace.package]` in the root manifest.
fn workspace_version(root: &Path) -> Result<String> {
    let manifest = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .with_context(|| format!("could not read {}", manifest.display()))?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section
            && let Some(value) = line.strip_prefix("version")
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            return Ok(value.trim().trim_matches('"').to_owned());
        }
    }
    bail!(
        "{} has no `version` in [workspace.package]",
        manifest.display()
    )
}

/// Every page in `dir` (`name.N`, generated from the clap definitions, see
/// the `man_page` tests), gzipped into `usr/share/man/manN/`.
fn install_man_pages(dir: &Path, stage: &Path) -> Result<()> {
    let mut count = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("could not list {}", dir.display()))? {
        let path = entry?.path();
        let (Some(name), Some(section)) = (
            path.file_name().and_then(|n| n.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        let dest = stage
            .join("usr/share/man")
            .join(format!("man{section}"))
            .join(format!("{name}.gz"));
        gzip(&path, &dest)?;
        count += 1;
    }
    if count == 0 {
        bail!(
            "{} holds no man pages; run `UPDATE_MAN=1 cargo test -p microscope man_pages` \
             and `UPDATE_MAN=1 cargo test -p microscoped --bins man_page`",
            dir.display()
        );
    }
    Ok(())
}

fn install(source: &Path, dest: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    fs::copy(source, dest)
        .with_context(|| format!("could not copy {} to {}", source.display(), dest.display()))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))
        .with_context(|| format!("could not set the mode of {}", dest.display()))
}

/// Copies a release binary without its DWARF (the symbol table stays, for
/// backtraces and for profiling the helper itself).
fn strip_debug_info(binary: &Path, dest: &Path) -> Result<()> {
    if !binary.exists() {
        bail!(
            "{} is missing; build it with `cargo build --release -p microscoped -p microscope` \
             (or drop --no-build)",
            binary.display()
        );
    }
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    run_checked(
        Command::new("objcopy")
            .arg("--strip-debug")
            .arg(binary)
            .arg(dest),
        "stripping debug info",
        "objcopy comes with binutils: `sudo apt-get install binutils`.",
    )?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("could not set the mode of {}", dest.display()))
}

fn gzip(source: &Path, dest: &Path) -> Result<()> {
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let file =
        fs::File::create(dest).with_context(|| format!("could not create {}", dest.display()))?;
    // -n: no name or time stamp inside, so the package is reproducible.
    run_checked(
        Command::new("gzip")
            .args(["-9", "-n", "-c"])
            .arg(source)
            .stdout(file),
        "compressing a man page",
        "gzip is part of every Debian system; check that the file exists.",
    )?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("could not set the mode of {}", dest.display()))
}

/// The shared libraries the binaries link, as a `Depends:` value, from
/// `dpkg-shlibdeps` (which wants a `debian/control` in its working
/// directory, so it runs in a scratch one).
fn shlib_depends(stage: &Path, binaries: &[&str]) -> Result<String> {
    let scratch = stage.parent().unwrap_or(stage).join("shlibdeps");
    fs::create_dir_all(scratch.join("debian"))
        .with_context(|| format!("could not create {}", scratch.display()))?;
    fs::write(
        scratch.join("debian/control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n"),
    )
    .context("could not write the scratch debian/control")?;
    let mut cmd = Command::new("dpkg-shlibdeps");
    cmd.current_dir(&scratch).arg("-O");
    for binary in binaries {
        cmd.arg(stage.join(binary));
    }
    let output = cmd
        .output()
        .context("could not run dpkg-shlibdeps; install it with `sudo apt-get install dpkg-dev`")?;
    if !output.status.success() {
        bail!(
            "dpkg-shlibdeps failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let depends = stdout
        .lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
        .context("dpkg-shlibdeps printed no shlibs:Depends line")?;
    let _ignored = fs::remove_dir_all(&scratch);
    Ok(depends.trim().to_owned())
}

/// `DEBIAN/md5sums`: every file's checksum, which `dpkg --verify` uses.
fn write_md5sums(stage: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect_files(stage, stage, &mut files)?;
    files.sort();
    let mut cmd = Command::new("md5sum");
    cmd.current_dir(stage).args(&files);
    let sums = stdout_of(&mut cmd).context("md5sum failed on the staged files")?;
    let path = stage.join("DEBIAN/md5sums");
    let mut file =
        fs::File::create(&path).with_context(|| format!("could not create {}", path.display()))?;
    file.write_all(sums.as_bytes())
        .with_context(|| format!("could not write {}", path.display()))
}

/// Paths of the regular files under `dir`, relative to `stage`, without
/// `DEBIAN/`.
fn collect_files(stage: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("could not list {}", dir.display()))? {
        let path = entry?.path();
        let relative = path.strip_prefix(stage).unwrap_or(&path);
        if relative.starts_with("DEBIAN") {
            continue;
        }
        if path.is_dir() {
            collect_files(stage, &path, out)?;
        } else {
            out.push(relative.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Size of the staged files in KiB, for `Installed-Size`.
fn installed_kib(stage: &Path) -> Result<u64> {
    let mut files = Vec::new();
    collect_files(stage, stage, &mut files)?;
    let mut bytes = 0;
    for file in files {
        bytes += fs::metadata(stage.join(&file))
            .with_context(|| format!("could not stat {file}"))?
            .len();
    }
    Ok(bytes.div_ceil(1024))
}

fn control_file(version: &str, arch: &str, depends: &str, installed_kib: u64) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "Package: {PACKAGE}");
    let _ = writeln!(text, "Version: {version}");
    let _ = writeln!(text, "Architecture: {arch}");
    let _ = writeln!(
        text,
        "Maintainer: Microscope developers <microscope@localhost>"
    );
    let _ = writeln!(text, "Installed-Size: {installed_kib}");
    let _ = writeln!(
        text,
        "Depends: {depends}, adduser, init-system-helpers (>= 1.54~)"
    );
    let _ = writeln!(text, "Recommends: {RECOMMENDS}");
    let _ = writeln!(text, "Section: devel");
    let _ = writeln!(text, "Priority: optional");
    let _ = writeln!(
        text,
        "Homepage: https://github.com/microscope-dev/microscope"
    );
    let _ = writeln!(
        text,
        "Description: visual explorer of the running Linux kernel (eBPF)"
    );
    for line in [
        "Microscope shows the running kernel as a map of its subsystems that",
        "lights up as the kernel works: system calls, scheduling, memory, files,",
        "block I/O, networking, with any tracepoint, kernel or user function",
        "decoded field by field, CPU timelines and flame graphs.",
        ".",
        "The package holds the desktop app and command line (microscope) and",
        "its privileged helper (microscoped), run by systemd with a reduced",
        "set of capabilities. Members of the group `microscope` may use it;",
        "membership is the right to observe every process on the machine.",
    ] {
        let _ = writeln!(text, " {line}");
    }
    text
}
