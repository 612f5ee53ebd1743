//! What the running kernel lets us trace, each answer with a reason.

use aya::Ebpf;
use aya::programs::FEntry;
use microscope_wire::{Availability, Capabilities};
use std::path::Path;

/// Detects the kernel's tracing features. `ebpf` is the loaded object, used to
/// try loading its `fentry_check` program: the only reliable fentry test.
pub fn detect(tracefs: Option<&Path>, ebpf: Option<&mut Ebpf>) -> Capabilities {
    detect_with(tracefs, ebpf.map(|ebpf| (ebpf, "fentry_check")))
}

/// [`detect`] without the main object: fentry is tried with the function
/// probe object's own `fn_fentry` program (for tools and tests that use
/// [`crate::FunctionProbes`] alone).
pub fn detect_standalone(tracefs: Option<&Path>) -> Capabilities {
    match crate::funcprobe::load_object() {
        Ok(mut ebpf) => detect_with(tracefs, Some((&mut ebpf, "fn_fentry"))),
        Err(reason) => {
            let mut capabilities = detect_with(tracefs, None);
            if capabilities.fentry.available || capabilities.btf.available {
                capabilities.fentry = Availability::no(format!("not tested: {reason}"));
            }
            capabilities
        }
    }
}

/// Detection, trying fentry with `fentry_program` of the given object.
fn detect_with(tracefs: Option<&Path>, fentry_program: Option<(&mut Ebpf, &str)>) -> Capabilities {
    let btf_path = Path::new("/sys/kernel/btf/vmlinux");
    let btf = if btf_path.exists() {
        Availability::yes("kernel BTF at /sys/kernel/btf/vmlinux")
    } else {
        Availability::no(
            "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing; CONFIG_DEBUG_INFO_BTF is off)",
        )
    };
    let tracefs_av = match tracefs {
        Some(p) => Availability::yes(format!("tracefs at {}", p.display())),
        None => Availability::no(
            "tracefs is not mounted; run `sudo mount -t tracefs nodev /sys/kernel/tracing`",
        ),
    };
    let pmu = |name: &str| {
        Path::new("/sys/bus/event_source/devices")
            .join(name)
            .join("type")
            .exists()
    };
    let kprobes = if pmu("kprobe") || tracefs.is_some_and(|t| t.join("kprobe_events").exists()) {
        Availability::yes("kprobe PMU present")
    } else {
        Availability::no(
            "this kernel is built without CONFIG_KPROBES: it has no kprobe PMU and no kprobe_events",
        )
    };
    let uprobes = if pmu("uprobe") {
        Availability::yes("uprobe PMU present")
    } else {
        Availability::no("this kernel is built without CONFIG_UPROBE_EVENTS: it has no uprobe PMU")
    };
    let fentry = if !btf.available {
        Availability::no("fentry needs kernel BTF, which this kernel lacks")
    } else {
        match fentry_program {
            Some((ebpf, program)) => try_fentry(ebpf, program),
            None => Availability::no("not tested: the eBPF object did not load"),
        }
    };
    Capabilities {
        tracefs: tracefs_av,
        btf,
        kprobes,
        fentry,
        uprobes,
    }
}

/// The kernel-internal ENOTSUPP, which BPF syscalls leak to user space.
const ENOTSUPP: i32 = 524;

fn try_fentry(ebpf: &mut Ebpf, program_name: &str) -> Availability {
    let btf = match aya::Btf::from_sys_fs() {
        Ok(btf) => btf,
        Err(err) => return Availability::no(format!("kernel BTF could not be parsed: {err}")),
    };
    let Some(program) = ebpf.program_mut(program_name) else {
        return Availability::no(format!(
            "not tested: the eBPF object has no {program_name} program"
        ));
    };
    let program: &mut FEntry = match program.try_into() {
        Ok(p) => p,
        Err(err) => return Availability::no(format!("not tested: {err}")),
    };
    let verdict = match program.load("do_sys_openat2", &btf) {
        Ok(()) => Availability::yes("a test fentry program on do_sys_openat2 loaded"),
        Err(aya::programs::ProgramError::LoadError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            Availability::no(
                "the kernel refuses fentry programs (EPERM on load): kernel lockdown or a \
                 restricted BPF policy forbids BPF trampolines; use tracepoints instead",
            )
        }
        Err(aya::programs::ProgramError::LoadError { io_error, .. })
            if io_error.raw_os_error() == Some(ENOTSUPP) =>
        {
            Availability::no(
                "this kernel has no BPF trampoline support (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS is off)",
            )
        }
        Err(err) => Availability::no(format!(
            "loading a test fentry program failed: {}",
            crate::tracer::describe_load_error(&err)
        )),
    };
    // Only a test: free it again.
    let _ = program.unload();
    verdict
}
