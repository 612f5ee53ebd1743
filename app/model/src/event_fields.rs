//! An event's own fields by name, whatever probe produced it: the one
//! place that knows the fields of the built-in event kinds, shared by the
//! exports and the event inspector.

use microscope_wire::{EventData, FieldValue};
use std::fmt;

/// One field of an event, for `args` and the CSV `fields` column.
#[derive(Clone, Debug, PartialEq)]
pub enum Field<'a> {
    /// An unsigned integer.
    Unsigned(u64),
    /// A signed integer.
    Signed(i64),
    /// Text.
    Text(&'a str),
    /// A yes/no flag.
    Flag(bool),
    /// Raw bytes, shown in hex.
    Bytes(&'a [u8]),
    /// A number with the name a pack's manifest gives it (`ENOENT`,
    /// `openat`, `1.5 ms`): plotted as the number, shown as the name.
    Named(i64, &'a str),
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsigned(n) => write!(f, "{n}"),
            Self::Signed(n) => write!(f, "{n}"),
            Self::Text(s) | Self::Named(_, s) => f.write_str(s),
            Self::Flag(b) => write!(f, "{b}"),
            Self::Bytes(b) => {
                for byte in *b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl Field<'_> {
    /// The value as a number, for plotting.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Unsigned(n) => Some(*n as f64),
            Self::Signed(n) | Self::Named(n, _) => Some(*n as f64),
            Self::Flag(b) => Some(f64::from(u8::from(*b))),
            Self::Text(_) | Self::Bytes(_) => None,
        }
    }
}

/// The probe-specific fields of an event, by name.
///
/// `names` are the field names of a generically decoded probe
/// ([`ProbeInfo::fields`](microscope_wire::ProbeInfo::fields)).
pub fn fields<'a>(data: &'a EventData, names: &'a [String]) -> Vec<(&'a str, Field<'a>)> {
    use Field::{Bytes, Flag, Named, Signed, Text, Unsigned};
    match data {
        EventData::SchedSwitch {
            prev_pid,
            prev_comm,
            prev_prio,
            prev_state,
            next_pid,
            next_comm,
            next_prio,
        } => vec![
            ("prev_pid", Unsigned((*prev_pid).into())),
            ("prev_comm", Text(prev_comm)),
            ("prev_prio", Signed((*prev_prio).into())),
            ("prev_state", Unsigned(*prev_state)),
            ("next_pid", Unsigned((*next_pid).into())),
            ("next_comm", Text(next_comm)),
            ("next_prio", Signed((*next_prio).into())),
        ],
        EventData::SchedWakeup {
            pid,
            comm,
            prio,
            target_cpu,
        } => vec![
            ("pid", Unsigned((*pid).into())),
            ("comm", Text(comm)),
            ("prio", Signed((*prio).into())),
            ("target_cpu", Unsigned((*target_cpu).into())),
        ],
        EventData::SchedFork {
            parent_pid,
            child_pid,
        } => vec![
            ("parent_pid", Unsigned((*parent_pid).into())),
            ("child_pid", Unsigned((*child_pid).into())),
        ],
        EventData::SchedExec {
            pid,
            old_pid,
            filename,
        } => vec![
            ("pid", Unsigned((*pid).into())),
            ("old_pid", Unsigned((*old_pid).into())),
            ("filename", Text(filename)),
        ],
        EventData::SchedExit {
            pid,
            prio,
            group_dead,
        } => vec![
            ("pid", Unsigned((*pid).into())),
            ("prio", Signed((*prio).into())),
            ("group_dead", Flag(*group_dead)),
        ],
        EventData::Openat {
            dfd,
            filename,
            flags,
            mode,
        } => vec![
            ("dfd", Signed((*dfd).into())),
            ("filename", Text(filename)),
            ("flags", Unsigned((*flags).into())),
            ("mode", Unsigned((*mode).into())),
        ],
        EventData::Fields(values) => values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let name = names.get(i).map_or("?", String::as_str);
                let field = match value {
                    FieldValue::Int(n) => Signed(*n),
                    FieldValue::Uint(n) => Unsigned(*n),
                    FieldValue::Str(s) => Text(s),
                    FieldValue::Bytes(b) => Bytes(b),
                    FieldValue::Missing => Text("(missing)"),
                    FieldValue::Named { value, text } => Named(*value, text),
                };
                (name, field)
            })
            .collect(),
    }
}
