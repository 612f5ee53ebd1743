//! Setting the sizes of a BTF-defined map in an object's bytes, as a
//! libbpf tool's own loader does before loading (`bpf_map__set_value_size`,
//! `bpf_map__set_max_entries`). bcc's `offcputime` declares its stack map
//! with neither (its command line picks them), and aya 0.14 reads a map's
//! sizes only from the object, so the helper writes the manifest's sizes
//! into the object's BTF first.
//!
//! A BTF map definition is an anonymous struct whose members encode numbers
//! as `int (*name)[N]`. Rather than grow that struct in place (which would
//! shift every type after it, and `.rel.BTF` points into that section), a
//! copy with the new members is appended at the end of the type section,
//! and the map's `VAR` is pointed at it. The new members share the last
//! member's offset, so the struct keeps its size and its `.maps` data-section
//! entry stays valid for the kernel's BTF checks. The grown `.BTF` section is
//! appended to the file and its section header pointed at it; nothing else
//! in the file moves.
//!
//! No crate writes BTF into an existing ELF file (`object`'s writer builds
//! new files, aya-obj only reads), hence these few hand-written lines; they
//! only ever run on the pack's own object, refuse anything they do not
//! recognise with a sentence, and read every offset with bounds checks.

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_VAR: u32 = 14;
const SHT_NOBITS: u32 = 8;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Overwrites `bytes.len()` bytes of `buf` at `at`.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), String> {
    buf.get_mut(at..at + bytes.len())
        .ok_or_else(|| "a header points outside the file".to_owned())?
        .copy_from_slice(bytes);
    Ok(())
}

/// One type of the type section: where it starts and its first words.
struct BtfType {
    offset: usize,
    name_off: u32,
    kind: u32,
    vlen: usize,
    size_or_type: u32,
}

/// Bytes after the 12-byte common header, by kind.
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        // INT, VAR, DECL_TAG: 4 bytes.
        1 | 14 | 17 => 4,
        // ARRAY.
        3 => 12,
        // STRUCT, UNION, DATASEC, ENUM64: 12 per member.
        4 | 5 | 15 | 19 => 12 * vlen,
        // ENUM, FUNC_PROTO: 8 per member.
        6 | 13 => 8 * vlen,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
        2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0,
        _ => return None,
    })
}

fn types(section: &[u8]) -> Result<Vec<BtfType>, String> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < section.len() {
        let (Some(name_off), Some(info), Some(size_or_type)) = (
            u32_at(section, at),
            u32_at(section, at + 4),
            u32_at(section, at + 8),
        ) else {
            return Err("its BTF type section ends inside a type".to_owned());
        };
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let Some(extra) = extra_len(kind, vlen) else {
            return Err(format!("its BTF has a type of unknown kind {kind}"));
        };
        found.push(BtfType {
            offset: at,
            name_off,
            kind,
            vlen,
            size_or_type,
        });
        at += 12 + extra;
    }
    Ok(found)
}

fn name(strings: &[u8], off: u32) -> &[u8] {
    let rest = strings.get(off as usize..).unwrap_or_default();
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

/// Where the section headers are: offset and entry size.
fn section_headers(elf: &[u8]) -> Result<(usize, usize), String> {
    let bad = || "it is not a 64-bit little-endian ELF object".to_owned();
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err(bad());
    }
    let shoff = u64_at(elf, 0x28).ok_or_else(bad)? as usize;
    let shentsize = usize::from(u16_at(elf, 0x3a).ok_or_else(bad)?);
    if shentsize < 64 {
        return Err(bad());
    }
    Ok((shoff, shentsize))
}

/// The `.BTF` section's header offset, file offset and size.
fn btf_section(elf: &[u8]) -> Result<(usize, usize, usize), String> {
    let bad = || "it is not a 64-bit little-endian ELF object".to_owned();
    let (shoff, shentsize) = section_headers(elf)?;
    let shnum = usize::from(u16_at(elf, 0x3c).ok_or_else(bad)?);
    let shstrndx = usize::from(u16_at(elf, 0x3e).ok_or_else(bad)?);
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let names_at = header(shstrndx).ok_or_else(bad)?;
    let names_off = u64_at(elf, names_at + 24).ok_or_else(bad)? as usize;
    for i in 0..shnum {
        let at = header(i).ok_or_else(bad)?;
        let (Some(name_off), Some(kind), Some(offset), Some(size)) = (
            u32_at(elf, at),
            u32_at(elf, at + 4),
            u64_at(elf, at + 24),
            u64_at(elf, at + 32),
        ) else {
            return Err(bad());
        };
        let section_name = name(elf.get(names_off..).unwrap_or_default(), name_off);
        if section_name == b".BTF" && kind != SHT_NOBITS {
            return Ok((at, offset as usize, size as usize));
        }
    }
    Err("it has no .BTF section (build it with `clang -g`)".to_owned())
}

/// The offset of `s` in `strings`, appending it if it is not there.
fn string_offset(strings: &mut Vec<u8>, s: &str) -> u32 {
    let mut start = 0usize;
    for part in strings.split(|b| *b == 0) {
        if part == s.as_bytes() {
            return start as u32;
        }
        start += part.len() + 1;
    }
    let at = strings.len() as u32;
    strings.extend_from_slice(s.as_bytes());
    strings.push(0);
    at
}

/// `elf` with map `map`'s `value_size` and/or `max_entries` set in its BTF
/// definition (replacing any the object declares).
pub fn set_map_sizes(
    elf: &[u8],
    map: &str,
    value_size: Option<u32>,
    max_entries: Option<u32>,
) -> Result<Vec<u8>, String> {
    let (section_header, btf_off, btf_len) = btf_section(elf)?;
    let btf = elf
        .get(btf_off..btf_off.saturating_add(btf_len))
        .ok_or("its .BTF section lies outside the file")?;
    if u16_at(btf, 0) != Some(BTF_MAGIC) {
        return Err("its .BTF section is not BTF".to_owned());
    }
    let bad_header = || "its BTF header is damaged".to_owned();
    let hdr_len = u32_at(btf, 4).ok_or_else(bad_header)? as usize;
    let type_off = u32_at(btf, 8).ok_or_else(bad_header)? as usize;
    let type_len = u32_at(btf, 12).ok_or_else(bad_header)? as usize;
    let str_off = u32_at(btf, 16).ok_or_else(bad_header)? as usize;
    let str_len = u32_at(btf, 20).ok_or_else(bad_header)? as usize;
    let type_section = btf
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or_else(bad_header)?;
    let strings = btf
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or_else(bad_header)?;
    let all = types(type_section)?;
    // Type ids start at 1 (0 is void).
    let by_id = |id: u32| all.get((id as usize).checked_sub(1)?);
    let var = all
        .iter()
        .find(|t| t.kind == KIND_VAR && name(strings, t.name_off) == map.as_bytes())
        .ok_or_else(|| format!("its BTF has no map `{map}`"))?;
    let def = by_id(var.size_or_type)
        .filter(|t| t.kind == KIND_STRUCT)
        .ok_or_else(|| format!("map `{map}` is not a BTF-defined map (`SEC(\".maps\")`)"))?;
    let members: Vec<[u32; 3]> = (0..def.vlen)
        .filter_map(|i| {
            let at = def.offset + 12 + 12 * i;
            Some([
                u32_at(type_section, at)?,
                u32_at(type_section, at + 4)?,
                u32_at(type_section, at + 8)?,
            ])
        })
        .collect();
    // The int and index types of an existing `int (*x)[N]` member.
    let (elem, index_type) = members
        .iter()
        .find_map(|m| {
            let ptr = by_id(m[1]).filter(|t| t.kind == KIND_PTR)?;
            let array = by_id(ptr.size_or_type).filter(|t| t.kind == KIND_ARRAY)?;
            let elem = u32_at(type_section, array.offset + 12)?;
            let index = u32_at(type_section, array.offset + 16)?;
            by_id(elem).filter(|t| t.kind == KIND_INT)?;
            Some((elem, index))
        })
        .ok_or_else(|| format!("map `{map}` has no `__uint(...)` member to copy"))?;
    let last_offset = members.iter().map(|m| m[2]).max().unwrap_or(0);

    let mut new_strings = strings.to_vec();
    let mut new_types = Vec::new();
    let mut next_id = u32::try_from(all.len()).map_err(|_| bad_header())? + 1;
    let mut added: Vec<[u32; 3]> = Vec::new();
    for (field, value) in [("value_size", value_size), ("max_entries", max_entries)] {
        let Some(value) = value else { continue };
        let array_id = next_id;
        for word in [0, KIND_ARRAY << 24, 0, elem, index_type, value] {
            new_types.extend_from_slice(&word.to_le_bytes());
        }
        let ptr_id = next_id + 1;
        for word in [0, KIND_PTR << 24, array_id] {
            new_types.extend_from_slice(&word.to_le_bytes());
        }
        next_id += 2;
        added.push([string_offset(&mut new_strings, field), ptr_id, last_offset]);
    }
    let replaced: Vec<u32> = added.iter().map(|m| m[0]).collect();
    let mut kept: Vec<[u32; 3]> = members
        .iter()
        .filter(|m| !replaced.contains(&m[0]))
        .copied()
        .collect();
    kept.extend(added);
    let struct_id = next_id;
    let info = (KIND_STRUCT << 24) | kept.len() as u32;
    for word in [0, info, def.size_or_type] {
        new_types.extend_from_slice(&word.to_le_bytes());
    }
    for word in kept.iter().flatten() {
        new_types.extend_from_slice(&word.to_le_bytes());
    }

    let mut types_out = type_section.to_vec();
    put(&mut types_out, var.offset + 8, &struct_id.to_le_bytes())?;
    types_out.extend_from_slice(&new_types);
    let types_len = u32::try_from(types_out.len()).map_err(|_| bad_header())?;
    let strings_len = u32::try_from(new_strings.len()).map_err(|_| bad_header())?;
    let mut new_btf = btf.get(..hdr_len).ok_or_else(bad_header)?.to_vec();
    // Types right after the header, strings right after the types.
    put(&mut new_btf, 8, &0u32.to_le_bytes())?;
    put(&mut new_btf, 12, &types_len.to_le_bytes())?;
    put(&mut new_btf, 16, &types_len.to_le_bytes())?;
    put(&mut new_btf, 20, &strings_len.to_le_bytes())?;
    new_btf.extend_from_slice(&types_out);
    new_btf.extend_from_slice(&new_strings);

    let mut patched = elf.to_vec();
    patched.resize(patched.len().next_multiple_of(8), 0);
    let new_off = patched.len() as u64;
    patched.extend_from_slice(&new_btf);
    put(&mut patched, section_header + 24, &new_off.to_le_bytes())?;
    put(
        &mut patched,
        section_header + 32,
        &(new_btf.len() as u64).to_le_bytes(),
    )?;
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_but_a_bpf_elf_with_btf_is_refused_with_a_sentence() {
        assert_eq!(
            set_map_sizes(b"garbage", "m", Some(8), None).unwrap_err(),
            "it is not a 64-bit little-endian ELF object"
        );
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = set_map_sizes(&me, "m", Some(8), None).unwrap_err();
        assert!(
            err.contains("no .BTF section") || err.contains("no map"),
            "{err}"
        );
    }

    fn words(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// A minimal ELF object (null, `.shstrtab`, `.BTF` sections) holding
    /// the BTF of `struct { __uint(type, 7); __uint(key_size, 4); } stackmap`.
    fn object() -> Vec<u8> {
        let strings = b"\0int\0__ARRAY_SIZE_TYPE__\0type\0key_size\0stackmap\0";
        let (int, size_type, ty, key_size, stackmap) = (1, 5, 25, 30, 39);
        let types = words(&[
            int,
            KIND_INT << 24,
            4,
            32, // [1] int
            size_type,
            KIND_INT << 24,
            4,
            32, // [2] __ARRAY_SIZE_TYPE__
            0,
            KIND_ARRAY << 24,
            0,
            1,
            2,
            7, // [3] int[7]
            0,
            KIND_PTR << 24,
            3, // [4]
            0,
            KIND_ARRAY << 24,
            0,
            1,
            2,
            4, // [5] int[4]
            0,
            KIND_PTR << 24,
            5, // [6]
            0,
            KIND_STRUCT << 24 | 2,
            16,
            ty,
            4,
            0,
            key_size,
            6,
            64, // [7]
            stackmap,
            KIND_VAR << 24,
            7,
            1, // [8]
        ]);
        let mut btf = vec![0x9f, 0xeb, 1, 0];
        btf.extend(words(&[24, 0, types.len() as u32, types.len() as u32]));
        btf.extend(words(&[strings.len() as u32]));
        btf.extend(&types);
        btf.extend(strings);
        let shstrtab = b"\0.shstrtab\0.BTF\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let shstrtab_at = elf.len() as u64;
        elf.extend(shstrtab);
        let btf_at = elf.len() as u64;
        elf.extend(&btf);
        elf.resize(elf.len().next_multiple_of(8), 0);
        let shoff = elf.len() as u64;
        let section = |name: u32, kind: u32, offset: u64, size: u64| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h
        };
        elf.extend(vec![0u8; 64]);
        elf.extend(section(1, 3, shstrtab_at, shstrtab.len() as u64));
        elf.extend(section(11, 1, btf_at, btf.len() as u64));
        elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        elf
    }

    /// The map's members after patching: name → N of `int (*name)[N]`,
    /// with their bit offsets, and the struct's size.
    fn members_of(elf: &[u8], map: &str) -> (Vec<(String, u32, u32)>, u32) {
        let (_, off, len) = btf_section(elf).unwrap();
        let btf = &elf[off..off + len];
        let (hdr, type_len, str_off) = (
            u32_at(btf, 4).unwrap() as usize,
            u32_at(btf, 12).unwrap() as usize,
            u32_at(btf, 16).unwrap() as usize,
        );
        let section = &btf[hdr..hdr + type_len];
        let strings = &btf[hdr + str_off..];
        let all = types(section).unwrap();
        let by_id = |id: u32| &all[id as usize - 1];
        let var = all
            .iter()
            .find(|t| t.kind == KIND_VAR && name(strings, t.name_off) == map.as_bytes())
            .unwrap();
        let def = by_id(var.size_or_type);
        let members = (0..def.vlen)
            .map(|i| {
                let at = def.offset + 12 + 12 * i;
                let ptr = by_id(u32_at(section, at + 4).unwrap());
                let array = by_id(ptr.size_or_type);
                (
                    String::from_utf8_lossy(name(strings, u32_at(section, at).unwrap()))
                        .into_owned(),
                    u32_at(section, array.offset + 20).unwrap(),
                    u32_at(section, at + 8).unwrap(),
                )
            })
            .collect();
        (members, def.size_or_type)
    }

    #[test]
    fn sizes_are_added_to_the_map_definition_without_growing_it() {
        let elf = object();
        assert_eq!(
            members_of(&elf, "stackmap"),
            (vec![("type".into(), 7, 0), ("key_size".into(), 4, 64)], 16)
        );
        let patched = set_map_sizes(&elf, "stackmap", Some(1016), Some(16384)).unwrap();
        assert_eq!(
            members_of(&patched, "stackmap"),
            (
                vec![
                    ("type".into(), 7, 0),
                    ("key_size".into(), 4, 64),
                    ("value_size".into(), 1016, 64),
                    ("max_entries".into(), 16384, 64),
                ],
                16
            )
        );
        // The original bytes are all still there, only the .BTF header moved.
        assert_eq!(patched[64..elf.len() - 192], elf[64..elf.len() - 192]);
        // Setting again replaces, never duplicates.
        let again = set_map_sizes(&patched, "stackmap", Some(8), None).unwrap();
        let (members, _) = members_of(&again, "stackmap");
        assert_eq!(
            members
                .iter()
                .map(|(n, v, _)| (n.as_str(), *v))
                .collect::<Vec<_>>(),
            [
                ("type", 7),
                ("key_size", 4),
                ("max_entries", 16384),
                ("value_size", 8)
            ]
        );
        assert_eq!(
            set_map_sizes(&elf, "other", Some(8), None).unwrap_err(),
            "its BTF has no map `other`"
        );
        // Cut anywhere, the object is refused with a sentence, never a panic.
        for cut in (0..elf.len()).step_by(7) {
            let _ = set_map_sizes(&elf[..cut], "stackmap", Some(8), None);
        }
    }

    #[test]
    fn strings_are_found_or_appended() {
        let mut strings = b"\0type\0key_size\0".to_vec();
        assert_eq!(string_offset(&mut strings, "key_size"), 6);
        assert_eq!(string_offset(&mut strings, "value_size"), 15);
        assert_eq!(string_offset(&mut strings, "value_size"), 15);
        assert_eq!(strings.len(), 26);
    }
}
