//! `cargo xtask test-vm`: the probe types this machine's kernel lacks
//! (kprobe, kretprobe, fentry, fexit), tested on Debian's cloud kernels in
//! QEMU.
//!
//! Steps, each skipped when already done so that a second run only builds
//! and boots:
//! 1. apt packages `qemu-system-x86` and `busybox-static`, and the rustup
//!    target `x86_64-unknown-linux-musl`;
//! 2. the newest Debian cloud kernel of each series in [`KERNEL_SERIES`]
//!    (`apt-get download` + `dpkg -x`, only `vmlinuz` kept, in `target/vm/`);
//! 3. the static test binary: the helper's example `vmtest`, which drives
//!    the real helper code on the VM's kernel;
//! 4. an initramfs (busybox as `/bin/sh`, `/bin/vmtest`, an `/init` script);
//! 5. one boot per kernel with the QEMU command line measured in
//!    PLATFORM.md (TCG, one thread: KVM does not work here), the serial
//!    console saved to `target/vm/<kernel>.log`, and the verdict line
//!    `MICROSCOPE-VMTEST PASS|FAIL ...` read from it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::proc::{self, as_root, run_checked, stdout_of};
use crate::{initramfs, setup, workspace};

/// apt packages the VM test needs: the emulator and a static busybox for
/// the initramfs (we write the cpio archive ourselves).
pub const APT_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static"];
/// The target of the static test binary (no libc needed in the VM).
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// Cargo profile of the test binary (see the root Cargo.toml).
const VMTEST_PROFILE: &str = "vmtest";
/// Kernel series tested: a label and the `apt-cache search --names-only`
/// pattern of its unsigned cloud image packages. Both have kprobes,
/// kretprobes, BTF and direct-call ftrace (fentry, fexit).
const KERNEL_SERIES: &[(&str, &str)] = &[
    ("6.1", r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$"),
    (
        "6.12",
        r"^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64-unsigned$",
    ),
];
/// How long one boot, test and power-off may take.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// Start of the verdict line `/init` prints.
const VERDICT: &str = "MICROSCOPE-VMTEST ";
/// Where busybox-static installs its binary.
const BUSYBOX: &str = "/bin/busybox";

/// The VM's `/init`: mounts what the helper needs, runs the test, prints
/// exactly one verdict line and powers off. It must never exit (the kernel
/// panics when init does), hence the loop at the end.
const INIT_SCRIPT: &str = r#"#!/bin/sh
export PATH=/bin
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
echo "vmtest: kernel $(uname -r), $(nproc) CPUs"
MICROSCOPE_VMTEST_VERDICT=/tmp/verdict RUST_LOG=warn /bin/vmtest
rc=$?
if [ $rc -eq 0 ] && [ -s /tmp/verdict ]; then
    echo "MICROSCOPE-VMTEST PASS $(cat /tmp/verdict)"
elif [ -s /tmp/verdict ]; then
    echo "MICROSCOPE-VMTEST FAIL $(cat /tmp/verdict)"
else
    echo "MICROSCOPE-VMTEST FAIL vmtest exited with status $rc without a verdict (it crashed; see above)"
fi
poweroff -f
while true; do sleep 60; done
"#;

/// How one kernel's boot went.
struct Boot {
    kernel: String,
    verdict: Result<String, String>,
    seconds: f64,
    log: PathBuf,
}

/// Runs `cargo xtask test-vm`.
pub fn run() -> Result<()> {
    let started = Instant::now();
    install_qemu()?;
    println!("test-vm: {MUSL_TARGET} {}", musl_target()?);
    let vm_dir = vm_dir();
    fs::create_dir_all(&vm_dir)
        .with_context(|| format!("could not create {}", vm_dir.display()))?;
    let mut kernels = Vec::new();
    for (series, pattern) in KERNEL_SERIES {
        kernels.push(kernel(&vm_dir, series, pattern)?);
    }
    let vmtest = build_vmtest()?;
    let initrd = vm_dir.join("initramfs.cpio");
    write_initramfs(&vmtest, &initrd)?;
    let prepared_s = started.elapsed().as_secs_f64();

    let mut boots = Vec::new();
    for (name, vmlinuz) in &kernels {
        println!("\n==> test-vm: booting {name}");
        let boot = boot(&vm_dir, name, vmlinuz, &initrd)?;
        match &boot.verdict {
            Ok(summary) => println!("==> test-vm: {name}: PASS {summary}"),
            Err(reason) => println!("==> test-vm: {name}: FAIL {reason}"),
        }
        boots.push(boot);
    }

    println!("\ntest-vm: prepared (packages, kernels, build, initramfs) in {prepared_s:.1} s");
    let width = boots
        .iter()
        .map(|b| b.kernel.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<width$}  {:<6}  {:>7}  log",
        "kernel", "result", "seconds"
    );
    for boot in &boots {
        let result = if boot.verdict.is_ok() { "pass" } else { "FAIL" };
        println!(
            "{:<width$}  {result:<6}  {:>7.1}  {}",
            boot.kernel,
            boot.seconds,
            boot.log.display()
        );
    }
    let failed: Vec<String> = boots
        .iter()
        .filter_map(|b| {
            b.verdict
                .as_ref()
                .err()
                .map(|r| format!("{}: {r}", b.kernel))
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "the VM test failed on {} kernel(s): {}. The serial console logs are listed above.",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// Installs QEMU and busybox when missing. An error means the VM test
/// cannot run on this machine at all.
pub fn install_qemu() -> Result<()> {
    let packages = setup::install_apt_packages(APT_PACKAGES)?;
    println!("test-vm: apt packages      {packages}");
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing although busybox-static is installed; reinstall it");
    }
    Ok(())
}

/// `target/vm`, beside cargo's own output.
fn vm_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace::root().join("target"), PathBuf::from)
        .join("vm")
}

/// `rustup` for the toolchain this workspace builds with.
fn rustup() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(workspace::root());
    cmd
}

fn musl_target() -> Result<String> {
    let installed = stdout_of(rustup().args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|line| line.trim() == MUSL_TARGET) {
        return Ok("ok".to_owned());
    }
    run_checked(
        rustup().args(["target", "add", MUSL_TARGET]),
        "adding the musl target",
        "Check the network, or run `rustup target add x86_64-unknown-linux-musl` by hand.",
    )?;
    Ok("added".to_owned())
}

/// The newest package matching `pattern`, its `vmlinuz` extracted into
/// `vm_dir/kernels/` (downloaded only the first time). Returns the
/// package name and the kernel image.
fn kernel(vm_dir: &Path, series: &str, pattern: &str) -> Result<(String, PathBuf)> {
    let mut packages = apt_search(pattern);
    if packages.is_empty() {
        // A fresh machine may not have read the package lists yet.
        run_checked(
            as_root("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["update", "-q"]),
            "apt-get update",
            "Check the network and that you may use sudo.",
        )?;
        packages = apt_search(pattern);
    }
    let Some(package) = packages.into_iter().max_by_key(|p| version_key(p)) else {
        bail!(
            "apt knows no Debian {series} cloud kernel (`apt-cache search --names-only '{pattern}'` \
             is empty); the VM test needs Debian 12's apt sources (bookworm and \
             bookworm-security or backports)"
        );
    };
    let kernels = vm_dir.join("kernels");
    let vmlinuz = kernels.join(format!("{package}.vmlinuz"));
    if vmlinuz.exists() {
        println!("test-vm: kernel {series:<6}    {package} (cached)");
        return Ok((package, vmlinuz));
    }
    let download = vm_dir.join("download");
    // Whatever an interrupted run left behind.
    let _ignored = fs::remove_dir_all(&download);
    fs::create_dir_all(&download)
        .with_context(|| format!("could not create {}", download.display()))?;
    fs::create_dir_all(&kernels)
        .with_context(|| format!("could not create {}", kernels.display()))?;
    println!("test-vm: kernel {series:<6}    downloading {package}");
    run_checked(
        Command::new("apt-get")
            .current_dir(&download)
            .args(["download", "-q", &package]),
        "downloading the kernel package",
        "Check the network; `apt-get download` fetches from the configured apt sources.",
    )?;
    let deb = fs::read_dir(&download)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", download.display()))?;
    let tree = download.join("tree");
    run_checked(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&tree),
        "unpacking the kernel package",
        "dpkg -x needs dpkg-deb, part of every Debian system.",
    )?;
    let boot_dir = tree.join("boot");
    let image = fs::read_dir(&boot_dir)
        .with_context(|| format!("the package has no {}", boot_dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .with_context(|| format!("{package} has no boot/vmlinuz-*"))?;
    fs::copy(&image, &vmlinuz).with_context(|| {
        format!(
            "could not copy {} to {}",
            image.display(),
            vmlinuz.display()
        )
    })?;
    // Only the image is needed; the modules are ~100 MB.
    let _ignored = fs::remove_dir_all(&download);
    Ok((package, vmlinuz))
}

/// Package names `apt-cache search --names-only pattern` prints.
fn apt_search(pattern: &str) -> Vec<String> {
    stdout_of(Command::new("apt-cache").args(["search", "--names-only", pattern]))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The numbers in a package name, in order, for picking the newest:
/// `linux-image-6.1.0-56-cloud-amd64-unsigned` → `[6, 1, 0, 56, 64]`.
fn version_key(package: &str) -> Vec<u64> {
    package
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect()
}

/// Builds the static test binary; returns its path.
fn build_vmtest() -> Result<PathBuf> {
    println!("test-vm: building the static test binary");
    let mut cmd = workspace::cargo();
    cmd.args([
        "build",
        "-p",
        "microscoped",
        "--example",
        "vmtest",
        "--target",
        MUSL_TARGET,
        "--profile",
        VMTEST_PROFILE,
    ]);
    run_checked(
        &mut cmd,
        "building the VM test binary",
        "Fix the compiler errors above; `cargo xtask setup` installs bpf-linker and rust-src.",
    )?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace::root().join("target"), PathBuf::from);
    Ok(target_dir
        .join(MUSL_TARGET)
        .join(VMTEST_PROFILE)
        .join("examples")
        .join("vmtest"))
}

fn write_initramfs(vmtest: &Path, out: &Path) -> Result<()> {
    let busybox = fs::read(BUSYBOX).with_context(|| format!("could not read {BUSYBOX}"))?;
    // A third-party pack with fentry and kprobe programs, in the helper's
    // trusted directory (the archive's entries are root's, not writable by
    // others).
    let pack_dir = workspace::root().join("assets/packs/vm-functions");
    let object_path = vm_dir().join("opens.bpf.o");
    crate::setup::install_apt_packages(crate::setup::C_PACK_PACKAGES)?;
    crate::packs::build_c(&pack_dir.join("opens.bpf.c"), &object_path)?;
    let pack_toml = fs::read(pack_dir.join("pack.toml"))?;
    let vfs_toml = fs::read(pack_dir.join("vfs.toml"))?;
    let object = fs::read(&object_path)?;
    let test = fs::read(vmtest).with_context(|| format!("could not read {}", vmtest.display()))?;
    let mut entries = vec![
        initramfs::Entry::Dir { path: "bin" },
        initramfs::Entry::Dir { path: "dev" },
        initramfs::Entry::CharDevice {
            path: "dev/console",
            major: 5,
            minor: 1,
        },
        initramfs::Entry::Dir { path: "etc" },
        // The helper gives its socket to group `microscope`.
        initramfs::Entry::File {
            path: "etc/group",
            mode: 0o644,
            data: b"root:x:0:\nmicroscope:x:900:\n",
        },
        initramfs::Entry::File {
            path: "etc/passwd",
            mode: 0o644,
            data: b"root:x:0:0:root:/:/bin/sh\n",
        },
        initramfs::Entry::Dir {
            path: "etc/microscope",
        },
        initramfs::Entry::Dir {
            path: "etc/microscope/packs",
        },
        initramfs::Entry::Dir {
            path: "etc/microscope/packs/vm-functions",
        },
        initramfs::Entry::File {
            path: "etc/microscope/packs/vm-functions/pack.toml",
            mode: 0o644,
            data: &pack_toml,
        },
        initramfs::Entry::File {
            path: "etc/microscope/packs/vm-functions/vfs.toml",
            mode: 0o644,
            data: &vfs_toml,
        },
        initramfs::Entry::File {
            path: "etc/microscope/packs/vm-functions/opens.bpf.o",
            mode: 0o644,
            data: &object,
        },
        initramfs::Entry::Dir { path: "proc" },
        initramfs::Entry::Dir { path: "sys" },
        initramfs::Entry::Dir { path: "tmp" },
        initramfs::Entry::File {
            path: "init",
            mode: 0o755,
            data: INIT_SCRIPT.as_bytes(),
        },
        initramfs::Entry::File {
            path: "bin/busybox",
            mode: 0o755,
            data: &busybox,
        },
        initramfs::Entry::File {
            path: "bin/vmtest",
            mode: 0o755,
            data: &test,
        },
    ];
    // The other applets are linked by `/init` itself (`busybox --install`).
    entries.push(initramfs::Entry::Symlink {
        path: "bin/sh",
        target: "busybox",
    });
    let mut archive = Vec::with_capacity(busybox.len() + test.len() + 4096);
    initramfs::write(&mut archive, &entries)?;
    fs::write(out, &archive).with_context(|| format!("could not write {}", out.display()))?;
    println!(
        "test-vm: initramfs         {} ({:.1} MB)",
        out.display(),
        archive.len() as f64 / 1e6
    );
    Ok(())
}

/// Boots `vmlinuz` with `initrd`, saves the console to `<name>.log` and
/// reads the verdict from it.
fn boot(vm_dir: &Path, name: &str, vmlinuz: &Path, initrd: &Path) -> Result<Boot> {
    let log = vm_dir.join(format!("{name}.log"));
    let console =
        fs::File::create(&log).with_context(|| format!("could not create {}", log.display()))?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "tcg,thread=single",
        "-cpu",
        "max",
        "-m",
        "1G",
        "-smp",
        "2",
    ])
    .arg("-kernel")
    .arg(vmlinuz)
    .arg("-initrd")
    .arg(initrd)
    .args([
        "-append",
        "console=ttyS0 panic=-1 quiet",
        "-nographic",
        "-no-reboot",
    ])
    .stdin(Stdio::null())
    .stdout(console.try_clone()?)
    .stderr(console);
    let started = Instant::now();
    let mut qemu = proc::spawn_guarded(
        &mut cmd,
        "qemu-system-x86_64",
        "Install it with `apt-get install qemu-system-x86` (cargo xtask test-vm does).",
    )?;
    let finished = qemu.wait_timeout(BOOT_TIMEOUT)?;
    let seconds = started.elapsed().as_secs_f64();
    // Stops QEMU if it is still running.
    drop(qemu);
    let text = fs::read_to_string(&log).unwrap_or_default();
    let verdict = match (verdict(&text), finished) {
        (Some(verdict), _) => verdict,
        (None, None) => Err(format!(
            "no verdict within {} s (QEMU was stopped); see {}",
            BOOT_TIMEOUT.as_secs(),
            log.display()
        )),
        (None, Some(status)) => Err(format!(
            "QEMU exited ({status}) without a verdict; the kernel or QEMU failed, see {}",
            log.display()
        )),
    };
    Ok(Boot {
        kernel: kernel_release(&text).unwrap_or_else(|| name.to_owned()),
        verdict,
        seconds,
        log,
    })
}

/// The first `MICROSCOPE-VMTEST PASS|FAIL ...` line of a console log.
fn verdict(console: &str) -> Option<Result<String, String>> {
    console.lines().find_map(|line| {
        let rest = &line[line.find(VERDICT)? + VERDICT.len()..];
        let rest = rest.trim_end();
        if let Some(summary) = rest.strip_prefix("PASS") {
            Some(Ok(summary.trim().to_owned()))
        } else {
            rest.strip_prefix("FAIL")
                .map(|reason| Err(reason.trim().to_owned()))
        }
    })
}

/// `uname -r` as `/init` printed it.
fn kernel_release(console: &str) -> Option<String> {
    console.lines().find_map(|line| {
        let rest = line.split("vmtest: kernel ").nth(1)?;
        rest.split(',').next().map(|r| r.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_package_wins() {
        let packages = [
            "linux-image-6.1.0-9-cloud-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            "linux-image-6.1.0-47-cloud-amd64-unsigned",
        ];
        assert_eq!(
            packages.iter().max_by_key(|p| version_key(p)),
            Some(&"linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        let packages = [
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.99+deb12-cloud-amd64-unsigned",
        ];
        assert_eq!(
            packages.iter().max_by_key(|p| version_key(p)),
            Some(&"linux-image-6.12.117+deb12-cloud-amd64-unsigned")
        );
    }

    #[test]
    fn verdicts_are_read_from_the_console() {
        let pass = "[    1.0] booting\r\nvmtest: kernel 6.1.0-56-cloud-amd64, 2 CPUs\r\n\
                    MICROSCOPE-VMTEST PASS kprobe=500 (total 900 ms)\r\n";
        assert_eq!(
            verdict(pass),
            Some(Ok("kprobe=500 (total 900 ms)".to_owned()))
        );
        assert_eq!(
            kernel_release(pass).as_deref(),
            Some("6.1.0-56-cloud-amd64")
        );
        let fail = "MICROSCOPE-VMTEST FAIL kprobes unavailable\n";
        assert_eq!(verdict(fail), Some(Err("kprobes unavailable".to_owned())));
        // The init script's own text is never echoed, but a kernel message
        // glued to the front of the line must not hide the verdict.
        assert_eq!(
            verdict("[ 2.1] x MICROSCOPE-VMTEST PASS ok"),
            Some(Ok("ok".to_owned()))
        );
        assert_eq!(verdict("no verdict here\n"), None);
        assert_eq!(verdict(""), None);
        assert_eq!(kernel_release(""), None);
    }

    #[test]
    fn the_init_script_prints_one_verdict_and_never_exits() {
        assert_eq!(INIT_SCRIPT.matches("poweroff -f").count(), 1);
        assert!(
            INIT_SCRIPT
                .trim_end()
                .ends_with("while true; do sleep 60; done")
        );
        for mount in ["proc", "sysfs", "devtmpfs", "tracefs", "debugfs", "bpf"] {
            assert!(
                INIT_SCRIPT.contains(&format!("mount -t {mount} ")),
                "{mount}"
            );
        }
    }
}
