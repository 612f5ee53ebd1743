//! Turns raw ring buffer records (the `probes-common` structs) into wire
//! events. Pure functions: no maps, no I/O, unit-tested with built records.

use microscope_wire::ProbeKey;
use microscope_wire::{Event, EventData};
use probes_common::{
    EventHeader, EventKind, OpenatEvent, SchedExecEvent, SchedExitEvent, SchedForkEvent,
    SchedSwitchEvent, SchedWakeupEvent,
};

/// Why a record could not be decoded. Either means the helper and the eBPF
/// object disagree, which the build should make impossible; the helper counts
/// these rather than trusting the bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its kind's struct.
    #[error("record of {len} bytes is too short for {kind:?} ({need} bytes)")]
    Short {
        /// Kind from the header, if the header was readable.
        kind: Option<EventKind>,
        /// Record length.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Unknown `kind` in the header.
    #[error("record has unknown kind {0}")]
    UnknownKind(u32),
    /// A generic tracepoint record of a slot no probe uses any more
    /// (detached between the kernel writing the record and us reading it).
    #[error("record of generic tracepoint slot {0}, which is no longer attached")]
    UnknownTracepoint(u32),
}

/// Reads a `T` from the start of `bytes` if it is long enough.
pub fn read<T: aya::Pod>(bytes: &[u8], kind: Option<EventKind>) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: `bytes` holds at least `size_of::<T>()` bytes, `T: Pod` accepts
    // any bit pattern, and `read_unaligned` has no alignment requirement.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// A NUL-terminated byte string as text (invalid UTF-8 replaced).
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The kind of a record, from its header.
pub fn record_kind(bytes: &[u8]) -> Result<EventKind, DecodeError> {
    let header: EventHeader = read(bytes, None)?;
    EventKind::from_u32(header.kind).ok_or(DecodeError::UnknownKind(header.kind))
}

/// Decodes one record. `probe_key` maps an event kind to the wire probe key.
pub fn decode_record(
    bytes: &[u8],
    probe_key: impl Fn(EventKind) -> ProbeKey,
) -> Result<Event, DecodeError> {
    let kind = record_kind(bytes)?;
    let k = Some(kind);
    let (header, data) = match kind {
        EventKind::Tracepoint => return Err(DecodeError::UnknownKind(kind as u32)),
        EventKind::SchedSwitch => {
            let e: SchedSwitchEvent = read(bytes, k)?;
            (
                e.header,
                EventData::SchedSwitch {
                    prev_pid: e.prev_pid,
                    prev_comm: c_string(&e.prev_comm),
                    prev_prio: e.prev_prio,
                    prev_state: e.prev_state,
                    next_pid: e.next_pid,
                    next_comm: c_string(&e.next_comm),
                    next_prio: e.next_prio,
                },
            )
        }
        EventKind::SchedWakeup => {
            let e: SchedWakeupEvent = read(bytes, k)?;
            (
                e.header,
                EventData::SchedWakeup {
                    pid: e.pid,
                    comm: c_string(&e.comm),
                    prio: e.prio,
                    target_cpu: e.target_cpu,
                },
            )
        }
        EventKind::SchedFork => {
            let e: SchedForkEvent = read(bytes, k)?;
            (
                e.header,
                EventData::SchedFork {
                    parent_pid: e.parent_pid,
                    child_pid: e.child_pid,
                },
            )
        }
        EventKind::SchedExec => {
            let e: SchedExecEvent = read(bytes, k)?;
            (
                e.header,
                EventData::SchedExec {
                    pid: e.pid,
                    old_pid: e.old_pid,
                    filename: c_string(&e.filename),
                },
            )
        }
        EventKind::SchedExit => {
            let e: SchedExitEvent = read(bytes, k)?;
            (
                e.header,
                EventData::SchedExit {
                    pid: e.pid,
                    prio: e.prio,
                    group_dead: e.group_dead != 0,
                },
            )
        }
        EventKind::Openat => {
            let e: OpenatEvent = read(bytes, k)?;
            (
                e.header,
                EventData::Openat {
                    dfd: e.dfd,
                    filename: c_string(&e.filename),
                    flags: e.flags,
                    mode: e.mode,
                },
            )
        }
    };
    Ok(Event {
        probe: probe_key(kind),
        cpu: header.cpu,
        ts_ns: header.ts_ns,
        pid: header.pid,
        tgid: header.tgid,
        comm: c_string(&header.comm),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes_common::{COMM_LEN, PATH_LEN};

    fn header(kind: EventKind) -> EventHeader {
        let mut comm = [0; COMM_LEN];
        comm[..4].copy_from_slice(b"test");
        EventHeader {
            kind: kind as u32,
            cpu: 1,
            ts_ns: 42,
            pid: 7,
            tgid: 5,
            comm,
        }
    }

    fn bytes_of<T: aya::Pod>(value: &T) -> Vec<u8> {
        // SAFETY: `T: Pod` has no padding and may be viewed as bytes.
        unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
            .to_vec()
    }

    #[test]
    fn decodes_openat_with_path() {
        let mut filename = [0; PATH_LEN];
        filename[..9].copy_from_slice(b"/tmp/abc\0");
        let raw = OpenatEvent {
            header: header(EventKind::Openat),
            dfd: -100,
            flags: 0o2,
            mode: 0o644,
            _pad: 0,
            filename,
        };
        let event = decode_record(&bytes_of(&raw), |_| 3).unwrap();
        assert_eq!(event.probe, 3);
        assert_eq!(event.comm, "test");
        assert_eq!(
            (event.pid, event.tgid, event.cpu, event.ts_ns),
            (7, 5, 1, 42)
        );
        assert_eq!(
            event.data,
            EventData::Openat {
                dfd: -100,
                filename: "/tmp/abc".into(),
                flags: 2,
                mode: 0o644
            }
        );
    }

    #[test]
    fn decodes_switch() {
        let mut next_comm = [0; COMM_LEN];
        next_comm[..3].copy_from_slice(b"top");
        let raw = SchedSwitchEvent {
            header: header(EventKind::SchedSwitch),
            prev_pid: 7,
            next_pid: 9,
            prev_prio: 120,
            next_prio: 100,
            prev_state: 1,
            prev_comm: [b'x'; COMM_LEN],
            next_comm,
        };
        let event = decode_record(&bytes_of(&raw), |_| 0).unwrap();
        let EventData::SchedSwitch {
            prev_comm,
            next_comm,
            next_pid,
            prev_state,
            ..
        } = event.data
        else {
            panic!("wrong kind: {event:?}");
        };
        // A comm filling all 16 bytes has no NUL and must still decode whole.
        assert_eq!(prev_comm, "x".repeat(COMM_LEN));
        assert_eq!(next_comm, "top");
        assert_eq!((next_pid, prev_state), (9, 1));
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert!(matches!(
            decode_record(&[], |_| 0),
            Err(DecodeError::Short { kind: None, .. })
        ));
        let fork = SchedForkEvent {
            header: header(EventKind::SchedFork),
            parent_pid: 1,
            child_pid: 2,
        };
        let bytes = bytes_of(&fork);
        assert_eq!(
            decode_record(&bytes[..bytes.len() - 1], |_| 0),
            Err(DecodeError::Short {
                kind: Some(EventKind::SchedFork),
                len: 47,
                need: 48
            })
        );
        let mut bad = header(EventKind::SchedFork);
        bad.kind = 99;
        assert_eq!(
            decode_record(&bytes_of(&bad), |_| 0),
            Err(DecodeError::UnknownKind(99))
        );
    }

    #[test]
    fn c_string_stops_at_nul_and_replaces_invalid_utf8() {
        assert_eq!(c_string(b"ab\0cd"), "ab");
        assert_eq!(c_string(b""), "");
        assert_eq!(c_string(&[0xff, b'a', 0]), "\u{fffd}a");
    }
}
