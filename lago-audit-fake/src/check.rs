//! The one judge of "exactly once" for every crate's tests: compares what a reader got with the
//! fake's ground truth, as multisets of record keys, and reports losses and repeats by count
//! (never 100,000 keys).

use std::collections::HashMap;

/// How `got` differs from `want`, counted per key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records of `want` missing from `got` (counting each missing copy).
    pub lost: u64,
    /// Records in `got` more often than in `want` (counting each extra copy).
    pub repeated: u64,
    /// Records in `got`.
    pub got: u64,
    /// Records in `want`.
    pub want: u64,
}

impl Tally {
    /// Compares `got` with `want`.
    pub fn of<G: AsRef<str>, W: AsRef<str>>(got: &[G], want: &[W]) -> Self {
        let mut counts: HashMap<&str, i64> = HashMap::with_capacity(want.len());
        for k in want {
            *counts.entry(k.as_ref()).or_default() += 1;
        }
        for k in got {
            *counts.entry(k.as_ref()).or_default() -= 1;
        }
        let lost = counts.values().filter(|c| **c > 0).sum::<i64>();
        let repeated = -counts.values().filter(|c| **c < 0).sum::<i64>();
        Self {
            lost: lost.unsigned_abs(),
            repeated: repeated.unsigned_abs(),
            got: got.len() as u64,
            want: want.len() as u64,
        }
    }

    /// Every record once: nothing lost, nothing repeated.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.repeated == 0 && self.got == self.want
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} lost, {} repeated ({} read, {} expected)",
            self.lost, self.repeated, self.got, self.want
        )
    }
}

/// Asserts that `got` holds the keys of `want`, each as often: every record exactly once.
///
/// # Panics
///
/// When they differ, with `context` and the [`Tally`].
#[track_caller]
pub fn assert_exactly_once<G: AsRef<str>, W: AsRef<str>>(got: &[G], want: &[W], context: &str) {
    let tally = Tally::of(got, want);
    assert!(tally.exact(), "{context}: {tally}");
    eprintln!("{context}: {} records, 0 lost, 0 repeated", tally.got);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_losses_and_repeats() {
        assert!(Tally::of(&["a", "b"], &["b", "a"]).exact());
        let t = Tally::of(&["a", "a", "c"], &["a", "b", "c"]);
        assert_eq!((t.lost, t.repeated), (1, 1));
        assert!(!t.exact());
        assert!(
            std::panic::catch_unwind(|| assert_exactly_once(&["a"], &["a", "a"], "x")).is_err()
        );
    }
}
