//! `microscope check-pack DIR`: validate a probe pack before sharing it.

use crate::cli::CheckPackArgs;
use crate::failure::Failure;
use microscope_catalogue::{CatalogueError, Pack};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `microscope check-pack`: prints what the pack holds.
pub fn run(args: &CheckPackArgs) -> anyhow::Result<ExitCode> {
    let report = check_pack(&args.dir).map_err(|err| Failure::new(&err, 1))?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Loads the pack in `dir`, merges it with the built-in pack (which finds
/// clashing ids), and describes what it adds. The error is the catalogue's
/// sentence, with the file, line and column of the problem.
///
/// A pack with BPF objects (`type = "bpf"` probes) also has its objects
/// read as the helper's aya would, each probe checked against its object,
/// and each attach target against the running kernel as far as an
/// unprivileged user can see it; those problems are listed in the report,
/// which then ends with `not valid`, and are returned as the error.
pub fn check_pack(dir: &Path) -> Result<String, CatalogueError> {
    let checked = microscope_catalogue::check_pack_dir(dir)?;
    let mut report = describe(&checked.pack);
    let _ = describe_objects(&checked, &mut report);
    if !checked.is_clean() {
        let report = report.replacen(": valid\n", ": not valid\n", 1);
        return Err(CatalogueError::Invalid {
            at: checked.pack.info().defined_at.clone(),
            problem: format!("the pack's BPF objects cannot be loaded:\n{report}"),
        });
    }
    Ok(report)
}

fn describe_objects(
    checked: &microscope_catalogue::PackCheck,
    out: &mut String,
) -> std::fmt::Result {
    for problem in &checked.object_problems {
        writeln!(out, "  refused: {problem}")?;
    }
    for probe in &checked.probes {
        for problem in &probe.problems {
            writeln!(out, "  {}: {problem}", probe.id)?;
        }
        for target in &probe.targets {
            writeln!(out, "  {}: {target}", probe.id)?;
        }
    }
    Ok(())
}

fn describe(pack: &Pack) -> String {
    let info = pack.info();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pack {} ({}) {}: valid",
        info.id, info.name, info.version
    );
    let _ = writeln!(
        out,
        "  {} subsystems, {} probes, {} edges, {} layers",
        pack.subsystems().len(),
        pack.probes().len(),
        pack.edges().len(),
        pack.layers().len()
    );
    for probe in pack.probes() {
        let _ = writeln!(out, "  {:<40} {}", probe.id, probe.kind.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write a test file");
    }

    const PACK: &str =
        "[pack]\nid = \"mine\"\nname = \"Mine\"\ndescription = \"test\"\nversion = \"0.1.0\"\n";

    #[test]
    fn a_valid_pack_is_described() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "pack.toml", PACK);
        write(
            dir.path(),
            "extra.toml",
            "[[probe]]\nid = \"sched:sched_pi_setprio\"\nsubsystem = \"sched\"\ntype = \"tracepoint\"\ntarget = \"sched:sched_pi_setprio\"\nsummary = \"Runtime.\"\n",
        );
        let report = check_pack(dir.path()).expect("valid");
        assert!(report.contains("pack mine (Mine) 0.1.0: valid"), "{report}");
        assert!(report.contains("sched:sched_pi_setprio"), "{report}");
    }

    #[test]
    fn a_clash_with_the_builtin_pack_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "pack.toml", PACK);
        write(
            dir.path(),
            "extra.toml",
            "[[probe]]\nid = \"block:block_rq_issue\"\nsubsystem = \"block\"\ntype = \"tracepoint\"\ntarget = \"block:block_rq_issue\"\nsummary = \"Again.\"\n",
        );
        let err = check_pack(dir.path()).expect_err("clash").to_string();
        assert!(err.contains("defined twice"), "{err}");
    }

    #[test]
    fn a_missing_directory_says_so() {
        let err = check_pack(Path::new("/nonexistent/pack"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/pack"), "{err}");
    }
}
