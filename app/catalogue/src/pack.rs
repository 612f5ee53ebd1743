//! A probe pack: a `pack.toml` and one file per subsystem, read from disk or
//! from files compiled into the binary.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::bpf::ObjectDef;
use crate::error::{CatalogueError, Location};
use crate::manifest::{self, RawPackManifest, RawSubsystemFile, Source};
use crate::model::{Edge, Layer, PackInfo, ProbeDef, Subsystem, Target};
use crate::tour::{self, TOURS_DIR, Tour};

/// The file that names a pack and holds its map (layers and edges).
pub const PACK_MANIFEST: &str = "pack.toml";

/// One pack, checked on its own. References to subsystems and layers of
/// other packs are checked when packs are merged into a
/// [`Catalogue`](crate::Catalogue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pack {
    info: PackInfo,
    layers: Vec<Layer>,
    edges: Vec<Edge>,
    subsystems: Vec<Subsystem>,
    probes: Vec<ProbeDef>,
    objects: Vec<ObjectDef>,
    tours: Vec<Tour>,
    dir: Option<PathBuf>,
}

impl Pack {
    /// Reads a pack from its files: `(file name, contents)` pairs, one of
    /// them `pack.toml`. `origin` is the pack's directory as a person would
    /// find it; error messages place problems at `origin/file:line:column`.
    ///
    /// Files named `tours/NAME.toml` are guided tours ([`Tour`]).
    ///
    /// Subsystems and probes keep the order of the files as given, then
    /// their order inside each file.
    pub fn from_files(origin: &str, files: &[(&str, &str)]) -> Result<Self, CatalogueError> {
        let label = |name: &str| format!("{}/{name}", origin.trim_end_matches('/'));
        let Some((_, manifest_text)) = files.iter().find(|(name, _)| *name == PACK_MANIFEST) else {
            return Err(CatalogueError::NoPackManifest {
                origin: origin.to_owned(),
            });
        };
        let manifest_file = label(PACK_MANIFEST);
        let raw: RawPackManifest = manifest::parse(&manifest_file, manifest_text)?;
        let manifest = raw.check(&Source {
            file: &manifest_file,
            text: manifest_text,
            pack: "",
        })?;
        let mut pack = Self {
            info: manifest.info,
            layers: manifest.layers,
            edges: manifest.edges,
            subsystems: Vec::new(),
            probes: Vec::new(),
            objects: manifest.objects,
            tours: Vec::new(),
            dir: None,
        };
        for (name, text) in files.iter().filter(|(name, _)| *name != PACK_MANIFEST) {
            let file = label(name);
            if is_tour_file(name) {
                pack.tours
                    .push(tour::parse_tour(&file, text, &pack.info.id)?);
                continue;
            }
            let raw: RawSubsystemFile = manifest::parse(&file, text)?;
            let checked = raw.check(&Source {
                file: &file,
                text,
                pack: &pack.info.id,
            })?;
            pack.subsystems.extend(checked.subsystem);
            pack.probes.extend(checked.probes);
        }
        pack.check_unique()?;
        pack.check_objects()?;
        Ok(pack)
    }

    /// Reads the pack in directory `dir`: `pack.toml` and every other
    /// `*.toml` file directly inside it, in file-name order, then the tours
    /// in `dir/tours/*.toml` if that directory exists.
    pub fn load_dir(dir: &Path) -> Result<Self, CatalogueError> {
        let mut names = toml_files(dir, "")?;
        let tours = dir.join(TOURS_DIR);
        if tours.is_dir() {
            names.extend(toml_files(&tours, &format!("{TOURS_DIR}/"))?);
        }
        let read_error = |path: &Path, source| CatalogueError::Read {
            path: path.to_owned(),
            source,
        };
        let mut contents = Vec::with_capacity(names.len());
        for name in &names {
            let path = dir.join(name);
            contents.push(fs::read_to_string(&path).map_err(|e| read_error(&path, e))?);
        }
        let files: Vec<(&str, &str)> = names
            .iter()
            .map(String::as_str)
            .zip(contents.iter().map(String::as_str))
            .collect();
        let mut pack = Self::from_files(&dir.display().to_string(), &files)?;
        pack.dir = Some(dir.to_owned());
        Ok(pack)
    }

    /// Its guided tours (`tours/*.toml`), in file-name order.
    pub fn tours(&self) -> &[Tour] {
        &self.tours
    }

    /// The directory it was read from (`None` for the built-in pack).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The BPF objects it ships (`[[object]]` in `pack.toml`).
    pub fn objects(&self) -> &[ObjectDef] {
        &self.objects
    }

    /// The object with id `id`.
    pub fn object(&self, id: &str) -> Option<&ObjectDef> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// The pack's `[pack]` table.
    pub fn info(&self) -> &PackInfo {
        &self.info
    }

    /// Map layers it defines.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Map edges it defines.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Subsystems it defines.
    pub fn subsystems(&self) -> &[Subsystem] {
        &self.subsystems
    }

    /// Probes it defines, including probes it adds to other packs'
    /// subsystems.
    pub fn probes(&self) -> &[ProbeDef] {
        &self.probes
    }

    pub(crate) fn into_parts(self) -> PackParts {
        PackParts {
            info: self.info,
            layers: self.layers,
            edges: self.edges,
            subsystems: self.subsystems,
            probes: self.probes,
            tours: self.tours,
        }
    }

    /// Every `bpf` probe names an object of this pack, and no object id is
    /// declared twice.
    fn check_objects(&self) -> Result<(), CatalogueError> {
        first_repeat(
            self.objects.iter().map(|o| (o.id.clone(), &o.defined_at)),
            "object",
        )?;
        for probe in &self.probes {
            if let Target::Bpf(bpf) = &probe.target
                && self.object(&bpf.object).is_none()
            {
                let known: Vec<&str> = self.objects.iter().map(|o| o.id.as_str()).collect();
                return Err(CatalogueError::invalid(
                    probe.defined_at.clone(),
                    format!(
                        "probe `{}` loads the object `{}`, which this pack's pack.toml does not declare ({}); add `[[object]] id = \"{}\" file = \"....bpf.o\"`",
                        probe.id,
                        bpf.object,
                        if known.is_empty() {
                            "it declares no `[[object]]`".to_owned()
                        } else {
                            format!("it declares {}", known.join(", "))
                        },
                        bpf.object
                    ),
                ));
            }
        }
        Ok(())
    }

    /// No id defined twice inside this pack.
    fn check_unique(&self) -> Result<(), CatalogueError> {
        first_repeat(
            self.layers
                .iter()
                .map(|l| (l.index.to_string(), &l.defined_at)),
            "layer",
        )?;
        first_repeat(
            self.subsystems
                .iter()
                .map(|s| (s.id.clone(), &s.defined_at)),
            "subsystem",
        )?;
        first_repeat(
            self.probes.iter().map(|p| (p.id.clone(), &p.defined_at)),
            "probe",
        )?;
        first_repeat(
            self.edges
                .iter()
                .map(|e| (format!("{} → {}", e.from, e.to), &e.defined_at)),
            "edge",
        )?;
        first_repeat(
            self.tours.iter().map(|t| (t.id.clone(), &t.defined_at)),
            "tour",
        )?;
        Ok(())
    }
}

/// Whether a pack file name is a tour's (`tours/NAME.toml`).
fn is_tour_file(name: &str) -> bool {
    name.strip_prefix(TOURS_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| !rest.contains('/'))
}

/// Names of the `*.toml` files directly in `dir`, sorted, each after `prefix`.
fn toml_files(dir: &Path, prefix: &str) -> Result<Vec<String>, CatalogueError> {
    let read_error = |source| CatalogueError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_file()
            && path.extension().is_some_and(|ext| ext == "toml")
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            names.push(format!("{prefix}{name}"));
        }
    }
    names.sort();
    Ok(names)
}

/// A pack taken apart to be merged into a catalogue.
pub(crate) struct PackParts {
    pub(crate) info: PackInfo,
    pub(crate) layers: Vec<Layer>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) subsystems: Vec<Subsystem>,
    pub(crate) probes: Vec<ProbeDef>,
    pub(crate) tours: Vec<Tour>,
}

/// An error for the first id seen twice.
fn first_repeat<'a>(
    items: impl Iterator<Item = (String, &'a Location)>,
    what: &str,
) -> Result<(), CatalogueError> {
    let mut seen: HashMap<String, &Location> = HashMap::new();
    for (id, at) in items {
        if let Some(first) = seen.get(&id) {
            return Err(CatalogueError::invalid(
                at.clone(),
                format!("{what} `{id}` is defined twice in this pack (first at {first})"),
            ));
        }
        seen.insert(id, at);
    }
    Ok(())
}
