//! Where function probes attach in user space: a library's file, and the
//! function symbols of an ELF program or library. Shared by the helper
//! (checking a uprobe target) and the app (its symbol picker), read with
//! the `object` crate, lazily (symbol tables only), so large binaries cost
//! little.

use object::{Object as _, ObjectSymbol as _};
use std::path::{Path, PathBuf};

/// The file a probe pack's uprobe `binary` names: an absolute path as is,
/// or a library's file name (`libc.so.6`) looked up in the directories the
/// dynamic linker searches by default on Debian-like and other systems.
/// An error is a sentence.
pub fn find_library(binary: &str) -> Result<PathBuf, String> {
    if binary.starts_with('/') {
        return Ok(PathBuf::from(binary));
    }
    if binary.contains('/') {
        return Err(format!(
            "`{binary}` is neither an absolute path nor a library file name"
        ));
    }
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let dirs = [
        format!("/lib/{multiarch}"),
        format!("/usr/lib/{multiarch}"),
        "/lib64".to_owned(),
        "/usr/lib64".to_owned(),
        "/lib".to_owned(),
        "/usr/lib".to_owned(),
        "/usr/local/lib".to_owned(),
    ];
    dirs.iter()
        .map(|dir| Path::new(dir).join(binary))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "no library {binary} in {} (is it installed?)",
                dirs.join(", ")
            )
        })
}

/// Function symbols defined in the ELF file at `path` (from `.symtab` and
/// `.dynsym`) whose name contains `contains`: sorted, deduplicated, at most
/// `limit`; the flag says whether more matched. These are the names a
/// `uprobe:PATH:SYMBOL` id takes (mangled, as in the file).
pub fn binary_symbols(
    path: &Path,
    contains: &str,
    limit: usize,
) -> Result<(Vec<String>, bool), String> {
    let mut names = Vec::new();
    for_each_function_symbol(path, |name| {
        if name.contains(contains) {
            names.push(name.to_owned());
        }
        false
    })?;
    names.sort();
    names.dedup();
    let truncated = names.len() > limit;
    names.truncate(limit);
    Ok((names, truncated))
}

/// Whether the ELF file at `path` defines a function symbol `symbol`.
pub fn binary_has_function(path: &Path, symbol: &str) -> Result<bool, String> {
    let mut found = false;
    for_each_function_symbol(path, |name| {
        found = name == symbol;
        found
    })?;
    Ok(found)
}

/// The file offset where function `symbol` of the ELF file `file` starts,
/// as a uprobe attaches to it (`None` if the file defines no such
/// function). `name` is how errors refer to the file. Reads the already
/// open `file`, never a path, so a caller that checked the file first
/// (the helper, for a client's uprobe) reads exactly that file.
pub fn function_file_offset(
    file: std::fs::File,
    name: &Path,
    symbol: &str,
) -> Result<Option<u64>, String> {
    use object::ObjectSection as _;
    let cache = object::read::ReadCache::new(file);
    let elf = parse_elf(&cache, name)?;
    for sym in elf.symbols().chain(elf.dynamic_symbols()) {
        if sym.kind() != object::SymbolKind::Text
            || !sym.is_definition()
            || sym.name() != Ok(symbol)
        {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let section = elf.section_by_index(index).map_err(|err| {
            format!(
                "{}: a symbol's section is unreadable ({err})",
                name.display()
            )
        })?;
        let Some((section_offset, _)) = section.file_range() else {
            continue;
        };
        return sym
            .address()
            .checked_sub(section.address())
            .and_then(|within| within.checked_add(section_offset))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{}: symbol {symbol} lies outside its section; the file is damaged",
                    name.display()
                )
            });
    }
    Ok(None)
}

/// Calls `visit` with the name of every defined function symbol of the ELF
/// file at `path` until it returns true. The file is read lazily (symbol
/// tables only), so large binaries cost little.
fn for_each_function_symbol(
    path: &Path,
    mut visit: impl FnMut(&str) -> bool,
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("could not open {}: {err}", path.display()),
    })?;
    let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !is_file {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let cache = object::read::ReadCache::new(file);
    let elf = parse_elf(&cache, path)?;
    for symbol in elf.symbols().chain(elf.dynamic_symbols()) {
        if symbol.kind() != object::SymbolKind::Text || !symbol.is_definition() {
            continue;
        }
        if let Ok(name) = symbol.name()
            && !name.is_empty()
            && visit(name)
        {
            break;
        }
    }
    Ok(())
}

/// Parses the ELF headers of a file being read through `cache`.
fn parse_elf<'a>(
    cache: &'a object::read::ReadCache<std::fs::File>,
    path: &Path,
) -> Result<object::File<'a, &'a object::read::ReadCache<std::fs::File>>, String> {
    object::File::parse(cache).map_err(|err| {
        format!(
            "{} is not an ELF program or library ({err}); uprobes need one",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[unsafe(no_mangle)]
    #[inline(never)]
    extern "C" fn microscope_targets_unit_test_symbol() -> u32 {
        std::hint::black_box(42)
    }

    #[test]
    fn file_offsets_of_this_test_binarys_functions() {
        std::hint::black_box(microscope_targets_unit_test_symbol());
        let exe = std::env::current_exe().unwrap();
        let open = || std::fs::File::open(&exe).unwrap();
        let offset = function_file_offset(open(), &exe, "microscope_targets_unit_test_symbol")
            .unwrap()
            .expect("this binary defines the function");
        let size = std::fs::metadata(&exe).unwrap().len();
        assert!(offset > 0 && offset < size, "{offset} of {size}");
        assert_eq!(
            function_file_offset(open(), &exe, "no_such_function_anywhere_42"),
            Ok(None)
        );
        let text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(text.path(), "just text").unwrap();
        let err = function_file_offset(text.reopen().unwrap(), text.path(), "x").unwrap_err();
        assert!(err.contains("is not an ELF program"), "{err}");
    }
}
