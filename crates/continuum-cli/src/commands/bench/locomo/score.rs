//! Scores of the answers: per question, then per setting, per category and per fold, and the
//! cross-validated choice of a setting.

use super::data::SCORED;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// What one question's answer scored, for each cut-off k.
pub(super) struct Row {
    /// Index of the question's conversation in the file.
    pub(super) conversation: usize,
    pub(super) category: u64,
    /// Turn level: share of the evidence turns among the top k turns, and whether any is.
    pub(super) recall: Vec<f64>,
    pub(super) hit: Vec<bool>,
    /// Session level: share of the evidence turns' sessions among the first k distinct
    /// sessions of the ranked turns, and whether any is.
    pub(super) session_recall: Vec<f64>,
    pub(super) session_hit: Vec<bool>,
}

/// Share of `wanted` among the first k of `ranked`, for each k.
pub(super) fn recall_at<T: std::hash::Hash + Eq>(
    ranked: &[T],
    wanted: &HashSet<T>,
    ks: &[usize],
) -> Vec<f64> {
    ks.iter()
        .map(|&k| {
            let found = ranked.iter().take(k).filter(|t| wanted.contains(t)).count();
            found as f64 / wanted.len().max(1) as f64
        })
        .collect()
}

/// The distinct items of `ranked` in order of first appearance.
pub(super) fn distinct<T: std::hash::Hash + Eq + Copy>(ranked: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    ranked.filter(|x| seen.insert(*x)).collect()
}

#[derive(Debug, Default, Clone, Serialize)]
pub(super) struct Scores {
    pub(super) questions: usize,
    pub(super) recall_at: BTreeMap<String, f64>,
    pub(super) hit_at: BTreeMap<String, f64>,
    pub(super) session_recall_at: BTreeMap<String, f64>,
    pub(super) session_hit_at: BTreeMap<String, f64>,
}

/// Averages over `rows` (empty maps for no rows).
pub(super) fn score(rows: &[&Row], ks: &[usize]) -> Scores {
    let mut s = Scores {
        questions: rows.len(),
        ..Default::default()
    };
    if rows.is_empty() {
        return s;
    }
    let n = rows.len() as f64;
    let mean = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| f(r)).sum::<f64>() / n;
    let share = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count() as f64 / n;
    for (i, k) in ks.iter().enumerate() {
        let k = k.to_string();
        s.recall_at.insert(k.clone(), mean(&|r| r.recall[i]));
        s.hit_at.insert(k.clone(), share(&|r| r.hit[i]));
        s.session_recall_at
            .insert(k.clone(), mean(&|r| r.session_recall[i]));
        s.session_hit_at.insert(k, share(&|r| r.session_hit[i]));
    }
    s
}

/// Scores of the rows per scored category present.
pub(super) fn by_category(rows: &[&Row], ks: &[usize]) -> BTreeMap<String, Scores> {
    SCORED
        .iter()
        .filter_map(|&c| {
            let rows: Vec<&Row> = rows.iter().copied().filter(|r| r.category == c).collect();
            (!rows.is_empty()).then(|| (c.to_string(), score(&rows, ks)))
        })
        .collect()
}

/// One fold of a cross-validation: the setting chosen on the other folds, and what it scored
/// on this one.
#[derive(Debug, Serialize)]
pub(super) struct Fold {
    pub(super) fold: usize,
    /// Indices (in the file) of the conversations held out.
    pub(super) conversations: Vec<usize>,
    /// The setting with the best selection score on the other folds.
    pub(super) chosen: String,
    /// Its selection score on the other folds (what it was chosen by).
    pub(super) tuning_score: f64,
    /// Its scores on this fold, which took no part in choosing it.
    pub(super) held_out: Scores,
}

/// How one setting did on each fold (selection metric).
#[derive(Debug, Serialize)]
pub(super) struct SettingFolds {
    pub(super) setting: String,
    pub(super) by_fold: Vec<f64>,
    pub(super) mean: f64,
    pub(super) worst: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct CrossValidation {
    pub(super) folds: usize,
    /// The metric settings were chosen by, e.g. `R@10`.
    pub(super) selected_by: String,
    pub(super) by_fold: Vec<Fold>,
    /// Mean and smallest held-out turn-level recall@k over the folds.
    pub(super) mean_recall_at: BTreeMap<String, f64>,
    pub(super) worst_recall_at: BTreeMap<String, f64>,
    /// Every held-out answer together (each question scored by the setting chosen without its
    /// conversation), overall and per category.
    pub(super) held_out: Scores,
    pub(super) held_out_by_category: BTreeMap<String, Scores>,
    /// Each setting's selection score per fold, to see whether a change helps every fold.
    pub(super) settings: Vec<SettingFolds>,
}

/// Nested cross-validation over conversations: conversation i is in fold `i % folds`. For each
/// fold the setting with the best turn-level recall@`select_k` on the other folds' questions
/// is chosen and scored on the fold's own questions. `rows[s]` are setting `s`'s answers.
pub(super) fn cross_validate(
    settings: &[String],
    rows: &[Vec<Row>],
    ks: &[usize],
    folds: usize,
    select_k: usize,
) -> CrossValidation {
    let sel = ks.iter().position(|&k| k == select_k).unwrap_or(0);
    let fold_of = |r: &Row| r.conversation % folds;
    // Mean selection metric of setting s over the rows `keep` accepts.
    let metric = |s: usize, keep: &dyn Fn(&Row) -> bool| {
        let chosen: Vec<f64> = rows[s]
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.recall[sel])
            .collect();
        chosen.iter().sum::<f64>() / chosen.len().max(1) as f64
    };
    let mut by_fold = Vec::new();
    let mut pooled: Vec<&Row> = Vec::new();
    for f in 0..folds {
        // Ties go to the setting listed first (the defaults when they are listed).
        let mut best = (0usize, f64::NEG_INFINITY);
        for s in 0..settings.len() {
            let m = metric(s, &|r| fold_of(r) != f);
            if m > best.1 {
                best = (s, m);
            }
        }
        let held: Vec<&Row> = rows[best.0].iter().filter(|r| fold_of(r) == f).collect();
        let mut conversations: Vec<usize> = held.iter().map(|r| r.conversation).collect();
        conversations.sort_unstable();
        conversations.dedup();
        by_fold.push(Fold {
            fold: f,
            conversations,
            chosen: settings[best.0].clone(),
            tuning_score: best.1,
            held_out: score(&held, ks),
        });
        pooled.extend(held);
    }
    let scored: Vec<&Fold> = by_fold
        .iter()
        .filter(|f| f.held_out.questions > 0)
        .collect();
    let mut mean_recall_at = BTreeMap::new();
    let mut worst_recall_at = BTreeMap::new();
    for k in ks {
        let k = k.to_string();
        let vals: Vec<f64> = scored.iter().map(|f| f.held_out.recall_at[&k]).collect();
        mean_recall_at.insert(
            k.clone(),
            vals.iter().sum::<f64>() / vals.len().max(1) as f64,
        );
        worst_recall_at.insert(k, vals.iter().copied().fold(f64::INFINITY, f64::min));
    }
    let settings = settings
        .iter()
        .enumerate()
        .map(|(s, name)| {
            let by_fold: Vec<f64> = (0..folds)
                .map(|f| metric(s, &|r| fold_of(r) == f))
                .collect();
            SettingFolds {
                setting: name.clone(),
                mean: by_fold.iter().sum::<f64>() / folds as f64,
                worst: by_fold.iter().copied().fold(f64::INFINITY, f64::min),
                by_fold,
            }
        })
        .collect();
    CrossValidation {
        folds,
        selected_by: format!("R@{}", ks[sel]),
        by_fold,
        mean_recall_at,
        worst_recall_at,
        held_out: score(&pooled, ks),
        held_out_by_category: by_category(&pooled, ks),
        settings,
    }
}

/// One table row per scores: turn-level recall@k and hit@k, then session-level.
pub(super) fn print_table(ks: &[usize], lines: &[(String, &Scores)]) {
    let head: Vec<String> = ks
        .iter()
        .map(|k| format!("R@{k:<5}"))
        .chain(ks.iter().map(|k| format!("H@{k:<5}")))
        .chain(ks.iter().map(|k| format!("sR@{k:<4}")))
        .chain(ks.iter().map(|k| format!("sH@{k:<4}")))
        .collect();
    println!("{:<12} {:>5}  {}", "", "n", head.join(" "));
    for (name, s) in lines {
        let col = |m: &BTreeMap<String, f64>| -> Vec<String> {
            ks.iter()
                .map(|k| format!("{:<7.3}", m.get(&k.to_string()).copied().unwrap_or(0.0)))
                .collect()
        };
        let vals: Vec<String> = col(&s.recall_at)
            .into_iter()
            .chain(col(&s.hit_at))
            .chain(col(&s.session_recall_at))
            .chain(col(&s.session_hit_at))
            .collect();
        println!("{name:<12} {:>5}  {}", s.questions, vals.join(" "));
    }
}

pub(super) fn print_cross_validation(cv: &CrossValidation, ks: &[usize]) {
    println!(
        "cross-validation: {} folds over conversations (conversation i in fold i mod {}); \
         each fold scored with the setting of best {} on the other folds",
        cv.folds, cv.folds, cv.selected_by
    );
    for f in &cv.by_fold {
        println!(
            "  fold {} (conversations {:?}): chosen {} ({} {:.3} on the other folds)",
            f.fold, f.conversations, f.chosen, cv.selected_by, f.tuning_score
        );
    }
    let mut lines: Vec<(String, &Scores)> = cv
        .by_fold
        .iter()
        .map(|f| (format!("fold {}", f.fold), &f.held_out))
        .collect();
    lines.push(("held out".into(), &cv.held_out));
    for (c, s) in &cv.held_out_by_category {
        lines.push((format!("  cat {c}"), s));
    }
    print_table(ks, &lines);
    let fmt = |m: &BTreeMap<String, f64>| -> String {
        ks.iter()
            .map(|k| format!("R@{k} {:.3}", m[&k.to_string()]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("mean of folds: {}", fmt(&cv.mean_recall_at));
    println!("worst fold:    {}", fmt(&cv.worst_recall_at));
    if cv.settings.len() > 1 {
        println!("{} of each setting per fold:", cv.selected_by);
        for s in &cv.settings {
            let folds: Vec<String> = s.by_fold.iter().map(|v| format!("{v:.3}")).collect();
            println!(
                "  {}  mean {:.3} worst {:.3}  [{}]",
                s.setting,
                s.mean,
                s.worst,
                folds.join(" ")
            );
        }
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(conversation: usize, r10: f64) -> Row {
        Row {
            conversation,
            category: 4,
            recall: vec![r10],
            hit: vec![r10 > 0.0],
            session_recall: vec![r10],
            session_hit: vec![r10 > 0.0],
        }
    }

    #[test]
    fn each_fold_is_scored_with_the_setting_chosen_without_it() {
        // Setting "a" is best on conversations 0 and 1, "b" on conversation 2.
        let rows = vec![
            vec![row(0, 1.0), row(1, 1.0), row(2, 0.0)],
            vec![row(0, 0.5), row(1, 0.5), row(2, 1.0)],
        ];
        let settings = vec!["a".to_string(), "b".to_string()];
        let cv = cross_validate(&settings, &rows, &[10], 3, 10);
        // Fold 2 (conversation 2) is chosen on 0 and 1: "a", which scores 0 there.
        assert_eq!(cv.by_fold[2].chosen, "a");
        assert_eq!(cv.by_fold[2].held_out.recall_at["10"], 0.0);
        // Folds 0 and 1 see "a" at 0.5 and "b" at 0.75 on the others: "b" is chosen.
        assert_eq!(cv.by_fold[0].chosen, "b");
        assert_eq!(cv.by_fold[0].held_out.recall_at["10"], 0.5);
        assert!((cv.mean_recall_at["10"] - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(cv.worst_recall_at["10"], 0.0);
        assert_eq!(cv.held_out.questions, 3);
        assert_eq!(cv.settings[1].by_fold, vec![0.5, 0.5, 1.0]);
    }

    #[test]
    fn session_recall_counts_distinct_sessions_in_rank_order() {
        let sessions = distinct([3u64, 3, 1, 3, 2].into_iter());
        assert_eq!(sessions, vec![3, 1, 2]);
        let wanted: HashSet<u64> = [1, 2].into_iter().collect();
        assert_eq!(
            recall_at(&sessions, &wanted, &[1, 2, 3]),
            vec![0.0, 0.5, 1.0]
        );
    }
}
