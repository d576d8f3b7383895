//! "Did you mean" suggestions by edit distance, and byte offsets to lines.

use super::error::Position;

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo: `restart_delay` → `restart-delay`, `simpel` → `simple`.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let word = word.to_ascii_lowercase().replace('_', "-");
    // A third of the word may be wrong, and at least one character.
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Edit distance counting a swap of two neighbours as one edit (optimal
/// string alignment), so `tpc` is one edit from `tcp`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: distance between the first i chars of a and the first j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The 1-based line and column (in characters) of a byte offset in `text`.
/// Offsets past the end or inside a character are clamped, never a panic.
pub fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("simpel", "simple"), 1);
        assert_eq!(distance("tpc", "tcp"), 1);
    }

    #[test]
    fn suggests_close_words_only() {
        let keys = ["restart", "restart-delay", "restart-delay-max", "user"];
        assert_eq!(suggest("restart_delay", keys), Some("restart-delay".into()));
        assert_eq!(suggest("Restart", keys), Some("restart".into()));
        assert_eq!(suggest("usr", keys), Some("user".into()));
        assert_eq!(suggest("frobnicate", keys), None);
        assert_eq!(
            suggest("simpel", ["simple", "oneshot", "notify"]),
            Some("simple".into())
        );
        assert_eq!(suggest("x", ["simple"]), None);
    }

    #[test]
    fn positions_are_one_based_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(position(text, 0), Position { line: 1, column: 1 });
        assert_eq!(position(text, 6), Position { line: 2, column: 1 });
        assert_eq!(position(text, 9), Position { line: 2, column: 3 });
        // Inside "é" and past the end: clamped.
        assert_eq!(position(text, 8), Position { line: 2, column: 2 });
        assert_eq!(position(text, 999), Position { line: 3, column: 1 });
    }
}
