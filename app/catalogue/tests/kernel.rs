//! The built-in catalogue against the running kernel: every tracepoint it
//! names exists, with every field it documents, and every kernel function
//! it names is in the symbol table.
//!
//! These read tracefs, so they need root and tracefs mounted at
//! `/sys/kernel/tracing` (`cargo xtask setup` mounts it; CI runs as root).

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use microscope_catalogue::{Catalogue, Target};

const TRACEFS: &str = "/sys/kernel/tracing";

/// `/sys/kernel/tracing/events`, or a failure that says how to get it.
fn events_dir() -> PathBuf {
    let events = Path::new(TRACEFS).join("events");
    match fs::read_dir(&events) {
        Ok(_) => events,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => panic!(
            "cannot read {}: permission denied. These tests check the catalogue against the \
             running kernel's tracepoints and must run as root: `sudo -E cargo test -p microscope-catalogue`",
            events.display()
        ),
        Err(e) => panic!(
            "tracefs is not mounted at {TRACEFS} ({}: {e}), so the catalogue's tracepoints cannot \
             be checked against this kernel. Run `cargo xtask setup` as root (it mounts tracefs), \
             or `mount -t tracefs nodev {TRACEFS}`, then run the tests again as root.",
            events.display()
        ),
    }
}

/// The field names of a tracepoint's `format` file, or `None` if the
/// tracepoint does not exist.
fn format_fields(events: &Path, category: &str, name: &str) -> Option<BTreeSet<String>> {
    let text = fs::read_to_string(events.join(category).join(name).join("format")).ok()?;
    Some(
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("field:"))
            .filter_map(|decl| decl.split(';').next())
            // `unsigned int prev_state`, `char prev_comm[16]`,
            // `__data_loc char[] filename`: the name is the last word.
            .filter_map(|decl| decl.split_whitespace().last())
            .map(|word| word.split('[').next().unwrap_or(word).to_owned())
            .collect(),
    )
}

#[test]
fn every_tracepoint_exists_with_every_documented_field() {
    let events = events_dir();
    let catalogue = Catalogue::builtin();
    let mut problems = Vec::new();
    let mut checked = 0;
    for probe in catalogue.probes() {
        let mut fields = BTreeSet::new();
        for attachment in probe.attachments() {
            match format_fields(&events, &attachment.category, &attachment.name) {
                Some(found) => fields.extend(found),
                None => problems.push(format!(
                    "{} ({}): tracepoint {} does not exist on this kernel (no {}/{}/{}/format)",
                    probe.id,
                    probe.defined_at,
                    attachment.tracepoint(),
                    events.display(),
                    attachment.category,
                    attachment.name
                )),
            }
            checked += 1;
        }
        if fields.is_empty() {
            continue;
        }
        for doc in &probe.fields {
            if !fields.contains(&doc.name) {
                problems.push(format!(
                    "{} ({}): documents field `{}`, which its format file does not have (it has: {})",
                    probe.id,
                    probe.defined_at,
                    doc.name,
                    fields.iter().filter(|f| !f.starts_with("common_")).cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(
        checked >= 60,
        "only {checked} tracepoint attachments checked"
    );
    assert!(
        problems.is_empty(),
        "on kernel {}:\n{}",
        kernel_release(),
        problems.join("\n")
    );
}

#[test]
fn every_kernel_function_is_a_text_symbol_or_marked() {
    let kallsyms = fs::read_to_string("/proc/kallsyms").expect("read /proc/kallsyms");
    let text_symbols: BTreeSet<&str> = kallsyms
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (_address, kind, name) = (words.next()?, words.next()?, words.next()?);
            matches!(kind, "t" | "T").then_some(name)
        })
        .collect();
    assert!(
        !text_symbols.is_empty(),
        "/proc/kallsyms lists no text symbols"
    );
    let mut problems = Vec::new();
    for probe in Catalogue::builtin().probes() {
        if let Target::Function { name, .. } = &probe.target
            && !text_symbols.contains(name.as_str())
            && probe.requires.is_empty()
        {
            problems.push(format!(
                "{} ({}): `{name}` is not a text symbol in /proc/kallsyms on kernel {}; \
                 mark the probe with `requires = \"...\"` if it exists only on some kernels",
                probe.id,
                probe.defined_at,
                kernel_release()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_uprobe_target_resolves_here() {
    let mut problems = Vec::new();
    for probe in Catalogue::builtin().probes() {
        let Target::Uprobe { binary, symbol, .. } = &probe.target else {
            continue;
        };
        let Some(path) = resolve_library(binary) else {
            problems.push(format!(
                "{}: cannot find `{binary}` on this machine",
                probe.id
            ));
            continue;
        };
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        match defined_dynamic_symbols(&bytes) {
            Some(symbols) if symbols.contains(symbol.as_str()) => {}
            Some(_) => problems.push(format!(
                "{}: {} does not export `{symbol}`",
                probe.id,
                path.display()
            )),
            None => problems.push(format!(
                "{}: {} is not a 64-bit little-endian ELF file with a dynamic symbol table",
                probe.id,
                path.display()
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// An absolute path as is; a library name the way the dynamic linker finds
/// it (`ldconfig -p`), as the helper will.
fn resolve_library(binary: &str) -> Option<PathBuf> {
    if binary.starts_with('/') {
        return Path::new(binary).exists().then(|| PathBuf::from(binary));
    }
    let output = Command::new("ldconfig").arg("-p").output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let (name, path) = line.trim().split_once(" => ")?;
            (name.split_whitespace().next()? == binary).then(|| PathBuf::from(path))
        })
}

/// Names of the symbols an ELF64 little-endian file defines in its dynamic
/// symbol table (`.dynsym`): what a uprobe on `file:symbol` can find. A
/// plain reading of the headers, to need no tool such as `nm`.
fn defined_dynamic_symbols(elf: &[u8]) -> Option<BTreeSet<&str>> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let section_headers = usize::try_from(u64_at(0x28)?).ok()?;
    let header_size = usize::from(u16_at(0x3a)?);
    let count = usize::from(u16_at(0x3c)?);
    let section = |i: usize| section_headers + i * header_size;
    const SHT_DYNSYM: u32 = 11;
    let dynsym = (0..count).find(|&i| u32_at(section(i) + 4) == Some(SHT_DYNSYM))?;
    let offset = |i: usize| usize::try_from(u64_at(section(i) + 0x18)?).ok();
    let size = |i: usize| usize::try_from(u64_at(section(i) + 0x20)?).ok();
    let strtab = usize::try_from(u32_at(section(dynsym) + 0x28)?).ok()?;
    let strings = elf.get(offset(strtab)?..offset(strtab)? + size(strtab)?)?;
    let symbols = elf.get(offset(dynsym)?..offset(dynsym)? + size(dynsym)?)?;
    Some(
        symbols
            .chunks_exact(24)
            // st_shndx 0 is SHN_UNDEF: a symbol this file imports.
            .filter(|sym| sym[6..8] != [0, 0])
            .filter_map(|sym| {
                let name = usize::try_from(u32::from_le_bytes(sym[..4].try_into().ok()?)).ok()?;
                let tail = strings.get(name..)?;
                let end = tail.iter().position(|&b| b == 0)?;
                std::str::from_utf8(&tail[..end]).ok()
            })
            .collect(),
    )
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "(unknown)".to_owned())
}
