//! Microscope's eBPF programs live in the `microscope-ebpf` binary
//! (`src/main.rs`), built for `bpfel-unknown-none`. This empty library exists
//! so the helper can name this package as a build dependency, which makes
//! cargo rebuild the helper when the probes change.
#![no_std]
