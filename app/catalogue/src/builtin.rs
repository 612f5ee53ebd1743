//! The built-in pack, compiled into the binary from `assets/packs/builtin/`.

use crate::pack::Pack;

/// Where the built-in pack lives in the source tree, for error messages.
pub const BUILTIN_ORIGIN: &str = "assets/packs/builtin";

/// `(file name, contents)` of every file of the built-in pack. The test
/// `embedded_files_match_the_directory` fails if a file is added to the
/// directory but not here.
macro_rules! builtin_files {
    ($($name:literal),* $(,)?) => {
        &[$(
            (
                $name,
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/packs/builtin/", $name)),
            )
        ),*]
    };
}

pub(crate) const BUILTIN_FILES: &[(&str, &str)] = builtin_files![
    "pack.toml",
    "block.toml",
    "ext4.toml",
    "ip.toml",
    "irq.toml",
    "locking.toml",
    "memory.toml",
    "netdev.toml",
    "pagecache.toml",
    "process.toml",
    "profiling.toml",
    "sched.toml",
    "socket.toml",
    "syscalls.toml",
    "tcp.toml",
    "udp.toml",
    "user.toml",
    "vfs.toml",
];

/// `(file name, contents)` of the built-in pack's tours, in file-name order.
pub(crate) const BUILTIN_TOURS: &[(&str, &str)] = builtin_files![
    "tours/exec.toml",
    "tours/fault.toml",
    "tours/read.toml",
    "tours/tcp.toml",
    "tours/write.toml",
];

impl Pack {
    /// The pack Microscope ships (id `builtin`), as a [`Pack`] to merge with
    /// third-party packs. [`crate::Catalogue::builtin`] is this pack alone.
    pub fn builtin() -> Pack {
        // See `Catalogue::builtin` for why this may panic.
        let files: Vec<(&str, &str)> = BUILTIN_FILES.iter().chain(BUILTIN_TOURS).copied().collect();
        Pack::from_files(BUILTIN_ORIGIN, &files)
            .unwrap_or_else(|e| panic!("the built-in probe pack is invalid: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn builtin_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/packs/builtin")
    }

    #[test]
    fn embedded_files_match_the_directory() {
        let on_disk: BTreeSet<String> = std::fs::read_dir(builtin_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != crate::TOURS_DIR)
            .collect();
        let embedded: BTreeSet<String> = BUILTIN_FILES
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        assert_eq!(
            embedded, on_disk,
            "assets/packs/builtin/ and BUILTIN_FILES in app/catalogue/src/builtin.rs differ: \
             add the new file to the list (or remove the deleted one)"
        );
        assert_eq!(
            embedded.len(),
            BUILTIN_FILES.len(),
            "a file is listed twice"
        );
    }

    #[test]
    fn embedded_tours_match_the_tours_directory() {
        let on_disk: Vec<String> = {
            let mut names: Vec<String> = std::fs::read_dir(builtin_dir().join(crate::TOURS_DIR))
                .unwrap()
                .map(|e| format!("tours/{}", e.unwrap().file_name().into_string().unwrap()))
                .collect();
            names.sort();
            names
        };
        let embedded: Vec<&str> = BUILTIN_TOURS.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            embedded, on_disk,
            "assets/packs/builtin/tours/ and BUILTIN_TOURS in app/catalogue/src/builtin.rs differ (keep them sorted)"
        );
    }

    #[test]
    fn embedded_files_are_listed_in_the_order_load_dir_reads_them() {
        // `Pack::load_dir` sorts by name, so the compiled-in pack and the
        // same directory loaded from disk give the same probe order.
        let names: Vec<&str> = BUILTIN_FILES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| *name != crate::PACK_MANIFEST)
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn builtin_pack_is_valid() {
        let pack =
            Pack::from_files(BUILTIN_ORIGIN, BUILTIN_FILES).unwrap_or_else(|e| panic!("{e}"));
        crate::Catalogue::from_packs(vec![pack]).unwrap_or_else(|e| panic!("{e}"));
        // With its tours, whose nodes, edges and probes must exist.
        let catalogue = crate::Catalogue::builtin();
        let ids: Vec<&str> = catalogue.tours().iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["exec", "fault", "read", "tcp", "write"]);
    }

    /// A teacher's pack adding a tour to the built-in map.
    fn with_tour(tour: &str) -> Result<crate::Catalogue, crate::CatalogueError> {
        let manifest =
            "[pack]\nid = \"class\"\nname = \"c\"\ndescription = \"d\"\nversion = \"1\"\n";
        let pack = Pack::from_files(
            "class",
            &[("pack.toml", manifest), ("tours/mine.toml", tour)],
        )?;
        crate::Catalogue::from_packs(vec![Pack::builtin(), pack])
    }

    #[test]
    fn a_pack_can_add_a_tour_and_its_references_are_checked() {
        let good = "[tour]\nid = \"mine\"\ntitle = \"t\"\nsummary = \"s\"\n\n[[step]]\ntitle = \"a\"\ntext = \"b\"\nnodes = [\"vfs\"]\nedges = [\"vfs -> pagecache\"]\nprobes = [\"block:block_rq_issue\", \"xfs:xfs_file_read\"]\n";
        let catalogue = with_tour(good).unwrap();
        assert_eq!(catalogue.tour("mine").unwrap().pack, "class");

        let err = with_tour(&good.replace("[\"vfs\"]", "[\"vfx\"]")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "class/tours/mine.toml:7:9: step 1 of tour `mine` highlights subsystem `vfx`, which no loaded pack defines"
        );
        let err = with_tour(&good.replace("vfs -> pagecache", "pagecache -> vfs")).unwrap_err();
        assert!(
            err.to_string()
                .contains("highlights the edge `pagecache -> vfs`, which no loaded pack draws"),
            "{err}"
        );
        let err = with_tour(&good.replace("xfs:xfs_file_read", "func:nope nope")).unwrap_err();
        assert!(
            err.to_string()
                .contains("switches on probe `func:nope nope`"),
            "{err}"
        );
        let err = with_tour(&good.replace("\"mine\"", "\"read\"")).unwrap_err();
        assert!(
            err.to_string().starts_with("tour `read` is defined twice"),
            "{err}"
        );
    }

    #[test]
    fn loading_the_directory_gives_the_embedded_pack() {
        let from_disk = Pack::load_dir(&builtin_dir()).unwrap();
        let embedded = Pack::builtin();
        let ids = |p: &Pack| p.probes().iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&from_disk), ids(&embedded));
        assert_eq!(from_disk.subsystems().len(), embedded.subsystems().len());
        assert_eq!(from_disk.edges().len(), embedded.edges().len());
        let tours = |p: &Pack| {
            p.tours()
                .iter()
                .map(|t| (t.id.clone(), t.steps.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(tours(&from_disk), tours(&embedded));
        assert_eq!(tours(&embedded).len(), BUILTIN_TOURS.len());
    }
}
