//! Bytes of a pack's record, key or value → named wire values, by the
//! manifest's layout. Pure functions, tested without a kernel.
//!
//! Names come from well-kept tables rather than our own: errno and signal
//! names from `nix`, system call names of this architecture from the
//! `syscalls` crate, kernel symbols from `/proc/kallsyms` (through aya's
//! reader).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use microscope_catalogue::{Decode, FieldSpec, FieldType, Unit};
use microscope_wire::FieldValue;

/// Reads an integer field: `None` when the bytes end before it.
pub fn int(bytes: &[u8], offset: u32, size: u8, signed: bool) -> Option<i64> {
    let start = usize::try_from(offset).ok()?;
    let raw = bytes.get(start..start + usize::from(size))?;
    let mut buf = [0u8; 8];
    buf[..raw.len()].copy_from_slice(raw);
    let unsigned = u64::from_le_bytes(buf);
    Some(if signed {
        let shift = 64 - 8 * u32::from(size);
        ((unsigned << shift) as i64) >> shift
    } else {
        unsigned as i64
    })
}

/// Decodes field `spec` of `bytes`.
pub fn field(spec: &FieldSpec, bytes: &[u8]) -> FieldValue {
    match spec.ty {
        FieldType::Int {
            bytes: size,
            signed,
        } => match int(bytes, spec.offset, size, signed) {
            None => FieldValue::Missing,
            Some(v) => number(&spec.decode, v, signed),
        },
        FieldType::Chars(n) => {
            let start = spec.offset as usize;
            let Some(raw) = bytes.get(start..) else {
                return FieldValue::Missing;
            };
            // Variable-length records (execsnoop's arguments) end early.
            let raw = &raw[..raw.len().min(n as usize)];
            if spec.decode == Decode::Strings {
                let words: Vec<String> = raw
                    .split(|b| *b == 0)
                    .filter(|w| !w.is_empty())
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect();
                return FieldValue::Str(words.join(" "));
            }
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            FieldValue::Str(String::from_utf8_lossy(&raw[..end]).into_owned())
        }
        FieldType::Array { .. } => {
            let start = spec.offset as usize;
            match bytes.get(start..start + spec.ty.size() as usize) {
                Some(raw) => FieldValue::Bytes(raw.to_vec()),
                None => FieldValue::Missing,
            }
        }
    }
}

/// The elements of an integer array field (histogram slots), as `u64`.
pub fn array(spec: &FieldSpec, bytes: &[u8]) -> Vec<u64> {
    let FieldType::Array {
        bytes: size,
        signed,
        count,
    } = spec.ty
    else {
        return Vec::new();
    };
    (0..count)
        .filter_map(|i| int(bytes, spec.offset + i * u32::from(size), size, signed))
        .map(|v| v.max(0) as u64)
        .collect()
}

fn number(decode: &Decode, v: i64, signed: bool) -> FieldValue {
    let plain = || {
        if signed {
            FieldValue::Int(v)
        } else {
            FieldValue::Uint(v as u64)
        }
    };
    let named = |text: String| FieldValue::Named { value: v, text };
    match decode {
        Decode::Plain | Decode::Strings => plain(),
        Decode::Errno => {
            if v == 0 {
                return named("0 (success)".to_owned());
            }
            let code = v.unsigned_abs();
            match i32::try_from(code) {
                Ok(code)
                    if nix::errno::Errno::from_raw(code) != nix::errno::Errno::UnknownErrno =>
                {
                    let name = format!("{:?}", nix::errno::Errno::from_raw(code));
                    named(if v < 0 { format!("-{name}") } else { name })
                }
                _ => plain(),
            }
        }
        Decode::Syscall => match u32::try_from(v)
            .ok()
            .and_then(|n| syscalls::Sysno::new(n as usize))
        {
            Some(sysno) => named(sysno.name().to_owned()),
            None => plain(),
        },
        Decode::Signal => {
            if v == 0 {
                return named("0 (none)".to_owned());
            }
            match i32::try_from(v)
                .ok()
                .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
            {
                Some(signal) => named(signal.as_str().to_owned()),
                None => plain(),
            }
        }
        Decode::Dev => {
            let dev = v as u64;
            // The kernel's internal dev_t: 12 bits of major, 20 of minor.
            named(format!("{}:{}", dev >> 20, dev & 0xfffff))
        }
        Decode::Ksym => match ksym(v as u64) {
            Some(name) => named(name),
            None => named(format!("{:#x}", v as u64)),
        },
        Decode::Duration(unit) => named(duration(v, *unit)),
        Decode::Size(unit) => named(size(v, *unit)),
        Decode::Values(map) => match map.get(&v) {
            Some(name) => named(name.clone()),
            None => plain(),
        },
    }
}

/// A duration in `unit`, in the largest unit that keeps it ≥ 1.
pub fn duration(v: i64, unit: Unit) -> String {
    let ns = match unit {
        Unit::Ns => v as f64,
        Unit::Us => v as f64 * 1e3,
        Unit::Ms => v as f64 * 1e6,
        Unit::S => v as f64 * 1e9,
        _ => return v.to_string(),
    };
    let abs = ns.abs();
    if abs < 1e3 {
        format!("{ns:.0} ns")
    } else if abs < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if abs < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A size in `unit`, in bytes, KiB, MiB or GiB.
pub fn size(v: i64, unit: Unit) -> String {
    let bytes = match unit {
        Unit::Bytes => v as f64,
        Unit::Kib => v as f64 * 1024.0,
        Unit::Sectors => v as f64 * 512.0,
        Unit::Pages => v as f64 * 4096.0,
        _ => return v.to_string(),
    };
    let abs = bytes.abs();
    if abs < 1024.0 {
        format!("{bytes:.0} B")
    } else if abs < 1024.0 * 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else if abs < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", bytes / (1024.0 * 1024.0 * 1024.0))
    }
}

/// The kernel symbol an address falls in, `name+0xoff`; kallsyms is read
/// once, on first use.
fn ksym(addr: u64) -> Option<String> {
    static KSYMS: OnceLock<BTreeMap<u64, String>> = OnceLock::new();
    let table = KSYMS.get_or_init(|| aya::util::kernel_symbols().unwrap_or_default());
    let (start, name) = table.range(..=addr).next_back()?;
    Some(if *start == addr {
        name.clone()
    } else {
        format!("{name}+{:#x}", addr - start)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: FieldType, offset: u32, decode: Decode) -> FieldSpec {
        FieldSpec {
            name: "f".into(),
            ty,
            offset,
            decode,
            role: None,
            meaning: String::new(),
        }
    }

    const I32: FieldType = FieldType::Int {
        bytes: 4,
        signed: true,
    };
    const U32: FieldType = FieldType::Int {
        bytes: 4,
        signed: false,
    };

    #[test]
    fn integers_by_size_and_sign() {
        let bytes = [0xfe, 0xff, 0xff, 0xff, 7, 0, 0, 0];
        assert_eq!(
            field(&spec(I32, 0, Decode::Plain), &bytes),
            FieldValue::Int(-2)
        );
        assert_eq!(
            field(&spec(U32, 0, Decode::Plain), &bytes),
            FieldValue::Uint(0xffff_fffe)
        );
        assert_eq!(
            field(&spec(U32, 4, Decode::Plain), &bytes),
            FieldValue::Uint(7)
        );
        assert_eq!(
            field(&spec(U32, 6, Decode::Plain), &bytes),
            FieldValue::Missing
        );
    }

    #[test]
    fn named_decoders() {
        let named = |ty, v: i64, decode| match field(&spec(ty, 0, decode), &v.to_le_bytes()) {
            FieldValue::Named { text, .. } => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(named(I32, -2, Decode::Errno), "-ENOENT");
        assert_eq!(named(I32, 0, Decode::Errno), "0 (success)");
        assert_eq!(named(U32, 15, Decode::Signal), "SIGTERM");
        assert_eq!(named(U32, 110, Decode::Syscall), "getppid");
        assert_eq!(named(U32, (8 << 20) | 1, Decode::Dev), "8:1");
        assert_eq!(named(U32, 1500, Decode::Duration(Unit::Us)), "1.5 ms");
        assert_eq!(named(U32, 3, Decode::Size(Unit::Kib)), "3.0 KiB");
        let values = Decode::Values([(1, "write".to_owned())].into());
        assert_eq!(named(U32, 1, values.clone()), "write");
        assert_eq!(
            field(&spec(U32, 0, values), &2u32.to_le_bytes()),
            FieldValue::Uint(2)
        );
        // Unknown numbers stay numbers.
        assert_eq!(
            field(&spec(U32, 0, Decode::Syscall), &9999u32.to_le_bytes()),
            FieldValue::Uint(9999)
        );
    }

    #[test]
    fn strings_stop_at_nul_or_the_record_end() {
        let bytes = b"ls\0-l\0/tmp\0\0";
        assert_eq!(
            field(&spec(FieldType::Chars(16), 0, Decode::Plain), bytes),
            FieldValue::Str("ls".into())
        );
        assert_eq!(
            field(&spec(FieldType::Chars(7680), 0, Decode::Strings), bytes),
            FieldValue::Str("ls -l /tmp".into())
        );
        assert_eq!(
            field(&spec(FieldType::Chars(16), 20, Decode::Plain), bytes),
            FieldValue::Missing
        );
    }

    #[test]
    fn slots_arrays() {
        let mut bytes = Vec::new();
        for v in [1u32, 0, 5] {
            bytes.extend(v.to_le_bytes());
        }
        let slots = spec(
            FieldType::Array {
                bytes: 4,
                signed: false,
                count: 3,
            },
            0,
            Decode::Plain,
        );
        assert_eq!(array(&slots, &bytes), [1, 0, 5]);
        assert_eq!(array(&slots, &bytes[..8]), [1, 0]);
    }
}
