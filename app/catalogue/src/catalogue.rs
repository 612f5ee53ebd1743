//! Packs merged into one catalogue, with every cross-reference checked.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{CatalogueError, Definition, Location};
use crate::model::{Edge, Layer, PackInfo, ProbeDef, Subsystem};
use crate::pack::Pack;
use crate::tour::Tour;

/// Every subsystem, map edge and probe of a set of packs.
///
/// The order of [`Catalogue::probes`] is stable for a given set of packs
/// (packs in the order given, then files by name, then as written), so a
/// probe's index can serve as a small key on the wire.
#[derive(Clone, Debug)]
pub struct Catalogue {
    packs: Vec<PackInfo>,
    layers: Vec<Layer>,
    edges: Vec<Edge>,
    subsystems: Vec<Subsystem>,
    probes: Vec<ProbeDef>,
    tours: Vec<Tour>,
    subsystem_index: HashMap<String, usize>,
    probe_index: HashMap<String, usize>,
}

impl Catalogue {
    /// The probes Microscope ships: the `builtin` pack from
    /// `assets/packs/builtin/`, compiled into the binary.
    pub fn builtin() -> Self {
        // The files are compiled in and the test `builtin_pack_is_valid`
        // loads them, so a failure here is a defect of this build, like a
        // missing `include_str!` file, not something a user can cause or fix.
        Self::from_packs(vec![Pack::builtin()])
            .unwrap_or_else(|e| panic!("the built-in probe pack is invalid: {e}"))
    }

    /// Reads the pack in directory `dir` (see [`Pack::load_dir`]). Merge it
    /// with others, usually [`Pack::builtin`], through
    /// [`Catalogue::from_packs`].
    pub fn load_pack_dir(dir: impl AsRef<Path>) -> Result<Pack, CatalogueError> {
        Pack::load_dir(dir.as_ref())
    }

    /// Merges packs, in order, and checks what they say about each other:
    /// no probe, subsystem, layer or edge defined by two packs; every probe
    /// in a known subsystem; every subsystem on a known layer; every edge
    /// between known subsystems.
    pub fn from_packs(packs: Vec<Pack>) -> Result<Self, CatalogueError> {
        let mut catalogue = Self {
            packs: Vec::new(),
            layers: Vec::new(),
            edges: Vec::new(),
            subsystems: Vec::new(),
            probes: Vec::new(),
            tours: Vec::new(),
            subsystem_index: HashMap::new(),
            probe_index: HashMap::new(),
        };
        for pack in packs {
            let crate::pack::PackParts {
                info,
                layers,
                edges,
                subsystems,
                probes,
                tours,
            } = pack.into_parts();
            if let Some(first) = catalogue.packs.iter().find(|p| p.id == info.id) {
                return Err(CatalogueError::DuplicatePack {
                    id: info.id,
                    first: Box::new(first.defined_at.clone()),
                    second: Box::new(info.defined_at),
                });
            }
            for layer in layers {
                if let Some(first) = catalogue.layers.iter().find(|l| l.index == layer.index) {
                    return Err(conflict(
                        "layer",
                        layer.index.to_string(),
                        (&first.pack, &first.defined_at),
                        (&layer.pack, &layer.defined_at),
                    ));
                }
                catalogue.layers.push(layer);
            }
            for edge in edges {
                if let Some(first) = catalogue
                    .edges
                    .iter()
                    .find(|e| e.from == edge.from && e.to == edge.to)
                {
                    return Err(conflict(
                        "edge",
                        format!("{} → {}", edge.from, edge.to),
                        (&first.pack, &first.defined_at),
                        (&edge.pack, &edge.defined_at),
                    ));
                }
                catalogue.edges.push(edge);
            }
            for subsystem in subsystems {
                if let Some(first) = catalogue.subsystems.iter().find(|s| s.id == subsystem.id) {
                    return Err(conflict(
                        "subsystem",
                        subsystem.id.clone(),
                        (&first.pack, &first.defined_at),
                        (&subsystem.pack, &subsystem.defined_at),
                    ));
                }
                catalogue
                    .subsystem_index
                    .insert(subsystem.id.clone(), catalogue.subsystems.len());
                catalogue.subsystems.push(subsystem);
            }
            for probe in probes {
                if let Some(first) = catalogue.probes.iter().find(|p| p.id == probe.id) {
                    return Err(conflict(
                        "probe",
                        probe.id.clone(),
                        (&first.pack, &first.defined_at),
                        (&probe.pack, &probe.defined_at),
                    ));
                }
                catalogue
                    .probe_index
                    .insert(probe.id.clone(), catalogue.probes.len());
                catalogue.probes.push(probe);
            }
            for tour in tours {
                if let Some(first) = catalogue.tours.iter().find(|t| t.id == tour.id) {
                    return Err(conflict(
                        "tour",
                        tour.id.clone(),
                        (&first.pack, &first.defined_at),
                        (&tour.pack, &tour.defined_at),
                    ));
                }
                catalogue.tours.push(tour);
            }
            catalogue.packs.push(info);
        }
        catalogue.layers.sort_by_key(|l| l.index);
        catalogue.check_references()?;
        Ok(catalogue)
    }

    fn check_references(&self) -> Result<(), CatalogueError> {
        for subsystem in &self.subsystems {
            if !self.layers.iter().any(|l| l.index == subsystem.layer) {
                let known = match (self.layers.first(), self.layers.last()) {
                    (Some(first), Some(last)) => {
                        format!("the layers are {} to {}", first.index, last.index)
                    }
                    _ => "no loaded pack defines any `[[layer]]`".to_owned(),
                };
                return Err(CatalogueError::invalid(
                    subsystem.defined_at.clone(),
                    format!(
                        "subsystem `{}` is on layer {}, but {known}",
                        subsystem.id, subsystem.layer
                    ),
                ));
            }
        }
        for probe in &self.probes {
            if !self.subsystem_index.contains_key(&probe.subsystem) {
                return Err(CatalogueError::invalid(
                    probe.defined_at.clone(),
                    format!(
                        "probe `{}` belongs to subsystem `{}`, which no loaded pack defines",
                        probe.id, probe.subsystem
                    ),
                ));
            }
        }
        for edge in &self.edges {
            for end in [&edge.from, &edge.to] {
                if !self.subsystem_index.contains_key(end) {
                    return Err(CatalogueError::invalid(
                        edge.defined_at.clone(),
                        format!(
                            "the edge `{}` → `{}` leads to subsystem `{end}`, which no loaded pack defines",
                            edge.from, edge.to
                        ),
                    ));
                }
            }
        }
        self.check_tours()
    }

    /// Every node, edge and probe a tour step names exists. A probe outside
    /// the packs is accepted if it is a tracepoint (`category:name`): the
    /// helper creates those on demand.
    fn check_tours(&self) -> Result<(), CatalogueError> {
        for tour in &self.tours {
            for (i, step) in tour.steps.iter().enumerate() {
                let what = || format!("step {} of tour `{}`", i + 1, tour.id);
                for node in &step.nodes {
                    if !self.subsystem_index.contains_key(node) {
                        return Err(CatalogueError::invalid(
                            step.defined_at.clone(),
                            format!(
                                "{} highlights subsystem `{node}`, which no loaded pack defines",
                                what()
                            ),
                        ));
                    }
                }
                for (from, to) in &step.edges {
                    if !self.edges.iter().any(|e| &e.from == from && &e.to == to) {
                        return Err(CatalogueError::invalid(
                            step.defined_at.clone(),
                            format!(
                                "{} highlights the edge `{from} -> {to}`, which no loaded pack draws (edges are `[[edge]]` entries of a pack.toml)",
                                what()
                            ),
                        ));
                    }
                }
                for probe in &step.probes {
                    let tracepoint = probe.split_once(':').is_some_and(|(c, n)| {
                        [c, n].iter().all(|w| {
                            !w.is_empty()
                                && w.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                        })
                    });
                    if !self.probe_index.contains_key(probe) && !tracepoint {
                        return Err(CatalogueError::invalid(
                            step.defined_at.clone(),
                            format!(
                                "{} switches on probe `{probe}`, which no loaded pack defines and which is not a tracepoint (`category:name`)",
                                what()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The guided tours of every pack, packs in the order given.
    pub fn tours(&self) -> &[Tour] {
        &self.tours
    }

    /// The tour with id `id`.
    pub fn tour(&self, id: &str) -> Option<&Tour> {
        self.tours.iter().find(|t| t.id == id)
    }

    /// The packs merged, in the order given.
    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    /// The map's layers, top (user space, 0) to bottom (hardware).
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The map's edges: paths data takes between subsystems.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Every subsystem.
    pub fn subsystems(&self) -> &[Subsystem] {
        &self.subsystems
    }

    /// The subsystem with id `id`.
    pub fn subsystem(&self, id: &str) -> Option<&Subsystem> {
        self.subsystem_index
            .get(id)
            .and_then(|&i| self.subsystems.get(i))
    }

    /// Every probe, in a stable order (see [`Catalogue`]).
    pub fn probes(&self) -> &[ProbeDef] {
        &self.probes
    }

    /// The probe with id `id`.
    pub fn probe(&self, id: &str) -> Option<&ProbeDef> {
        self.probe_index.get(id).and_then(|&i| self.probes.get(i))
    }

    /// The probes of subsystem `subsystem`, in catalogue order.
    pub fn probes_of<'a>(&'a self, subsystem: &'a str) -> impl Iterator<Item = &'a ProbeDef> + 'a {
        self.probes.iter().filter(move |p| p.subsystem == subsystem)
    }
}

fn conflict(
    what: &'static str,
    id: String,
    (first, first_at): (&str, &Location),
    (second, second_at): (&str, &Location),
) -> CatalogueError {
    let definition = |pack: &str, at: &Location| {
        Box::new(Definition {
            pack: pack.to_owned(),
            at: at.clone(),
        })
    };
    CatalogueError::Conflict {
        what,
        id,
        first: definition(first, first_at),
        second: definition(second, second_at),
    }
}
