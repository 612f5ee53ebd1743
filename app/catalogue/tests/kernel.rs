//! The built-in catalogue against the running kernel: every tracepoint it
//! names exists, with every field it documents, and every kernel function
//! it names is in the symbol table.
//!
//! The tracepoint check reads tracefs, so it needs root and tracefs
//! mounted at `/sys/kernel/tracing`: it is `#[ignore]`d, and `cargo xtask
//! test` runs it as root with `--ignored` (after `cargo xtask setup` has
//! mounted tracefs) or shows the step as skipped. Run without them, it
//! fails with a sentence saying what is missing.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

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
#[ignore = "needs root and tracefs; `cargo xtask test` runs it as root"]
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
        // The same lookup the helper does.
        let path = match microscope_catalogue::targets::find_library(binary) {
            Ok(path) => path,
            Err(err) => {
                problems.push(format!("{}: {err}", probe.id));
                continue;
            }
        };
        match microscope_catalogue::targets::binary_has_function(&path, symbol) {
            Ok(true) => {}
            Ok(false) => problems.push(format!(
                "{}: {} has no function `{symbol}`",
                probe.id,
                path.display()
            )),
            Err(err) => problems.push(format!("{}: {err}", probe.id)),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "(unknown)".to_owned())
}
