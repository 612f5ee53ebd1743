//! What can go wrong reading or merging packs, and where in a file it went
//! wrong.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A place in a manifest: the file, and the line and column when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file as the person who wrote it knows it, e.g.
    /// `assets/packs/builtin/sched.toml` or the path given to
    /// [`crate::Catalogue::load_pack_dir`].
    pub file: String,
    /// 1-based line and column (in characters), if the problem has a place
    /// inside the file.
    pub position: Option<(usize, usize)>,
}

impl Location {
    /// The whole file, no particular place in it.
    pub(crate) fn file(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            position: None,
        }
    }

    /// The place of byte `offset` in `text`, the contents of `file`.
    pub(crate) fn at(file: &str, text: &str, offset: usize) -> Self {
        // toml spans fall on character boundaries; `get` keeps a bad offset
        // from panicking and just points at the end instead.
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Self {
            file: file.to_owned(),
            position: Some((line, column)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// Why a pack could not be read, or packs could not be merged.
///
/// Every message is a sentence a pack author can act on: it starts with the
/// place (`file:line:column`) when there is one.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// A pack directory or one of its files could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The directory or file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A pack has no `pack.toml`, the file that names it.
    #[error("{origin} is not a probe pack: it has no pack.toml")]
    NoPackManifest {
        /// The pack directory.
        origin: String,
    },
    /// A file is not valid TOML, or does not have the shape of a manifest (a
    /// missing key, a key of the wrong type, an unknown key, an unknown probe
    /// type).
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's explanation.
        message: String,
    },
    /// The file parses, but what it says does not hold together (an empty
    /// summary, a target of the wrong form, a reference to a subsystem that
    /// does not exist, a duplicate id).
    #[error("{at}: {problem}")]
    Invalid {
        /// The entry at fault.
        at: Location,
        /// What is wrong with it, as a sentence.
        problem: String,
    },
    /// Two packs define the same probe, subsystem, layer or edge.
    #[error("{what} `{id}` is defined twice: by {first} and by {second}")]
    Conflict {
        /// `probe`, `subsystem`, `layer` or `edge`.
        what: &'static str,
        /// The id both packs use.
        id: String,
        /// The definition loaded first.
        first: Box<Definition>,
        /// The definition loaded second.
        second: Box<Definition>,
    },
    /// The same pack was given twice.
    #[error("pack `{id}` is loaded twice (from {first} and from {second})")]
    DuplicatePack {
        /// The pack id.
        id: String,
        /// Its first `pack.toml`.
        first: Box<Location>,
        /// Its second `pack.toml`.
        second: Box<Location>,
    },
}

/// One of two clashing definitions: which pack, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// The pack's id.
    pub pack: String,
    /// Where in the pack.
    pub at: Location,
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pack `{}` ({})", self.pack, self.at)
    }
}

impl CatalogueError {
    pub(crate) fn invalid(at: Location, problem: impl Into<String>) -> Self {
        Self::Invalid {
            at,
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        let at = Location::at("x.toml", text, text.find('2').unwrap());
        assert_eq!(at.position, Some((2, 6)));
        assert_eq!(at.to_string(), "x.toml:2:6");
        assert_eq!(Location::at("x.toml", text, 0).to_string(), "x.toml:1:1");
        assert_eq!(Location::file("x.toml").to_string(), "x.toml");
    }

    #[test]
    fn location_tolerates_an_offset_past_the_end() {
        let at = Location::at("x.toml", "a\nb", 99);
        assert_eq!(at.position, Some((2, 2)));
    }
}
