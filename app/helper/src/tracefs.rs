//! tracefs: where it is, and the field layout of a tracepoint from its
//! `format` file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where tracefs is usually mounted, newest first.
const TRACEFS_CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The mounted tracefs, if any (a directory with `events/`).
pub fn find() -> Option<PathBuf> {
    TRACEFS_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
}

/// Mounts tracefs at `/sys/kernel/tracing` (needs root). Returns where it is.
pub fn find_or_mount() -> Result<PathBuf, String> {
    if let Some(path) = find() {
        return Ok(path);
    }
    let target = Path::new(TRACEFS_CANDIDATES[0]);
    nix::mount::mount(
        Some("nodev"),
        target,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|err| {
        format!(
            "tracefs is not mounted and mounting it at {} failed ({err}); \
             run `sudo mount -t tracefs nodev {}`",
            target.display(),
            target.display()
        )
    })?;
    find().ok_or_else(|| {
        format!(
            "mounted tracefs at {} but it has no events/",
            target.display()
        )
    })
}

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// C declaration type, e.g. `char[16]`, `__data_loc char[]`, `pid_t`.
    pub c_type: String,
    /// Byte offset from the start of the record.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// The fields of one tracepoint, by name.
pub type Fields = HashMap<String, Field>;

/// Parses a tracepoint `format` file into its fields by name.
///
/// Lines look like
/// `\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;`.
pub fn parse_format(text: &str) -> Fields {
    field_lines(text).map(|f| (f.name, f.field)).collect()
}

/// Every well-formed `field:` line of a format file, in file order.
fn field_lines(text: &str) -> impl Iterator<Item = FormatField> + '_ {
    text.lines().filter_map(|line| {
        let mut decl = None;
        let mut offset = None;
        let mut size = None;
        let mut signed = false;
        for part in line.split(';') {
            let part = part.trim();
            if let Some(rest) = part.strip_prefix("field:") {
                decl = Some(rest.trim());
            } else if let Some(rest) = part.strip_prefix("offset:") {
                offset = rest.trim().parse().ok();
            } else if let Some(rest) = part.strip_prefix("size:") {
                size = rest.trim().parse().ok();
            } else if let Some(rest) = part.strip_prefix("signed:") {
                signed = rest.trim() == "1";
            }
        }
        let (c_type, name) = split_declaration(decl?)?;
        Some(FormatField {
            name,
            field: Field {
                c_type,
                offset: offset?,
                size: size?,
            },
            signed,
        })
    })
}

/// `char prev_comm[16]` → (`char[16]`, `prev_comm`); `pid_t pid` → (`pid_t`, `pid`).
fn split_declaration(decl: &str) -> Option<(String, String)> {
    let (decl, array) = match decl.find('[') {
        Some(i) if decl.ends_with(']') => (&decl[..i], &decl[i..]),
        _ => (decl, ""),
    };
    // After the last space or `*`, whatever its width in UTF-8 (U+0085 is
    // whitespace too, and two bytes long).
    let name_start = decl
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || c == '*')
        .map(|(i, c)| i + c.len_utf8())?;
    let name = decl[name_start..].trim();
    if name.is_empty() {
        return None;
    }
    let c_type = format!("{}{array}", decl[..name_start].trim());
    Some((c_type, name.to_owned()))
}

/// One field of a tracepoint record, in record order, with its name and sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatField {
    /// Field name, e.g. `prev_pid`.
    pub name: String,
    /// Where it is and how big.
    pub field: Field,
    /// Whether an integer field is signed.
    pub signed: bool,
}

/// A tracepoint's whole `format` file: its id (the `common_type` at the
/// start of each record) and its fields in record order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    /// `category:name`.
    pub id: String,
    /// The tracepoint's numeric id (`ID:` line).
    pub event_id: u16,
    /// Every field, `common_*` ones included, in offset order.
    pub fields: Vec<FormatField>,
}

impl Format {
    /// The fields a person cares about: all but the `common_*` header.
    pub fn own_fields(&self) -> impl Iterator<Item = &FormatField> {
        self.fields
            .iter()
            .filter(|f| !f.name.starts_with("common_"))
    }
}

/// Parses a whole `format` file. `None` without an `ID:` line.
pub fn parse_full_format(id: &str, text: &str) -> Option<Format> {
    let event_id = text
        .lines()
        .find_map(|line| line.strip_prefix("ID:"))
        .and_then(|n| n.trim().parse().ok())?;
    let mut fields: Vec<FormatField> = field_lines(text).collect();
    fields.sort_by_key(|f| f.field.offset);
    Some(Format {
        id: id.to_owned(),
        event_id,
        fields,
    })
}

/// Reads the whole format of tracepoint `category:name`; an error is a
/// sentence saying what is wrong.
pub fn read_full_format(tracefs: &Path, category: &str, name: &str) -> Result<Format, String> {
    if !valid_component(category) || !valid_component(name) {
        return Err(format!(
            "`{category}:{name}` is not a tracepoint name (letters, digits and `_` only)"
        ));
    }
    let path = tracefs
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let text = std::fs::read_to_string(&path).map_err(|err| {
        format!(
            "this kernel has no tracepoint {category}:{name} ({}: {err}); \
             `microscope probes --tracepoints` lists the ones it has",
            path.display()
        )
    })?;
    parse_full_format(&format!("{category}:{name}"), &text).ok_or_else(|| {
        format!(
            "the format file of {category}:{name} has no ID line: {}",
            path.display()
        )
    })
}

/// A tracepoint category or name: no path tricks.
fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && s != "."
        && s != ".."
}

/// Every tracepoint of the running kernel, `category:name`, sorted.
pub fn available_events(tracefs: &Path) -> Result<Vec<String>, String> {
    let path = tracefs.join("available_events");
    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("could not read {}: {err}", path.display()))?;
    let mut events: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| line.contains(':'))
        .map(str::to_owned)
        .collect();
    events.sort();
    events.dedup();
    Ok(events)
}

/// Reads and parses the format of `category:name` under `tracefs`.
pub fn read_format(tracefs: &Path, category: &str, name: &str) -> Result<Fields, String> {
    let path = tracefs
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let text = std::fs::read_to_string(&path).map_err(|err| {
        format!(
            "this kernel has no tracepoint {category}:{name} ({}: {err})",
            path.display()
        )
    })?;
    Ok(parse_format(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch\nID: 316\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
\nprint fmt: \"prev_comm=%s\", REC->prev_comm\n";

    #[test]
    fn parses_fields_of_every_shape() {
        let fields = parse_format(SWITCH);
        assert_eq!(
            fields["prev_comm"],
            Field {
                c_type: "char[16]".into(),
                offset: 8,
                size: 16
            }
        );
        assert_eq!(
            fields["prev_pid"],
            Field {
                c_type: "pid_t".into(),
                offset: 24,
                size: 4
            }
        );
        assert_eq!(fields["common_type"].c_type, "unsigned short");
        assert_eq!(fields["filename"].c_type, "const char *");
        assert_eq!(fields["parent_comm"].c_type, "__data_loc char[]");
        assert_eq!(fields.len(), 5);
    }

    #[test]
    fn full_format_keeps_order_sign_and_id() {
        let format = parse_full_format("sched:sched_switch", SWITCH).unwrap();
        assert_eq!(format.event_id, 316);
        let names: Vec<&str> = format.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "common_type",
                "prev_comm",
                "parent_comm",
                "prev_pid",
                "filename"
            ]
        );
        assert!(format.fields[3].signed);
        assert!(!format.fields[4].signed);
        assert_eq!(format.own_fields().count(), 4);
        assert!(parse_full_format("x:y", "format:\n").is_none());
    }

    #[test]
    fn names_with_path_tricks_are_refused() {
        let err = read_full_format(Path::new("/nonexistent"), "..", "x").unwrap_err();
        assert!(err.contains("not a tracepoint name"), "{err}");
        let err = read_full_format(Path::new("/nonexistent"), "sched", "nope").unwrap_err();
        assert!(
            err.contains("this kernel has no tracepoint sched:nope"),
            "{err}"
        );
    }

    /// Found by the `tracefs_format` fuzz target: a multi-byte whitespace
    /// character before the name made the split panic mid-character.
    #[test]
    fn multi_byte_whitespace_before_the_name_is_a_separator() {
        let fields =
            parse_format("field:\0\u{85}ab;offset:0;size:1;\nfield:int\u{3000}x;offset:4;size:4;");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields["ab"].c_type, "\0");
        assert_eq!(fields["x"].c_type, "int");
        assert!(parse_format("field:\0\u{85};offset:0;size:1;").is_empty());
    }

    #[test]
    fn garbage_gives_no_fields() {
        assert!(parse_format("").is_empty());
        assert!(parse_format("field:;offset:x;size:;\nfield:int;offset:1;size:4;").is_empty());
    }
}
