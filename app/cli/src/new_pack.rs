//! `microscope new-pack --lang c|rust DIR`: a new probe pack, ready to build.
//!
//! The templates are the files in `assets/packs/templates/`, compiled in;
//! `PACK_ID` becomes the pack's id (the directory's name, made a valid id)
//! and `CRATE_NAME` the Rust crate's name. The kernel tests build both
//! templates and load them into the helper, so what this writes works.

use crate::cli::{NewPackArgs, PackLanguage};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A template file: its path inside the new pack (with placeholders) and
/// its text.
type TemplateFile = (&'static str, &'static str);

macro_rules! template {
    ($lang:literal, $($path:literal),* $(,)?) => {
        &[$((
            $path,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/packs/templates/", $lang, "/", $path)),
        )),*]
    };
}

const C_TEMPLATE: &[TemplateFile] =
    template!("c", "pack.toml", "probe.toml", "PACK_ID.bpf.c", "Makefile");

const RUST_TEMPLATE: &[TemplateFile] = template!(
    "rust",
    "pack.toml",
    "probe.toml",
    "program/Cargo.toml",
    "program/rust-toolchain.toml",
    "program/.cargo/config.toml",
    "program/src/main.rs",
);

/// `microscope new-pack`: writes the pack and prints what to do next.
pub fn run(args: &NewPackArgs) -> anyhow::Result<ExitCode> {
    let next = new_pack(&args.dir, args.lang).map_err(anyhow::Error::msg)?;
    print!("{next}");
    Ok(ExitCode::SUCCESS)
}

/// Writes a new pack into `dir` (which must not exist or be empty); returns
/// what to do next, for the person.
pub fn new_pack(dir: &Path, lang: PackLanguage) -> Result<String, String> {
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!(
            "{} already exists and is not empty; choose a new directory",
            dir.display()
        ));
    }
    let id = pack_id(dir)?;
    let crate_name = id.replace('-', "_");
    let files = match lang {
        PackLanguage::C => C_TEMPLATE,
        PackLanguage::Rust => RUST_TEMPLATE,
    };
    for (path, text) in files {
        let path: PathBuf = dir.join(path.replace("PACK_ID", &id));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let text = text
            .replace("PACK_ID", &id)
            .replace("CRATE_NAME", &crate_name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(next_steps(
        &shell_quote(&dir.display().to_string()),
        &id,
        &crate_name,
        lang,
    ))
}

/// What to run next, each line from the directory `new-pack` ran in (so
/// they can be pasted one after the other), as docs/packs.md does.
fn next_steps(d: &str, id: &str, crate_name: &str, lang: PackLanguage) -> String {
    let build = match lang {
        PackLanguage::C => format!("make -C {d}"),
        PackLanguage::Rust => format!(
            "(cd {d}/program && cargo build --release) && cp {d}/program/target/bpfel-unknown-none/release/{crate_name} {d}/{id}.bpf.o"
        ),
    };
    format!(
        "wrote the pack `{id}` in {d}: a probe `{id}:opens` that counts openat() calls per process and reports each failure.\n\
         next (docs/packs.md explains each step):\n  \
         {build}\n  \
         microscope check-pack {d}\n  \
         sudo install -d /etc/microscope/packs/{id} && sudo cp {d}/*.toml {d}/{id}.bpf.o /etc/microscope/packs/{id}/\n  \
         sudo microscoped   # (re)start it: the helper reads packs when it starts\n  \
         microscope watch --probe {id}:opens\n"
    )
}

/// `path` as one shell word: as it is when it has only safe characters,
/// else in single quotes.
fn shell_quote(path: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !path.is_empty() && path.chars().all(safe) {
        path.to_owned()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}

/// The directory's name as a pack id: lowercase, `[a-z0-9_-]`.
fn pack_id(dir: &Path) -> Result<String, String> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        format!(
            "{} has no usable directory name for the pack's id",
            dir.display()
        )
    })?;
    let id: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "the pack's id comes from the directory's name, and `{name}` does not start with a letter; choose another directory name"
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_templates_write_a_pack_whose_manifest_is_valid() {
        for lang in [PackLanguage::C, PackLanguage::Rust] {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("My Pack");
            let next = new_pack(&dir, lang).unwrap();
            assert!(next.contains("microscope check-pack"), "{next}");
            // The manifest is valid; only the object is missing until built.
            let checked = microscope_catalogue::check_pack_dir(&dir).unwrap();
            assert_eq!(checked.pack.info().id, "my-pack");
            assert_eq!(checked.pack.probes()[0].id, "my-pack:opens");
            assert!(
                checked.object_problems[0].contains("my-pack.bpf.o"),
                "{:?}",
                checked.object_problems
            );
            if lang == PackLanguage::Rust {
                let cargo = std::fs::read_to_string(dir.join("program/Cargo.toml")).unwrap();
                assert!(cargo.contains("name = \"my_pack\""));
            }
        }
    }

    #[test]
    fn the_next_steps_run_from_where_new_pack_ran() {
        let c = next_steps("packs/mine", "mine", "mine", PackLanguage::C);
        assert!(c.contains("\n  make -C packs/mine\n"), "{c}");
        assert!(c.contains("\n  microscope check-pack packs/mine\n"), "{c}");
        assert!(
            c.contains(
                "sudo cp packs/mine/*.toml packs/mine/mine.bpf.o /etc/microscope/packs/mine/"
            ),
            "{c}"
        );
        let rust = next_steps("my-pack", "my-pack", "my_pack", PackLanguage::Rust);
        assert!(
            rust.contains(
                "(cd my-pack/program && cargo build --release) && cp \
                 my-pack/program/target/bpfel-unknown-none/release/my_pack my-pack/my-pack.bpf.o"
            ),
            "{rust}"
        );
        // Only the pack's files are installed, not the program's build.
        assert!(!rust.contains("cp -r"), "{rust}");
        assert_eq!(shell_quote("/tmp/My Pack"), "'/tmp/My Pack'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("a/b-c_d.e"), "a/b-c_d.e");
    }

    #[test]
    fn an_existing_directory_is_not_overwritten() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("x"), "mine").unwrap();
        let err = new_pack(root.path(), PackLanguage::C).unwrap_err();
        assert!(err.contains("already exists and is not empty"), "{err}");
        let err = new_pack(&root.path().join("1abc"), PackLanguage::C).unwrap_err();
        assert!(err.contains("does not start with a letter"), "{err}");
    }
}
