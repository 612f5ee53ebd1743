//! Builds the eBPF object (`ebpf/`) with aya-build so the helper can embed it.
//!
//! That needs nightly with `rust-src` and `bpf-linker` on PATH, all installed
//! by `cargo xtask setup`.

fn main() -> anyhow::Result<()> {
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ebpf");
    let package = aya_build::Package {
        name: "microscope-ebpf",
        root_dir,
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::default()).map_err(|err| {
        anyhow::anyhow!(
            "building the eBPF programs failed: {err:#}\n\
             Run `cargo xtask setup` to install nightly's rust-src and bpf-linker."
        )
    })
}
