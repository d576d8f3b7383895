//! Sorting, and building B-tree maps and sets, through one copy of std's
//! sort.
//!
//! Why: every `sort`, `sort_by_key` and `collect()` into a `BTreeMap` or
//! `BTreeSet` (which sorts what it is given first) makes its own copy of
//! std's stable sort for its element type, about 4 KiB of the static binary
//! each. These sort a list of positions instead, through one shared copy,
//! or insert one by one. The order is the same (stable); the cost is a
//! list of positions, on lists of units, files and errors.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// `v.sort_by(cmp)`: stable.
pub fn sort_by<T>(v: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    sort_positions(&mut order, &mut |a, b| match (v.get(a), v.get(b)) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => Ordering::Equal,
    });
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// `v.sort()`.
pub fn sort<T: Ord>(v: &mut Vec<T>) {
    sort_by(v, T::cmp);
}

/// `v.sort_by_key(key)`: stable.
pub fn sort_by_key<T, K: Ord>(v: &mut Vec<T>, mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// The one instance of std's sort.
#[inline(never)]
fn sort_positions(order: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    order.sort_by(|a, b| cmp(*a, *b));
}

/// `items.collect::<BTreeMap<_, _>>()`, for keys given once.
pub fn map<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    for (k, v) in items {
        map.insert(k, v);
    }
    map
}

/// `items.collect::<BTreeSet<_>>()`.
pub fn set<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    for item in items {
        set.insert(item);
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_as_std_does() {
        let words = ["b3", "a1", "c0", "a0", "b1", "a2", "c2", "b0"];
        let mut mine: Vec<&str> = words.to_vec();
        let mut std_: Vec<&str> = words.to_vec();
        // By the letter only: stable, so equal letters keep their order.
        sort_by_key(&mut mine, |w| w.as_bytes()[0]);
        std_.sort_by_key(|w| w.as_bytes()[0]);
        assert_eq!(mine, std_);
        sort(&mut mine);
        std_.sort();
        assert_eq!(mine, std_);
        let mut empty: Vec<u8> = Vec::new();
        sort(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn collects_as_std_does() {
        let pairs = [(3, "c"), (1, "a"), (2, "b")];
        assert_eq!(map(pairs), pairs.into_iter().collect::<BTreeMap<_, _>>());
        assert_eq!(set([3, 1, 3, 2]), [3, 1, 3, 2].into_iter().collect::<BTreeSet<_>>());
    }
}
