//! Cutting work into bounded aggregations: key values by row counts, `_id` ranges, local days.

use chrono::{Days, NaiveDate};

use crate::daily::DayRange;

/// Key values per aggregation, at most: bounds the size of the `$in` list a batch matches.
pub const KEYS_PER_BATCH: usize = 2_000;

/// Source rows per aggregation, at most (a single key value or day with more rows gets a batch of
/// its own): bounds what the server holds for one `$group`. MongoDB proper streams a `$group` and
/// spills past 100 MB with `allowDiskUse`; the dev server materialises a batch's rows, so this is what
/// keeps its memory in check on a backlog of a million plays.
pub const ROWS_PER_BATCH: u64 = 100_000;

/// One aggregation's share of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// Every row (a build with no ledger to size batches by).
    All,
    /// The rows that carry these key values.
    Keys(Vec<String>),
    /// The rows whose `_id` lies in `[from, to)` (unbounded where `None`).
    Ids(Option<String>, Option<String>),
}

/// [`id_ranges`] of known ids: boundaries every `per_batch` ids, in order.
pub fn ranges_of(mut ids: Vec<String>, per_batch: usize) -> Vec<Batch> {
    ids.sort_unstable();
    ids.dedup();
    if ids.len() <= per_batch {
        return vec![Batch::All];
    }
    let bounds: Vec<String> = ids
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && i % per_batch == 0)
        .map(|(_, id)| id)
        .collect();
    let mut batches = Vec::with_capacity(bounds.len() + 1);
    let mut from = None;
    for bound in bounds {
        batches.push(Batch::Ids(from, Some(bound.clone())));
        from = Some(bound);
    }
    batches.push(Batch::Ids(from, None));
    batches
}

/// Key values in batches of at most `max_rows` rows and `max_keys` values, in order; a value with more
/// rows than `max_rows` is a batch of its own.
pub fn pack_batches(
    counts: Vec<(String, u64)>,
    max_rows: u64,
    max_keys: usize,
) -> Vec<Vec<String>> {
    let mut batches = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    let mut rows = 0;
    for (key, count) in counts {
        if !batch.is_empty() && (rows + count > max_rows || batch.len() == max_keys) {
            batches.push(std::mem::take(&mut batch));
            rows = 0;
        }
        batch.push(key);
        rows += count;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Consecutive days as ranges `[from, to)`: `days` sorted `YYYY-MM-DD` (a value that is not a date is
/// skipped: the ledger lists only dates, and a range of it would match nothing sensible).
pub fn day_ranges<'a>(days: impl IntoIterator<Item = &'a str>) -> Vec<DayRange> {
    let mut ranges: Vec<DayRange> = Vec::new();
    for day in days {
        let Some(next) = next_day(day) else { continue };
        match ranges.last_mut() {
            Some(last) if last.to == day => last.to = next,
            _ => ranges.push(DayRange {
                from: day.to_string(),
                to: next,
            }),
        }
    }
    ranges
}

/// The day after `day` (`YYYY-MM-DD`).
pub fn next_day(day: &str) -> Option<String> {
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(
        date.checked_add_days(Days::new(1))?
            .format("%Y-%m-%d")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::{Batch, day_ranges, next_day, pack_batches, ranges_of};

    #[test]
    fn id_ranges_cover_everything_in_bounded_steps() {
        let ids: Vec<String> = (0..10).rev().map(|i| format!("id{i}")).collect();
        assert_eq!(ranges_of(ids.clone(), 20), vec![Batch::All]);
        let s = |t: &str| Some(t.to_string());
        assert_eq!(
            ranges_of(ids, 4),
            vec![
                Batch::Ids(None, s("id4")),
                Batch::Ids(s("id4"), s("id8")),
                Batch::Ids(s("id8"), None),
            ]
        );
    }

    fn counts(rows: &[u64]) -> Vec<(String, u64)> {
        rows.iter()
            .enumerate()
            .map(|(i, &n)| (format!("k{i:02}"), n))
            .collect()
    }

    #[test]
    fn batches_hold_at_most_the_row_and_key_limits() {
        let input = counts(&[40, 50, 20, 90, 10, 10, 10, 10]);
        let batches = pack_batches(input.clone(), 100, 3);
        let rows = |batch: &Vec<String>| -> u64 {
            batch
                .iter()
                .map(|k| input.iter().find(|(key, _)| key == k).unwrap().1)
                .sum()
        };
        assert!(batches.iter().all(|b| rows(b) <= 100 && b.len() <= 3));
        // Every key once, in order.
        let flat: Vec<String> = batches.concat();
        assert_eq!(
            flat,
            input.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
        );
        assert_eq!(batches.len(), 4, "{batches:?}");
    }

    #[test]
    fn a_key_over_the_row_limit_is_a_batch_of_its_own() {
        let batches = pack_batches(counts(&[10, 500, 10]), 100, 10);
        assert_eq!(batches, vec![vec!["k00"], vec!["k01"], vec!["k02"]]);
        assert!(pack_batches(Vec::new(), 100, 10).is_empty());
    }

    #[test]
    fn consecutive_days_make_one_range() {
        let days = [
            "2024-02-28",
            "2024-02-29",
            "2024-03-01",
            "2024-03-05",
            "not a day",
        ];
        let ranges = day_ranges(days);
        let pairs: Vec<(&str, &str)> = ranges
            .iter()
            .map(|r| (r.from.as_str(), r.to.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("2024-02-28", "2024-03-02"), ("2024-03-05", "2024-03-06")]
        );
        assert_eq!(next_day("2024-12-31").as_deref(), Some("2025-01-01"));
    }
}
