//! Checks across units: dependencies name units that exist, there are no
//! dependency cycles, at most one unit is `main`, and a unit that requires
//! an invalid unit is invalid too (it could never start).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::error::{Position, Problem, UnitError};
use super::suggest::suggest;
use super::validate::{Checked, Dep};
use super::Unit;

/// Each loaded file's name, its unit if it was well-formed, and its errors.
pub type Parsed = BTreeMap<String, (Option<Checked>, Vec<UnitError>)>;

/// Splits the parsed files into valid units and invalid ones with their
/// errors, after the checks across units.
pub fn check(mut parsed: Parsed) -> (BTreeMap<String, Unit>, BTreeMap<String, Vec<UnitError>>) {
    unknown_dependencies(&mut parsed);
    many_mains(&mut parsed);
    let in_cycles = cycles(&mut parsed);
    requires_invalid(&mut parsed, &in_cycles);
    let mut units = BTreeMap::new();
    let mut invalid = BTreeMap::new();
    for (name, (checked, errors)) in parsed {
        match checked {
            Some(c) if errors.is_empty() => drop(units.insert(name, c.unit)),
            _ => drop(invalid.insert(name, errors)),
        }
    }
    (units, invalid)
}

fn error(c: &Checked, at: Position, problem: Problem) -> UnitError {
    UnitError {
        file: c.file.clone(),
        at: Some(at),
        problem,
    }
}

fn is_valid(entry: &(Option<Checked>, Vec<UnitError>)) -> bool {
    entry.0.is_some() && entry.1.is_empty()
}

/// `after` and `requires` must name units that have a file, valid or not.
fn unknown_dependencies(parsed: &mut Parsed) {
    let names: Vec<String> = parsed.keys().cloned().collect();
    for (checked, errors) in parsed.values_mut() {
        for dep in checked.iter().flat_map(|c| &c.deps) {
            if !names.contains(&dep.name) {
                let hint = suggest(&dep.name, names.iter().map(String::as_str));
                let problem = Problem::UnknownDependency {
                    kind: dep.kind,
                    name: dep.name.clone(),
                    hint,
                };
                errors.extend(checked.as_ref().map(|c| error(c, dep.at, problem)));
            }
        }
    }
}

fn many_mains(parsed: &mut Parsed) {
    let mains: Vec<String> = parsed
        .iter()
        .filter(|(_, (c, _))| c.as_ref().is_some_and(|c| c.unit.service.main))
        .map(|(name, _)| name.clone())
        .collect();
    if mains.len() < 2 {
        return;
    }
    for name in &mains {
        let Some((Some(c), errors)) = parsed.get_mut(name) else {
            continue;
        };
        let at = c.main_at.unwrap_or(Position { line: 1, column: 1 });
        errors.push(error(
            c,
            at,
            Problem::ManyMains {
                units: mains.join(", "),
            },
        ));
    }
}

/// Reports, on each valid unit in a cycle, the cycle starting from it.
/// Returns the cycle of each such unit.
fn cycles(parsed: &mut Parsed) -> BTreeMap<String, Vec<String>> {
    let edges: BTreeMap<String, Vec<String>> = crate::sorted::map(
        parsed
            .iter()
            .filter(|(_, entry)| is_valid(entry))
            .filter_map(|(name, (c, _))| {
                let deps = c.as_ref()?.deps.iter().map(|d| d.name.clone());
                Some((
                    name.clone(),
                    deps.filter(|d| parsed.get(d).is_some_and(is_valid)).collect(),
                ))
            }),
    );
    let mut found = BTreeMap::new();
    for name in edges.keys() {
        let Some(path) = cycle_from(name, &edges) else {
            continue;
        };
        let Some((Some(c), errors)) = parsed.get_mut(name) else {
            continue;
        };
        let first = path.get(1).and_then(|next| c.deps.iter().find(|d| d.name == *next));
        let at = first.map_or(Position { line: 1, column: 1 }, |d| d.at);
        errors.push(error(
            c,
            at,
            Problem::Cycle {
                path: path.join(" -> "),
            },
        ));
        found.insert(name.clone(), path);
    }
    found
}

/// The shortest path from `start` back to itself, both ends included.
fn cycle_from(start: &str, edges: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in edges.get(node).into_iter().flatten() {
            if next == start {
                return Some(path_back(start, node, &parent));
            }
            if !parent.contains_key(next.as_str()) {
                parent.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

fn path_back(start: &str, last: &str, parent: &BTreeMap<&str, &str>) -> Vec<String> {
    let mut chain = Vec::new();
    let mut at = last;
    while at != start {
        chain.push(at);
        at = parent.get(at).copied().unwrap_or(start);
    }
    let inner = chain.into_iter().rev();
    std::iter::once(start)
        .chain(inner)
        .chain([start])
        .map(String::from)
        .collect()
}

/// Reports, on every unit, each required unit that is invalid, counting
/// as invalid the units that require an invalid one, and so on. A unit in
/// the same cycle is not reported again.
fn requires_invalid(parsed: &mut Parsed, in_cycles: &BTreeMap<String, Vec<String>>) {
    let mut bad: BTreeSet<String> = crate::sorted::set(
        parsed
            .iter()
            .filter(|(_, entry)| !is_valid(entry))
            .map(|(name, _)| name.clone()),
    );
    loop {
        let newly: Vec<String> = parsed
            .iter()
            .filter(|(name, (c, _))| !bad.contains(*name) && requires_any(c, &bad))
            .map(|(name, _)| name.clone())
            .collect();
        if newly.is_empty() {
            break;
        }
        bad.extend(newly);
    }
    for (name, (checked, errors)) in parsed.iter_mut() {
        let Some(c) = checked else { continue };
        let cycle = in_cycles.get(name);
        let reported = |d: &&Dep| cycle.is_some_and(|path| path.contains(&d.name));
        let broken = c.deps.iter().filter(|d| d.kind == "requires" && bad.contains(&d.name));
        for dep in broken.filter(|d| !reported(d)) {
            errors.push(error(c, dep.at, Problem::RequiresInvalid { name: dep.name.clone() }));
        }
    }
}

fn requires_any(checked: &Option<Checked>, names: &BTreeSet<String>) -> bool {
    let deps = checked.iter().flat_map(|c| &c.deps);
    deps.filter(|d| d.kind == "requires").any(|d| names.contains(&d.name))
}
