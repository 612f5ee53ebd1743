//! `cargo xtask test`: everything CI runs, in one command.
//!
//! fmt, clippy per default member, clippy on the eBPF crate (nightly, BPF
//! target), unit and GUI tests, then the kernel tests and the VM tests (root
//! only). Every step runs even after a failure; a table at the end says what
//! passed.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{fuzz, package_test, proc, setup, test_vm, workspace};

/// How long `cargo xtask test` fuzzes each target (`cargo xtask fuzz` runs
/// longer ones).
const FUZZ_SECONDS: u32 = 25;

/// The package holding the kernel integration tests, and that test target.
const HELPER_PACKAGE: &str = "microscoped";
const KERNEL_TEST: &str = "kernel";
/// Test targets whose tests need root (each is `#[ignore]`d with the reason,
/// so a plain `cargo test` lists them as ignored, never as passed): the
/// kernel step runs them as root with `--ignored`, one test at a time.
const ROOT_TESTS: &[(&str, &[&str])] = &[
    (HELPER_PACKAGE, &[KERNEL_TEST, "funcprobe"]),
    ("microscope-catalogue", &["kernel"]),
];
/// The child halves of kernel tests, ignored because another test runs
/// them (as an unprivileged user, or as a process to kill); never run on
/// their own. `--skip` matches these as substrings of test names.
const CHILD_ONLY_TESTS: [&str; 2] = ["child_connects_as_given", "nobody_child_"];

enum Outcome {
    Pass,
    Fail,
    Skip(String),
}

struct Step {
    name: String,
    outcome: Outcome,
    seconds: f64,
}

/// A workspace package as `cargo metadata` describes it.
struct Package {
    name: String,
    has_lib: bool,
    has_bins: bool,
    test_targets: Vec<String>,
}

/// Runs `cargo xtask test`.
pub fn run() -> Result<()> {
    setup::run()?;
    let packages = default_members()?;
    let mut steps = Vec::new();

    let mut fmt = workspace::cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    steps.push(run_step(
        "fmt",
        &mut fmt,
        "run `cargo fmt --all` to fix the formatting",
    ));

    for package in &packages {
        let mut clippy = workspace::cargo();
        clippy.args([
            "clippy",
            "--all-targets",
            "-p",
            &package.name,
            "--",
            "-D",
            "warnings",
        ]);
        steps.push(run_step(
            &format!("clippy {}", package.name),
            &mut clippy,
            "fix the warnings above",
        ));
    }
    steps.push(run_step(
        "clippy microscope-ebpf",
        &mut ebpf_clippy(),
        "fix the warnings above (nightly, bpfel-unknown-none)",
    ));

    for package in &packages {
        for (name, mut cmd) in test_commands(package) {
            steps.push(run_step(&name, &mut cmd, "see the failing tests above"));
        }
    }

    steps.push(fuzz_step());
    steps.push(kernel_tests(&packages));
    steps.push(package_step());
    steps.push(vm_tests());

    print_summary(&steps);
    let failed: Vec<&str> = steps
        .iter()
        .filter(|step| matches!(step.outcome, Outcome::Fail))
        .map(|step| step.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("{} step(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn run_step(name: &str, cmd: &mut Command, hint: &str) -> Step {
    println!("\n==> {name}: {}", proc::describe(cmd));
    let started = Instant::now();
    let outcome = match proc::run_checked(cmd, name, hint) {
        Ok(()) => Outcome::Pass,
        Err(err) => {
            eprintln!("==> {name}: {err:#}");
            Outcome::Fail
        }
    };
    Step {
        name: name.to_owned(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Clippy on the eBPF crate, from `ebpf/` so its `.cargo/config.toml`
/// (target, build-std) and `rust-toolchain.toml` (nightly) apply.
fn ebpf_clippy() -> Command {
    // The rustup proxy, not `$CARGO`: that is the stable cargo this xtask
    // runs under, and RUSTUP_TOOLCHAIN would override ebpf's toolchain file.
    let mut cmd = Command::new("cargo");
    cmd.env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .current_dir(workspace::root().join("ebpf"))
        .args([
            "+nightly",
            "clippy",
            "-p",
            "microscope-ebpf",
            "--",
            "-D",
            "warnings",
        ]);
    cmd
}

/// The test commands for one package. The kernel test target is left out
/// here: it needs root and runs alone, one test at a time.
fn test_commands(package: &Package) -> Vec<(String, Command)> {
    let name = format!("test {}", package.name);
    let has_kernel_tests = package.test_targets.iter().any(|t| t == KERNEL_TEST);
    let mut cmd = workspace::cargo();
    cmd.args(["test", "-p", &package.name]);
    if !has_kernel_tests {
        return vec![(name, cmd)];
    }

    if package.has_lib {
        cmd.arg("--lib");
    }
    if package.has_bins {
        cmd.arg("--bins");
    }
    for target in package.test_targets.iter().filter(|t| *t != KERNEL_TEST) {
        cmd.args(["--test", target]);
    }
    let mut commands = vec![(name, cmd)];
    if package.has_lib {
        // Doc tests cannot be selected together with other targets.
        let mut doc = workspace::cargo();
        doc.args(["test", "-p", &package.name, "--doc"]);
        commands.push((format!("doctest {}", package.name), doc));
    }
    commands
}

/// The root-only tests of [`ROOT_TESTS`], as root, or a visible skip.
fn kernel_tests(packages: &[Package]) -> Step {
    let name = "kernel tests (root, --ignored)".to_owned();
    let exists = packages
        .iter()
        .any(|p| p.name == HELPER_PACKAGE && p.test_targets.iter().any(|t| t == KERNEL_TEST));
    if !exists {
        let reason = format!(
            "skipped: package {HELPER_PACKAGE} has no `{KERNEL_TEST}` test target (app/helper/tests/{KERNEL_TEST}.rs) yet"
        );
        println!("\n==> {name}: {reason}");
        return skipped(name, reason);
    }
    if !workspace::is_root() {
        let reason = "skipped: they load eBPF programs and read tracefs, which needs root; \
                      run `sudo -E cargo xtask test` to include them"
            .to_owned();
        println!("\n==> {name}: {reason}");
        return skipped(name, reason);
    }
    let started = Instant::now();
    let mut failed = false;
    for (package, targets) in ROOT_TESTS {
        let mut cmd = workspace::cargo();
        cmd.args(["test", "-p", package]);
        for target in *targets {
            cmd.args(["--test", target]);
        }
        cmd.args(["--", "--ignored", "--test-threads=1"]);
        for child in CHILD_ONLY_TESTS {
            cmd.args(["--skip", child]);
        }
        let step = run_step(
            &format!("{name} {package}"),
            &mut cmd,
            "see the failing kernel tests above",
        );
        failed |= matches!(step.outcome, Outcome::Fail);
    }
    Step {
        name,
        outcome: if failed { Outcome::Fail } else { Outcome::Pass },
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Every fuzz target for [`FUZZ_SECONDS`]; a crash fails the step.
fn fuzz_step() -> Step {
    let name = format!(
        "fuzz ({} targets, {FUZZ_SECONDS} s each)",
        fuzz::TARGETS.len()
    );
    println!("\n==> {name}");
    timed_step(name, || {
        let reports = fuzz::fuzz(&fuzz::TARGETS, FUZZ_SECONDS)?;
        fuzz::print_reports(&reports);
        if reports.iter().any(|r| r.crash.is_some()) {
            bail!("a target crashed; `cargo xtask fuzz TARGET` replays and explores it");
        }
        Ok(())
    })
}

/// The Debian package: built, installed, its helper run as the unit says,
/// removed and purged (root only).
fn package_step() -> Step {
    let name = "package (dpkg -i, unit, remove, purge)".to_owned();
    if let Some(reason) = package_test::unable() {
        let reason = format!("skipped: {reason}");
        println!("\n==> {name}: {reason}");
        return skipped(name, reason);
    }
    println!("\n==> {name}");
    timed_step(name, || package_test::run(true))
}

/// Runs `action` as the step `name`, timing it; an error fails the step.
fn timed_step(name: String, action: impl FnOnce() -> Result<()>) -> Step {
    let started = Instant::now();
    let outcome = match action() {
        Ok(()) => Outcome::Pass,
        Err(err) => {
            eprintln!("==> {name}: {err:#}");
            Outcome::Fail
        }
    };
    Step {
        name,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// `cargo xtask test-vm`, last: kprobe and fentry, which this machine's
/// kernel lacks, on Debian kernels in QEMU. Skipped only when QEMU cannot
/// be installed (and, like the kernel tests, when not root).
fn vm_tests() -> Step {
    let name = "vm tests (kprobe, fentry; test-vm)".to_owned();
    if !workspace::is_root() {
        let reason = "skipped: installing QEMU and loading eBPF need root; \
                      run `sudo -E cargo xtask test` (or `cargo xtask test-vm` alone)"
            .to_owned();
        println!("\n==> {name}: {reason}");
        return skipped(name, reason);
    }
    println!("\n==> {name}");
    let started = Instant::now();
    if let Err(err) = test_vm::install_qemu() {
        let reason = format!("skipped: QEMU could not be installed: {err:#}");
        println!("==> {name}: {reason}");
        return skipped(name, reason);
    }
    let outcome = match test_vm::run() {
        Ok(()) => Outcome::Pass,
        Err(err) => {
            eprintln!("==> {name}: {err:#}");
            Outcome::Fail
        }
    };
    Step {
        name,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn skipped(name: String, reason: String) -> Step {
    Step {
        name,
        outcome: Outcome::Skip(reason),
        seconds: 0.0,
    }
}

fn print_summary(steps: &[Step]) {
    let width = steps.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
    println!("\n{:<width$}  {:<6}  {:>8}", "step", "result", "seconds");
    println!("{}", "-".repeat(width + 18));
    for step in steps {
        let result = match step.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skip(_) => "skip",
        };
        println!("{:<width$}  {result:<6}  {:>8.1}", step.name, step.seconds);
    }
    for step in steps {
        if let Outcome::Skip(reason) = &step.outcome {
            println!("note: {}: {reason}", step.name);
        }
    }
}

/// The workspace's default members, read from `cargo metadata`.
fn default_members() -> Result<Vec<Package>> {
    let mut cmd = workspace::cargo();
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    let output = cmd
        .output()
        .with_context(|| format!("could not run `{}`", proc::describe(&cmd)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}. Check that every Cargo.toml in the workspace parses.",
            proc::describe(&cmd),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")?;
    let default_ids: Vec<&str> = metadata["workspace_default_members"]
        .as_array()
        .context("cargo metadata has no workspace_default_members (cargo older than 1.71?)")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?;

    let mut members = Vec::new();
    for package in packages {
        let Some(id) = package["id"].as_str() else {
            continue;
        };
        if !default_ids.contains(&id) {
            continue;
        }
        let mut member = Package {
            name: package["name"].as_str().unwrap_or_default().to_owned(),
            has_lib: false,
            has_bins: false,
            test_targets: Vec::new(),
        };
        for target in package["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let target_name = target["name"].as_str().unwrap_or_default();
            if kinds.iter().any(|k| {
                matches!(
                    *k,
                    "lib" | "rlib" | "dylib" | "cdylib" | "staticlib" | "proc-macro"
                )
            }) {
                member.has_lib = true;
            }
            if kinds.contains(&"bin") {
                member.has_bins = true;
            }
            if kinds.contains(&"test") {
                member.test_targets.push(target_name.to_owned());
            }
        }
        members.push(member);
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}
