//! The dependency graph: who orders after whom, and which services sit on a
//! cycle.
//!
//! The unit module rejects cycles, but the supervisor must not hang or loop on
//! one anyway: [`cycles`] finds the services on a cycle so they can be shown
//! invalid and never started. Everything else needs no global order: a
//! service starts when its own dependencies are met, and at shutdown it stops
//! when nothing that depends on it is still alive.

use std::collections::{BTreeMap, BTreeSet};

use super::config::{Definition, ServiceConfig};

/// Everything `config` orders after: `requires` (which implies `after`) and `after`.
pub(super) fn dependencies(config: &ServiceConfig) -> impl Iterator<Item = &String> {
    config.requires.iter().chain(config.after.iter())
}

/// Does `config` order after `name`?
pub(super) fn depends_on(config: &ServiceConfig, name: &str) -> bool {
    dependencies(config).any(|dep| dep == name)
}

/// The services on a dependency cycle, each with the reason to show.
pub(super) fn cycles<U: Definition>(services: &BTreeMap<String, U>) -> BTreeMap<String, String> {
    let reach: BTreeMap<&str, BTreeSet<&str>> =
        crate::sorted::map(services.keys().map(|name| (name.as_str(), reachable(services, name))));
    let mut found = BTreeMap::new();
    for (name, from_here) in &reach {
        if !from_here.contains(name) {
            continue;
        }
        let members: Vec<&str> = from_here
            .iter()
            .copied()
            .filter(|other| reach.get(other).is_some_and(|r| r.contains(name)))
            .collect();
        let reason = format!("dependency cycle through {}", members.join(", "));
        found.insert((*name).to_string(), reason);
    }
    found
}

/// The services reachable from `start` over one or more dependency edges.
/// Dependencies missing from `services` are skipped.
fn reachable<'a, U: Definition>(services: &'a BTreeMap<String, U>, start: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = match services.get(start) {
        Some(unit) => dependencies(unit.config()).map(String::as_str).collect(),
        None => Vec::new(),
    };
    while let Some(name) = stack.pop() {
        let Some((key, unit)) = services.get_key_value(name) else {
            continue;
        };
        if seen.insert(key.as_str()) {
            stack.extend(dependencies(unit.config()).map(String::as_str));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, ServiceConfig> {
        edges
            .iter()
            .map(|(name, after)| {
                let config = ServiceConfig {
                    after: after.iter().map(|s| s.to_string()).collect(),
                    ..ServiceConfig::default()
                };
                (name.to_string(), config)
            })
            .collect()
    }

    #[test]
    fn acyclic_graph_has_no_cycles() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b", "gone"])]);
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn finds_cycle_members_only() {
        let g = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &["a"])]);
        let found = cycles(&g);
        assert_eq!(found.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(found["a"], "dependency cycle through a, b, c");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let g = graph(&[("a", &["a"])]);
        assert_eq!(cycles(&g)["a"], "dependency cycle through a");
    }
}
