//! "Did you mean ...?" suggestions and case-insensitive name matching.
//!
//! Exchange parameter names ignore case, so `maxconnectionsperuser` is the same
//! parameter as `MaxConnectionsPerUser`: [`find_ignore_case`] is how readers
//! accept it and learn the canonical spelling. [`did_you_mean`] is only for
//! names that match nothing.

/// The candidate equal to `word` ignoring ASCII case, if any.
#[must_use]
pub fn find_ignore_case<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(word))
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
///
/// An exact match ignoring case wins. Otherwise the candidate with the smallest
/// edit distance (insertions, deletions, substitutions and swaps of adjacent
/// characters, ignoring case) is returned if that distance is at most a third
/// of the longer of the two names (at least 1); ties go to the earlier candidate.
#[must_use]
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    if let Some(exact) = find_ignore_case(word, candidates) {
        return Some(exact);
    }
    let word_lower: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
    let mut best: Option<(usize, &'c str)> = None;
    for &candidate in candidates {
        let cand_lower: Vec<char> = candidate.chars().flat_map(char::to_lowercase).collect();
        let limit = (word_lower.len().max(cand_lower.len()) / 3).max(1);
        // Cheap bound first: the length difference alone is a lower bound.
        if cand_lower.len().abs_diff(word_lower.len()) > limit {
            continue;
        }
        let d = edit_distance(&word_lower, &cand_lower);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent swaps), O(n·m)
/// time and O(m) memory. Manifest names are short, so this is plenty.
#[must_use]
pub fn edit_distance(a: &[char], b: &[char]) -> usize {
    // Three rows: two back (for swaps), previous, current.
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let del = prev
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            let sub = prev
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(cost);
            let mut best = del.min(ins).min(sub);
            if i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca) {
                let swap = prev2
                    .get(j - 1)
                    .copied()
                    .unwrap_or(usize::MAX)
                    .saturating_add(1);
                best = best.min(swap);
            }
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = best;
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// `did you mean 'X'?` for a hint, if there is a close candidate.
#[must_use]
pub fn did_you_mean_hint(word: &str, candidates: &[&str]) -> Option<String> {
    did_you_mean(word, candidates).map(|c| format!("did you mean '{c}'?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        edit_distance(&a, &b)
    }

    #[test]
    fn edit_distance_counts_edits_and_swaps() {
        assert_eq!(dist("", ""), 0);
        assert_eq!(dist("abc", ""), 3);
        assert_eq!(dist("", "abc"), 3);
        assert_eq!(dist("kitten", "sitting"), 3);
        assert_eq!(dist("ab", "ba"), 1);
        assert_eq!(dist("MaxConnectionPerUser", "MaxConnectionsPerUser"), 1);
    }

    const PARAMS: &[&str] = &[
        "MaxConnections",
        "MaxConnectionFromSingleIP",
        "MaxConnectionsPerUser",
        "Banner",
    ];

    #[test]
    fn suggestions_prefer_case_insensitive_exact_matches() {
        assert_eq!(
            did_you_mean("maxconnectionsperuser", PARAMS),
            Some("MaxConnectionsPerUser")
        );
        assert_eq!(
            did_you_mean("MaxConnectionPerUser", PARAMS),
            Some("MaxConnectionsPerUser")
        );
        assert_eq!(did_you_mean("banenr", PARAMS), Some("Banner"));
        assert_eq!(did_you_mean("Timeout", PARAMS), None);
        assert_eq!(did_you_mean("x", PARAMS), None);
        assert_eq!(did_you_mean("", PARAMS), None);
        assert_eq!(did_you_mean("anything", &[]), None);
    }

    #[test]
    fn find_ignore_case_returns_the_canonical_spelling() {
        assert_eq!(find_ignore_case("BANNER", PARAMS), Some("Banner"));
        assert_eq!(find_ignore_case("Banners", PARAMS), None);
        assert_eq!(
            did_you_mean_hint("Bannr", PARAMS).as_deref(),
            Some("did you mean 'Banner'?")
        );
    }
}
