//! What the map highlights: a set of subsystems and edges, set by a guided
//! tour's step or by a followed call, drawn by the map view.

use std::collections::BTreeSet;

/// Nodes and edges of the map to draw highlighted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapHighlight {
    /// Subsystem ids.
    pub nodes: BTreeSet<String>,
    /// Edges, `(from, to)` subsystem ids.
    pub edges: BTreeSet<(String, String)>,
}

impl MapHighlight {
    /// A highlight of these nodes and edges.
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = &'a str>,
        edges: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Self {
            nodes: nodes.into_iter().map(str::to_owned).collect(),
            edges: edges
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
        }
    }

    /// Whether nothing is highlighted.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.edges.is_empty()
    }

    /// Whether subsystem `id` is highlighted.
    pub fn has_node(&self, id: &str) -> bool {
        self.nodes.contains(id)
    }

    /// Whether the edge `from → to` is highlighted.
    pub fn has_edge(&self, from: &str, to: &str) -> bool {
        self.edges.iter().any(|(a, b)| a == from && b == to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_edges_are_asked_by_id() {
        let h = MapHighlight::new(["vfs", "pagecache"], [("vfs", "pagecache")]);
        assert!(h.has_node("vfs") && !h.has_node("block"));
        assert!(h.has_edge("vfs", "pagecache") && !h.has_edge("pagecache", "vfs"));
        assert!(!h.is_empty() && MapHighlight::default().is_empty());
    }
}
