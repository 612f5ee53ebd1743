//! Guided tours: scenarios a student follows step by step on the map, as
//! data next to a pack's manifests (`tours/*.toml`), so a pack or a teacher
//! can add one without touching Rust.
//!
//! ```toml
//! # tours/read.toml
//! [tour]
//! id = "read"
//! title = "read() of a file"
//! summary = "From the system call to the disk and back."
//! syscall = "read"          # the call the waterfall follows (optional)
//!
//! [[step]]
//! title = "The system call"
//! text = "The program asks the kernel for bytes..."
//! nodes = ["user", "syscalls"]
//! edges = ["user -> syscalls"]
//! probes = ["syscalls:sys_enter_read", "syscalls:sys_exit_read"]
//! action = "read-uncached"  # what the app can do for the student (optional)
//! follow = true             # offer the waterfall of one call (optional)
//! ```
//!
//! A tour is checked on its own here (shape, ids, an action the app knows);
//! its nodes, edges and probes are checked against every loaded pack when
//! packs are merged ([`crate::Catalogue::from_packs`]).

use serde::Deserialize;
use toml::Spanned;

use crate::error::{CatalogueError, Location};
use crate::manifest::{self, Source};

/// The directory of a pack that holds its tours.
pub const TOURS_DIR: &str = "tours";

/// Something the app does for the student, unprivileged, in a thread or a
/// child process of its own, so a step has fresh evidence to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TourAction {
    /// Read a small file the app wrote (a page-cache hit).
    ReadFile,
    /// Write a file, sync it, drop its pages from the cache
    /// (`posix_fadvise(DONTNEED)`), then read it: a miss that goes to disk.
    ReadUncached,
    /// Write a file and `fsync` it.
    WriteFsync,
    /// Start a program (`/bin/true`) and wait for it.
    RunProgram,
    /// Send a message over a loopback TCP connection and read it back.
    TcpLoopback,
    /// Map fresh anonymous memory and touch every page.
    TouchMemory,
}

impl TourAction {
    /// Every action, in documentation order.
    pub const ALL: [Self; 6] = [
        Self::ReadFile,
        Self::ReadUncached,
        Self::WriteFsync,
        Self::RunProgram,
        Self::TcpLoopback,
        Self::TouchMemory,
    ];

    /// The spelling in tour files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadFile => "read-file",
            Self::ReadUncached => "read-uncached",
            Self::WriteFsync => "write-fsync",
            Self::RunProgram => "run-program",
            Self::TcpLoopback => "tcp-loopback",
            Self::TouchMemory => "touch-memory",
        }
    }

    /// The thread of the bundled demo's workload (`cargo xtask demo`,
    /// `xtask/src/workload.rs`) that does this action over and over: in a
    /// recording, the step's evidence shows its events first.
    pub fn demo_thread(self) -> &'static str {
        match self {
            Self::ReadFile => "tour-hit",
            Self::ReadUncached => "tour-read",
            Self::WriteFsync => "tour-write",
            Self::RunProgram => "tour-exec",
            Self::TcpLoopback => "tour-tcp",
            Self::TouchMemory => "tour-fault",
        }
    }

    /// What the button says, for a student.
    pub fn button_text(self) -> &'static str {
        match self {
            Self::ReadFile => "Read a small file now",
            Self::ReadUncached => "Read a file that is not in the cache now",
            Self::WriteFsync => "Write a file and fsync it now",
            Self::RunProgram => "Start a program (/bin/true) now",
            Self::TcpLoopback => "Send a message over loopback TCP now",
            Self::TouchMemory => "Touch 8 MiB of new memory now",
        }
    }
}

/// One step of a tour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TourStep {
    /// A short title (`The block layer`).
    pub title: String,
    /// What happens and why, in a student's words.
    pub text: String,
    /// Subsystem ids to highlight on the map.
    pub nodes: Vec<String>,
    /// Map edges to highlight, `(from, to)`.
    pub edges: Vec<(String, String)>,
    /// Probes this step switches on; their events are its evidence.
    pub probes: Vec<String>,
    /// What the app can do for the student to cause fresh evidence.
    pub action: Option<TourAction>,
    /// Offer the waterfall of one call of the tour's system call.
    pub follow: bool,
    /// Where the step is written.
    pub defined_at: Location,
}

/// A guided tour: a scenario in steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tour {
    /// Unique id (`read`).
    pub id: String,
    /// Title in the Tours list.
    pub title: String,
    /// One or two sentences: what the student will see.
    pub summary: String,
    /// The system call the waterfall follows (`read`), if any.
    pub syscall: Option<String>,
    /// The steps, in order; at least one.
    pub steps: Vec<TourStep>,
    /// The pack that ships it.
    pub pack: String,
    /// Where it is defined (its `id`).
    pub defined_at: Location,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTourFile {
    tour: RawTour,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTour {
    id: Spanned<String>,
    title: Spanned<String>,
    summary: Spanned<String>,
    syscall: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    title: Spanned<String>,
    text: Spanned<String>,
    #[serde(default)]
    nodes: Vec<Spanned<String>>,
    #[serde(default)]
    edges: Vec<Spanned<String>>,
    #[serde(default)]
    probes: Vec<Spanned<String>>,
    action: Option<Spanned<TourAction>>,
    #[serde(default)]
    follow: bool,
}

/// Reads one tour file; `file` names it in error messages.
pub(crate) fn parse_tour(file: &str, text: &str, pack: &str) -> Result<Tour, CatalogueError> {
    let raw: RawTourFile = manifest::parse(file, text)?;
    let src = Source { file, text, pack };
    let id = src.slug(&raw.tour.id, "the tour id")?;
    let syscall = raw
        .tour
        .syscall
        .as_ref()
        .map(|s| {
            let name = src.required(s, "the tour's `syscall`")?;
            if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                return Err(CatalogueError::invalid(
                    src.at(s),
                    format!("the tour's `syscall` `{name}` must be a system call name such as `read` (a-z, 0-9, `_`)"),
                ));
            }
            Ok(name)
        })
        .transpose()?;
    if raw.step.is_empty() {
        return Err(CatalogueError::invalid(
            src.at(&raw.tour.id),
            format!("tour `{id}` has no steps; add at least one `[[step]]`"),
        ));
    }
    let steps = raw
        .step
        .iter()
        .enumerate()
        .map(|(i, step)| check_step(&src, &id, i + 1, step))
        .collect::<Result<_, _>>()?;
    Ok(Tour {
        title: src.required(&raw.tour.title, &format!("the title of tour `{id}`"))?,
        summary: src.required(&raw.tour.summary, &format!("the summary of tour `{id}`"))?,
        syscall,
        steps,
        pack: pack.to_owned(),
        defined_at: src.at(&raw.tour.id),
        id,
    })
}

fn check_step(
    src: &Source<'_>,
    tour: &str,
    number: usize,
    step: &RawStep,
) -> Result<TourStep, CatalogueError> {
    let what = format!("step {number} of tour `{tour}`");
    let title = src.required(&step.title, &format!("the title of {what}"))?;
    let text = src.required(&step.text, &format!("the text of {what}"))?;
    let nodes = step
        .nodes
        .iter()
        .map(|n| src.slug(n, &format!("a node of {what}")))
        .collect::<Result<Vec<_>, _>>()?;
    let edges = step
        .edges
        .iter()
        .map(|e| {
            let written = e.get_ref();
            let Some((from, to)) = written.split_once("->") else {
                return Err(CatalogueError::invalid(
                    src.at(e),
                    format!("the edge `{written}` of {what} must be written `from -> to`, e.g. `vfs -> pagecache`"),
                ));
            };
            Ok((from.trim().to_owned(), to.trim().to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let probes = step
        .probes
        .iter()
        .map(|p| {
            let id = src.required(p, &format!("a probe of {what}"))?;
            if !id.contains(':') {
                return Err(CatalogueError::invalid(
                    src.at(p),
                    format!("the probe `{id}` of {what} must be a probe id such as `block:block_rq_issue`"),
                ));
            }
            Ok(id)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() && probes.is_empty() {
        return Err(CatalogueError::invalid(
            src.at(&step.title),
            format!(
                "{what} neither highlights a node nor switches on a probe: give it `nodes` or `probes`"
            ),
        ));
    }
    Ok(TourStep {
        title,
        text,
        nodes,
        edges,
        probes,
        action: step.action.as_ref().map(|a| *a.get_ref()),
        follow: step.follow,
        defined_at: src.at(&step.title),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[tour]
id = "read"
title = "read()"
summary = "From the call to the disk."
syscall = "read"

[[step]]
title = "The call"
text = "The program asks."
nodes = ["user", "syscalls"]
edges = ["user -> syscalls"]
probes = ["syscalls:sys_enter_read"]
action = "read-uncached"
follow = true
"#;

    #[test]
    fn a_tour_file_is_read_with_its_steps() {
        let tour = parse_tour("tours/read.toml", GOOD, "builtin").unwrap();
        assert_eq!(tour.id, "read");
        assert_eq!(tour.syscall.as_deref(), Some("read"));
        let step = &tour.steps[0];
        assert_eq!(step.edges, vec![("user".to_owned(), "syscalls".to_owned())]);
        assert_eq!(step.action, Some(TourAction::ReadUncached));
        assert!(step.follow);
        assert_eq!(step.defined_at.to_string(), "tours/read.toml:9:9");
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let bad_action = GOOD.replace("read-uncached", "read-everything");
        let err = parse_tour("tours/read.toml", &bad_action, "builtin").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("tours/read.toml:14:10: unknown variant `read-everything`"),
            "{text}"
        );

        let bad_edge = GOOD.replace("user -> syscalls", "user syscalls");
        let err = parse_tour("tours/read.toml", &bad_edge, "builtin").unwrap_err();
        assert_eq!(
            err.to_string(),
            "tours/read.toml:12:10: the edge `user syscalls` of step 1 of tour `read` must be written `from -> to`, e.g. `vfs -> pagecache`"
        );

        let misspelt = GOOD.replace("follow =", "folow =");
        let err = parse_tour("tours/read.toml", &misspelt, "builtin").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tours/read.toml:15:1: unknown field `folow`"),
            "{err}"
        );
    }

    #[test]
    fn a_tour_without_steps_or_with_an_empty_step_is_refused() {
        let head = GOOD.split("[[step]]").next().unwrap();
        let err = parse_tour("t.toml", head, "builtin").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml:3:6: tour `read` has no steps; add at least one `[[step]]`"
        );
        let empty = format!("{head}[[step]]\ntitle = \"x\"\ntext = \"y\"\n");
        let err = parse_tour("t.toml", &empty, "builtin").unwrap_err();
        assert!(
            err.to_string()
                .contains("neither highlights a node nor switches on a probe"),
            "{err}"
        );
        let blank = GOOD.replace("text = \"The program asks.\"", "text = \"  \"");
        let err = parse_tour("t.toml", &blank, "builtin").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("the text of step 1 of tour `read` is empty"),
            "{err}"
        );
    }

    #[test]
    fn not_toml_at_all_is_a_syntax_error_with_a_place() {
        let err = parse_tour("t.toml", "[tour\nid=", "builtin").unwrap_err();
        assert!(err.to_string().starts_with("t.toml:1:"), "{err}");
    }

    #[test]
    fn every_action_has_a_spelling_that_parses_back() {
        for action in TourAction::ALL {
            let text = GOOD.replace("read-uncached", action.as_str());
            let tour = parse_tour("t.toml", &text, "builtin").unwrap();
            assert_eq!(tour.steps[0].action, Some(action));
        }
    }
}
