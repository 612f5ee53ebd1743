//! One manifest file: its TOML shape (with spans, for error positions) and
//! the checks that need nothing but that one entry.
//!
//! Checks that look across files (duplicate ids) live in `pack.rs`, and
//! checks that look across packs (unknown subsystems, layers, edge ends) in
//! `catalogue.rs`.

use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::bpf::{self, At, BpfProbe, ObjectDef, RawAttachChoice, RawKnob, RawObject, RawOutput};
use crate::error::{CatalogueError, Location};
use crate::model::{
    Attachment, Edge, FieldDoc, Layer, PackInfo, ProbeDef, ProbeType, Subsystem, Target,
};

/// `pack.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPackManifest {
    pack: RawPackInfo,
    #[serde(default)]
    layer: Vec<RawLayer>,
    #[serde(default)]
    edge: Vec<RawEdge>,
    #[serde(default)]
    object: Vec<RawObject>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackInfo {
    id: Spanned<String>,
    name: Spanned<String>,
    description: Spanned<String>,
    version: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    index: Spanned<u32>,
    name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    from: Spanned<String>,
    to: Spanned<String>,
    label: Spanned<String>,
}

/// Any other file of a pack: at most one subsystem, and probes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubsystemFile {
    subsystem: Option<RawSubsystem>,
    #[serde(default)]
    probe: Vec<RawProbe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubsystem {
    id: Spanned<String>,
    name: Spanned<String>,
    layer: Spanned<u32>,
    explanation: Spanned<String>,
    #[serde(default)]
    docs: Vec<Spanned<String>>,
    #[serde(default)]
    source: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    id: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<ProbeType>,
    target: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    #[serde(default)]
    attach: Vec<RawAttach>,
    subsystem: Option<Spanned<String>>,
    summary: Spanned<String>,
    #[serde(default)]
    fields: FieldDocs,
    #[serde(default)]
    requires: Requires,
    #[serde(default)]
    stacks: bool,
    /// `bpf` probes: the pack object holding the programs.
    object: Option<Spanned<String>>,
    /// `bpf` probes: `.rodata` globals set before loading.
    #[serde(default)]
    knobs: RawKnobs,
    /// `bpf` probes: the maps to read.
    #[serde(default)]
    output: Vec<RawOutput>,
    /// `bpf` probes: a longer explanation for learners.
    explanation: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttach {
    program: Option<Spanned<String>>,
    target: Spanned<String>,
    /// `bpf` probes: other program/target pairs to try, in order, when the
    /// kernel does not allow this one.
    #[serde(default)]
    fallback: Vec<RawAttachChoice>,
}

/// `[probe.knobs]` in the order written, each name with its place.
#[derive(Debug, Default)]
struct RawKnobs(Vec<(Spanned<String>, RawKnob)>);

impl<'de> Deserialize<'de> for RawKnobs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KnobsVisitor;

        impl<'de> Visitor<'de> for KnobsVisitor {
            type Value = RawKnobs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of `global = value` (true, false, an integer or \"process_filter.pid\")")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawKnobs, A::Error> {
                let mut knobs = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, RawKnob>()? {
                    knobs.push(entry);
                }
                Ok(RawKnobs(knobs))
            }
        }

        deserializer.deserialize_map(KnobsVisitor)
    }
}

/// `[probe.fields]` in the order written: a map would sort it, and the
/// author's order (who left, then who runs next) is part of the explanation.
#[derive(Debug, Default)]
struct FieldDocs(Vec<FieldDoc>);

impl<'de> Deserialize<'de> for FieldDocs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = FieldDocs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of `field = \"what it means\"`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldDocs, A::Error> {
                let mut fields = Vec::new();
                while let Some((name, meaning)) = map.next_entry::<String, String>()? {
                    fields.push(FieldDoc { name, meaning });
                }
                Ok(FieldDocs(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// `requires = "kprobes"` or `requires = ["kprobes", "CONFIG_IPV6"]`.
#[derive(Debug, Default)]
struct Requires(Vec<String>);

impl<'de> Deserialize<'de> for Requires {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Plain strings: spans do not survive an untagged enum, which
        // buffers the value before trying each variant.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(deserializer) {
            Ok(OneOrMany::One(one)) => Ok(Self(vec![one])),
            Ok(OneOrMany::Many(many)) => Ok(Self(many)),
            // The untagged enum's own message ("did not match any variant")
            // says nothing useful.
            Err(_) => Err(de::Error::custom(
                "`requires` must be a string or a list of strings",
            )),
        }
    }
}

/// Parses `text` as `T`, with the parser's complaint placed in `file`.
pub(crate) fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, CatalogueError> {
    toml::from_str(text).map_err(|e| CatalogueError::Syntax {
        at: e.span().map_or_else(
            || Location::file(file),
            |span| Location::at(file, text, span.start),
        ),
        message: e.message().trim_end().to_owned(),
    })
}

/// The file being converted, to turn spans into locations.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) pack: &'a str,
}

impl Source<'_> {
    pub(crate) fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        Location::at(self.file, self.text, spanned.span().start)
    }

    /// The string, or an error if it is empty or blank.
    pub(crate) fn required(
        &self,
        value: &Spanned<String>,
        what: &str,
    ) -> Result<String, CatalogueError> {
        let text = value.get_ref().trim();
        if text.is_empty() {
            return Err(CatalogueError::invalid(
                self.at(value),
                format!("{what} is empty"),
            ));
        }
        Ok(text.to_owned())
    }

    /// An object id: letters, digits, `_` and `-`.
    fn slug_or_word(&self, value: &Spanned<String>, what: &str) -> Result<String, CatalogueError> {
        let id = self.required(value, what)?;
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(CatalogueError::invalid(
                self.at(value),
                format!("{what} `{id}` may only use letters, digits, `_` and `-`"),
            ));
        }
        Ok(id)
    }

    /// The id, or an error if it is not made of `[a-z0-9_-]`.
    pub(crate) fn slug(
        &self,
        value: &Spanned<String>,
        what: &str,
    ) -> Result<String, CatalogueError> {
        let id = self.required(value, what)?;
        if !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(CatalogueError::invalid(
                self.at(value),
                format!("{what} `{id}` may only use a-z, 0-9, `_` and `-`"),
            ));
        }
        Ok(id)
    }
}

/// The pack's id and the contents of `pack.toml`.
pub(crate) struct PackManifest {
    pub(crate) info: PackInfo,
    pub(crate) layers: Vec<Layer>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) objects: Vec<ObjectDef>,
}

impl RawPackManifest {
    /// Checks each entry. `src.pack` is ignored: the pack id comes from here.
    pub(crate) fn check(self, src: &Source<'_>) -> Result<PackManifest, CatalogueError> {
        let id = src.slug(&self.pack.id, "the pack id")?;
        let info = PackInfo {
            name: src.required(&self.pack.name, "the pack name")?,
            description: src.required(&self.pack.description, "the pack description")?,
            version: src.required(&self.pack.version, "the pack version")?,
            defined_at: src.at(&self.pack.id),
            id,
        };
        let layers = self
            .layer
            .iter()
            .map(|l| {
                Ok(Layer {
                    index: *l.index.get_ref(),
                    name: src
                        .required(&l.name, &format!("the name of layer {}", l.index.get_ref()))?,
                    pack: info.id.clone(),
                    defined_at: src.at(&l.index),
                })
            })
            .collect::<Result<_, CatalogueError>>()?;
        let edges = self
            .edge
            .iter()
            .map(|e| {
                let from = src.slug(&e.from, "an edge's `from`")?;
                let to = src.slug(&e.to, "an edge's `to`")?;
                if from == to {
                    return Err(CatalogueError::invalid(
                        src.at(&e.to),
                        format!("the edge from `{from}` points back to `{from}`"),
                    ));
                }
                Ok(Edge {
                    label: src.required(
                        &e.label,
                        &format!("the label of the edge `{from}` → `{to}`"),
                    )?,
                    from,
                    to,
                    pack: info.id.clone(),
                    defined_at: src.at(&e.from),
                })
            })
            .collect::<Result<_, CatalogueError>>()?;
        let at = At {
            file: src.file,
            text: src.text,
        };
        let objects = self
            .object
            .iter()
            .map(|o| o.check(&at))
            .collect::<Result<_, _>>()?;
        Ok(PackManifest {
            info,
            layers,
            edges,
            objects,
        })
    }
}

/// What one subsystem file defines.
pub(crate) struct SubsystemFile {
    pub(crate) subsystem: Option<Subsystem>,
    pub(crate) probes: Vec<ProbeDef>,
}

impl RawSubsystemFile {
    pub(crate) fn check(self, src: &Source<'_>) -> Result<SubsystemFile, CatalogueError> {
        let subsystem = self.subsystem.map(|s| s.check(src)).transpose()?;
        let home = subsystem.as_ref().map(|s| s.id.as_str());
        let probes = self
            .probe
            .into_iter()
            .map(|p| p.check(src, home))
            .collect::<Result<_, _>>()?;
        Ok(SubsystemFile { subsystem, probes })
    }
}

impl RawSubsystem {
    fn check(self, src: &Source<'_>) -> Result<Subsystem, CatalogueError> {
        let id = src.slug(&self.id, "the subsystem id")?;
        let docs = self
            .docs
            .iter()
            .map(|url| {
                let url_text = src.required(url, "a `docs` link")?;
                if !(url_text.starts_with("https://") || url_text.starts_with("http://")) {
                    return Err(CatalogueError::invalid(
                        src.at(url),
                        format!(
                            "the `docs` link `{url_text}` of subsystem `{id}` is not an http(s) URL"
                        ),
                    ));
                }
                Ok(url_text)
            })
            .collect::<Result<_, CatalogueError>>()?;
        let source = self
            .source
            .iter()
            .map(|path| {
                let path_text = src.required(path, "a `source` path")?;
                if path_text.starts_with('/') {
                    return Err(CatalogueError::invalid(
                        src.at(path),
                        format!("the `source` path `{path_text}` of subsystem `{id}` must be relative to the top of the kernel tree, e.g. `kernel/sched/core.c`"),
                    ));
                }
                Ok(path_text)
            })
            .collect::<Result<_, CatalogueError>>()?;
        Ok(Subsystem {
            name: src.required(&self.name, &format!("the name of subsystem `{id}`"))?,
            layer: *self.layer.get_ref(),
            explanation: src.required(
                &self.explanation,
                &format!("the explanation of subsystem `{id}`"),
            )?,
            docs,
            source,
            pack: src.pack.to_owned(),
            defined_at: src.at(&self.id),
            id,
        })
    }
}

impl RawProbe {
    /// `home` is the subsystem of the file the probe is in, if it has one.
    fn check(self, src: &Source<'_>, home: Option<&str>) -> Result<ProbeDef, CatalogueError> {
        let id = src.required(&self.id, "a probe id")?;
        let id_at = src.at(&self.id);
        check_probe_id(&id).map_err(|why| {
            CatalogueError::invalid(id_at.clone(), format!("probe id `{id}` {why}"))
        })?;
        let kind = *self.kind.get_ref();
        let subsystem = match (&self.subsystem, home) {
            (Some(explicit), _) => src.slug(explicit, &format!("the subsystem of probe `{id}`"))?,
            (None, Some(home)) => home.to_owned(),
            (None, None) => {
                return Err(CatalogueError::invalid(
                    id_at,
                    format!(
                        "probe `{id}` names no subsystem: add `subsystem = \"...\"` or move it to a file with a `[subsystem]` table"
                    ),
                ));
            }
        };
        let target = self.target(src, &id, kind)?;
        let summary = src.required(&self.summary, &format!("the summary of probe `{id}`"))?;
        if summary.contains('\n') {
            return Err(CatalogueError::invalid(
                src.at(&self.summary),
                format!(
                    "the summary of probe `{id}` must be one line; put details in `[probe.fields]` or the subsystem's explanation"
                ),
            ));
        }
        let requires: Vec<String> = self
            .requires
            .0
            .iter()
            .map(|r| r.trim().to_owned())
            .collect();
        if requires.iter().any(String::is_empty) {
            return Err(CatalogueError::invalid(
                id_at,
                format!("probe `{id}` has an empty `requires` entry"),
            ));
        }
        Ok(ProbeDef {
            subsystem,
            kind,
            target,
            summary,
            fields: self.fields.0,
            requires,
            stacks: self.stacks,
            pack: src.pack.to_owned(),
            defined_at: id_at,
            id,
        })
    }

    fn target(
        &self,
        src: &Source<'_>,
        id: &str,
        kind: ProbeType,
    ) -> Result<Target, CatalogueError> {
        let kind_at = src.at(&self.kind);
        let program = self
            .program
            .as_ref()
            .map(|p| program_name(src, p, id))
            .transpose()?;
        if kind == ProbeType::Bpf {
            return self.bpf_target(src, id).map(Target::Bpf);
        }
        if let Some(object) = &self.object {
            return Err(CatalogueError::invalid(
                src.at(object),
                format!(
                    "probe `{id}` has type `{kind}`; only `type = \"bpf\"` probes load an `object`"
                ),
            ));
        }
        if let Some((name, _)) = self.knobs.0.first() {
            return Err(CatalogueError::invalid(
                src.at(name),
                format!(
                    "probe `{id}` has type `{kind}`; only `type = \"bpf\"` probes take `[probe.knobs]`"
                ),
            ));
        }
        if let Some(output) = self.output.first() {
            let _ = output;
            return Err(CatalogueError::invalid(
                kind_at,
                format!(
                    "probe `{id}` has type `{kind}`; only `type = \"bpf\"` probes take `[[probe.output]]`"
                ),
            ));
        }
        if let Some(a) = self.attach.iter().find(|a| !a.fallback.is_empty()) {
            return Err(CatalogueError::invalid(
                src.at(&a.target),
                format!(
                    "probe `{id}` has type `{kind}`; only `type = \"bpf\"` probes take a `fallback` list"
                ),
            ));
        }
        if !self.attach.is_empty() && !kind.attaches_to_tracepoints() {
            return Err(CatalogueError::invalid(
                kind_at,
                format!(
                    "probe `{id}` has type `{kind}`, which takes no `[[probe.attach]]` list; only tracepoint-based types do (`tracepoint`, `syscall_counts`, `syscall_latency`)"
                ),
            ));
        }
        match kind {
            ProbeType::Tracepoint | ProbeType::SyscallCounts | ProbeType::SyscallLatency => {
                let attachments = match (&self.target, self.attach.is_empty()) {
                    (Some(target), true) => {
                        vec![tracepoint_attachment(src, id, kind, target, program)?]
                    }
                    (None, false) => {
                        if program.is_some() {
                            return Err(CatalogueError::invalid(
                                kind_at,
                                format!(
                                    "probe `{id}` has both `program` and `[[probe.attach]]`: name each attachment's program inside its `[[probe.attach]]` table"
                                ),
                            ));
                        }
                        self.attach
                            .iter()
                            .map(|a| {
                                let program = a
                                    .program
                                    .as_ref()
                                    .map(|p| program_name(src, p, id))
                                    .transpose()?;
                                tracepoint_attachment(src, id, kind, &a.target, program)
                            })
                            .collect::<Result<_, _>>()?
                    }
                    (Some(_), false) => {
                        return Err(CatalogueError::invalid(
                            kind_at,
                            format!(
                                "probe `{id}` has both `target` and `[[probe.attach]]`: use `target` for one tracepoint, the list for several"
                            ),
                        ));
                    }
                    (None, true) => {
                        return Err(CatalogueError::invalid(
                            kind_at,
                            format!(
                                "probe `{id}` of type `{kind}` has no `target` (a tracepoint, `category:name`)"
                            ),
                        ));
                    }
                };
                Ok(Target::Tracepoints(attachments))
            }
            ProbeType::Function => {
                let target = self.required_target(src, id, kind, "a kernel function name")?;
                let name = target.get_ref().trim();
                if !is_symbol(name) {
                    return Err(CatalogueError::invalid(
                        src.at(target),
                        format!(
                            "probe `{id}` has type `function` but its target `{name}` is not a kernel function name"
                        ),
                    ));
                }
                let expected = format!("func:{name}");
                if id != expected {
                    return Err(CatalogueError::invalid(
                        src.at(&self.id),
                        format!(
                            "probe `{id}` traces the function `{name}`, so its id must be `{expected}`"
                        ),
                    ));
                }
                Ok(Target::Function {
                    name: name.to_owned(),
                    program,
                })
            }
            ProbeType::Uprobe => {
                let target = self.required_target(src, id, kind, "`path:symbol`")?;
                let text = target.get_ref().trim();
                let Some((binary, symbol)) = text.rsplit_once(':').filter(|(b, s)| {
                    !b.is_empty() && !s.is_empty() && !s.contains(char::is_whitespace)
                }) else {
                    return Err(CatalogueError::invalid(
                        src.at(target),
                        format!(
                            "probe `{id}` has type `uprobe` but its target `{text}` is not `path:symbol` (e.g. `libc.so.6:malloc`)"
                        ),
                    ));
                };
                if !id.starts_with("uprobe:") {
                    return Err(CatalogueError::invalid(
                        src.at(&self.id),
                        format!("probe `{id}` is a uprobe, so its id must start with `uprobe:`"),
                    ));
                }
                Ok(Target::Uprobe {
                    binary: binary.to_owned(),
                    symbol: symbol.to_owned(),
                    program,
                })
            }
            // Handled at the top; kept here so the match stays exhaustive.
            ProbeType::Bpf => self.bpf_target(src, id).map(Target::Bpf),
            ProbeType::ProfileCpu | ProbeType::ProfileOffcpu => {
                if let Some(target) = &self.target {
                    return Err(CatalogueError::invalid(
                        src.at(target),
                        format!(
                            "probe `{id}` has type `{kind}`, which samples every CPU and takes no `target`"
                        ),
                    ));
                }
                Ok(Target::Sampler { program })
            }
        }
    }

    /// The programs, knobs and outputs of a `type = "bpf"` probe.
    fn bpf_target(&self, src: &Source<'_>, id: &str) -> Result<BpfProbe, CatalogueError> {
        let at = At {
            file: src.file,
            text: src.text,
        };
        let Some(object) = &self.object else {
            return Err(CatalogueError::invalid(
                src.at(&self.kind),
                format!(
                    "probe `{id}` has type `bpf` but names no `object` (an `[[object]]` id of the pack's pack.toml)"
                ),
            ));
        };
        if let Some(target) = &self.target {
            return Err(CatalogueError::invalid(
                src.at(target),
                format!(
                    "probe `{id}` has type `bpf`: name its programs and their targets in `[[probe.attach]]` tables, not `target`"
                ),
            ));
        }
        if let Some(program) = &self.program {
            return Err(CatalogueError::invalid(
                src.at(program),
                format!(
                    "probe `{id}` has type `bpf`: name its programs in `[[probe.attach]]` tables, not `program`"
                ),
            ));
        }
        if self.attach.is_empty() {
            return Err(CatalogueError::invalid(
                src.at(&self.kind),
                format!(
                    "probe `{id}` has type `bpf` but no `[[probe.attach]]` table saying which program attaches where"
                ),
            ));
        }
        if self.output.is_empty() {
            return Err(CatalogueError::invalid(
                src.at(&self.kind),
                format!(
                    "probe `{id}` has type `bpf` but no `[[probe.output]]`: name at least one map to read"
                ),
            ));
        }
        let attach = self
            .attach
            .iter()
            .map(|a| {
                let Some(program) = &a.program else {
                    return Err(CatalogueError::invalid(
                        src.at(&a.target),
                        format!("probe `{id}`: each `[[probe.attach]]` of a `bpf` probe names its `program`"),
                    ));
                };
                bpf::attach_slot(&at, id, (program, &a.target), &a.fallback)
            })
            .collect::<Result<_, _>>()?;
        let knobs = bpf::knobs(&at, id, &self.knobs.0)?;
        let mut outputs: Vec<bpf::Output> = Vec::new();
        for raw in &self.output {
            let output = raw.check(&at, id)?;
            if outputs.iter().any(|o| o.map == output.map) {
                return Err(CatalogueError::invalid(
                    output.defined_at,
                    format!("probe `{id}` reads the map `{}` twice", output.map),
                ));
            }
            // A stack map is read with its count map: no other output may
            // read it, and no two stacks outputs may share it.
            let stack_maps = |o: &bpf::Output| match &o.kind {
                bpf::OutputKind::Stacks(spec) => Some(spec.stack_map.clone()),
                _ => None,
            };
            if let Some(clash) = outputs.iter().find(|o| {
                stack_maps(&output).is_some_and(|s| s == o.map || stack_maps(o) == Some(s))
                    || stack_maps(o).is_some_and(|s| s == output.map)
            }) {
                return Err(CatalogueError::invalid(
                    output.defined_at,
                    format!(
                        "probe `{id}`: outputs `{}` and `{}` read the same map (a stacks output's stack map is its own); give each output its own maps",
                        clash.map, output.map
                    ),
                ));
            }
            outputs.push(output);
        }
        let has_events = outputs
            .iter()
            .any(|o| matches!(o.kind, bpf::OutputKind::Events { .. }));
        if has_events
            && let Some(timed) = outputs
                .iter()
                .find(|o| matches!(&o.kind, bpf::OutputKind::Stacks(spec) if spec.unit.is_time()))
        {
            return Err(CatalogueError::invalid(
                timed.defined_at.clone(),
                format!(
                    "probe `{id}` has events and a stacks output `{}` that sums time; the app shows a probe's stacks as time only when it has no events: make two probes of the same object, one with the events, one with the stacks",
                    timed.map
                ),
            ));
        }
        let explanation = self
            .explanation
            .as_ref()
            .map(|e| src.required(e, &format!("the explanation of probe `{id}`")))
            .transpose()?;
        Ok(BpfProbe {
            object: src.slug_or_word(object, &format!("the object of probe `{id}`"))?,
            attach,
            knobs,
            outputs,
            explanation,
        })
    }

    fn required_target(
        &self,
        src: &Source<'_>,
        id: &str,
        kind: ProbeType,
        form: &str,
    ) -> Result<&Spanned<String>, CatalogueError> {
        self.target.as_ref().ok_or_else(|| {
            CatalogueError::invalid(
                src.at(&self.kind),
                format!("probe `{id}` of type `{kind}` has no `target` ({form})"),
            )
        })
    }
}

fn tracepoint_attachment(
    src: &Source<'_>,
    id: &str,
    kind: ProbeType,
    target: &Spanned<String>,
    program: Option<String>,
) -> Result<Attachment, CatalogueError> {
    let text = target.get_ref().trim();
    let Some((category, name)) = text
        .split_once(':')
        .filter(|(c, n)| is_word(c) && is_word(n))
    else {
        return Err(CatalogueError::invalid(
            src.at(target),
            format!(
                "probe `{id}` has type `{kind}` but its target `{text}` is not a tracepoint `category:name` (e.g. `block:block_rq_issue`)"
            ),
        ));
    };
    if program.is_none() && kind.needs_program() {
        return Err(CatalogueError::invalid(
            src.at(target),
            format!(
                "probe `{id}` of type `{kind}` needs a `program` for its tracepoint `{text}`: the generic tracepoint program only copies records and cannot aggregate"
            ),
        ));
    }
    Ok(Attachment {
        program,
        category: category.to_owned(),
        name: name.to_owned(),
    })
}

fn program_name(
    src: &Source<'_>,
    program: &Spanned<String>,
    id: &str,
) -> Result<String, CatalogueError> {
    let name = src.required(program, &format!("the program of probe `{id}`"))?;
    if !is_word(&name) {
        return Err(CatalogueError::invalid(
            src.at(program),
            format!(
                "the program `{name}` of probe `{id}` is not a program name (letters, digits and `_`)"
            ),
        ));
    }
    Ok(name)
}

/// Why `id` is not a probe id, if it is not one.
fn check_probe_id(id: &str) -> Result<(), &'static str> {
    let Some((prefix, rest)) = id.split_once(':') else {
        return Err(
            "must have the form `prefix:name`, e.g. `sched:sched_switch` or `func:vfs_read`",
        );
    };
    if prefix.is_empty() || rest.is_empty() {
        return Err(
            "must have the form `prefix:name`, e.g. `sched:sched_switch` or `func:vfs_read`",
        );
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    {
        return Err("may only use letters, digits, `_`, `-`, `.` and `:`");
    }
    Ok(())
}

/// Letters, digits and `_`, not empty: a tracepoint category or name, or a
/// program name.
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A kernel symbol: a word, possibly with compiler suffixes such as
/// `.isra.0` or `.cold`.
fn is_symbol(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}
