//! Calibration of stated confidences against outcomes.
//!
//! Given claims, each with the confidence it was made with (in [0, 1]) and whether it turned out
//! correct, a [`Report`] says how well the confidences meant what they said:
//!
//! - the Brier score: the mean of (confidence − outcome)², 0 for perfect foresight, 0.25 for
//!   always saying 0.5;
//! - a reliability table: the claims in `bins` equal-width confidence bins (the last one closed),
//!   each with its count, mean confidence and accuracy;
//! - the expected calibration error (ECE): the bins' |accuracy − mean confidence|, weighted by
//!   their share of the claims;
//! - the shares of claims in over-confident bins (accuracy below the mean confidence by more
//!   than `tolerance`) and under-confident ones;
//! - one sentence of advice.

/// One bin of a reliability table.
#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    /// The bin's confidence range: [low, high), the last one [low, 1].
    pub low: f64,
    pub high: f64,
    pub count: usize,
    /// Mean confidence of its claims (None when empty).
    pub confidence: Option<f64>,
    /// Share of its claims that were correct (None when empty).
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub claims: usize,
    pub correct: usize,
    /// None without claims.
    pub brier: Option<f64>,
    pub ece: Option<f64>,
    pub bins: Vec<Bin>,
    /// Share of the claims in bins whose accuracy falls short of their confidence.
    pub over_confident: f64,
    /// Share of the claims in bins whose accuracy exceeds their confidence.
    pub under_confident: f64,
    pub advice: String,
}

/// A bin's accuracy within this much of its confidence counts as calibrated.
pub const TOLERANCE: f64 = 0.05;

/// The report for `(confidence, correct)` pairs, in `bins` bins (1 to 100). Confidences
/// outside [0, 1] or not numbers are an error (the caller validated them when they were stored).
pub fn report(claims: &[(f64, bool)], bins: usize) -> Result<Report, String> {
    if bins == 0 || bins > 100 {
        return Err("bins must be between 1 and 100".into());
    }
    if let Some((c, _)) = claims.iter().find(|(c, _)| !(0.0..=1.0).contains(c)) {
        return Err(format!("confidence {c} is outside [0, 1]"));
    }
    let n = claims.len();
    let correct = claims.iter().filter(|(_, ok)| *ok).count();
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for &(c, ok) in claims {
        let i = ((c * bins as f64) as usize).min(bins - 1);
        sums[i].0 += 1;
        sums[i].1 += c;
        sums[i].2 += ok as usize;
    }
    let table: Vec<Bin> = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, conf, ok))| Bin {
            low: i as f64 / bins as f64,
            high: (i + 1) as f64 / bins as f64,
            count,
            confidence: (count > 0).then(|| conf / count as f64),
            accuracy: (count > 0).then(|| ok as f64 / count as f64),
        })
        .collect();
    if n == 0 {
        return Ok(Report {
            claims: 0,
            correct: 0,
            brier: None,
            ece: None,
            bins: table,
            over_confident: 0.0,
            under_confident: 0.0,
            advice: "No verified claims yet: verify some to learn how calibrated they are.".into(),
        });
    }
    let brier = claims
        .iter()
        .map(|&(c, ok)| (c - ok as u8 as f64).powi(2))
        .sum::<f64>()
        / n as f64;
    let (mut ece, mut over, mut under) = (0.0, 0usize, 0usize);
    for b in &table {
        if let (Some(conf), Some(acc)) = (b.confidence, b.accuracy) {
            ece += b.count as f64 / n as f64 * (acc - conf).abs();
            if acc < conf - TOLERANCE {
                over += b.count;
            } else if acc > conf + TOLERANCE {
                under += b.count;
            }
        }
    }
    let (over, under) = (over as f64 / n as f64, under as f64 / n as f64);
    let advice = if n < 10 {
        format!(
            "Only {n} verified claim{}: too few to judge calibration.",
            if n == 1 { "" } else { "s" }
        )
    } else if ece <= TOLERANCE {
        "Well calibrated: stated confidences match how often claims turn out right.".into()
    } else if over >= under {
        "Over-confident: claims come true less often than their confidence says; state lower confidences.".into()
    } else {
        "Under-confident: claims come true more often than their confidence says; state higher confidences.".into()
    };
    Ok(Report {
        claims: n,
        correct,
        brier: Some(brier),
        ece: Some(ece),
        bins: table,
        over_confident: over,
        under_confident: under,
        advice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn brier_and_ece_match_hand_computed_values() {
        // 0.9 right, 0.9 wrong, 0.2 wrong, 0.6 right.
        // Brier: (0.01 + 0.81 + 0.04 + 0.16) / 4 = 0.255.
        let claims = [(0.9, true), (0.9, false), (0.2, false), (0.6, true)];
        let r = report(&claims, 5).unwrap();
        assert!(close(r.brier.unwrap(), 0.255), "{:?}", r.brier);
        // Bins of 0.2: [0.2, 0.4) holds 0.2 (acc 0), [0.6, 0.8) holds 0.6 (acc 1),
        // [0.8, 1] holds both 0.9 (acc 0.5).
        let counts: Vec<usize> = r.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![0, 1, 0, 1, 2]);
        assert_eq!(r.bins[4].accuracy, Some(0.5));
        assert!(close(r.bins[4].confidence.unwrap(), 0.9));
        // ECE: 1/4 × |0 − 0.2| + 1/4 × |1 − 0.6| + 2/4 × |0.5 − 0.9| = 0.05 + 0.1 + 0.2.
        assert!(close(r.ece.unwrap(), 0.35), "{:?}", r.ece);
        // Over-confident: the 0.2 bin (0 < 0.15) and the top bin: 3 of 4; under: 0.6 bin.
        assert!(close(r.over_confident, 0.75));
        assert!(close(r.under_confident, 0.25));
        assert_eq!((r.claims, r.correct), (4, 2));
        assert!(r.advice.contains("too few"), "{}", r.advice);
    }

    #[test]
    fn a_confidence_of_one_falls_in_the_last_bin_and_bad_input_is_refused() {
        let r = report(&[(1.0, true), (0.0, false)], 10).unwrap();
        assert_eq!(r.bins[9].count, 1);
        assert_eq!(r.bins[0].count, 1);
        assert!(close(r.brier.unwrap(), 0.0));
        assert!(report(&[(1.5, true)], 10).is_err());
        assert!(report(&[(f64::NAN, true)], 10).is_err());
        assert!(report(&[], 0).is_err());
        let empty = report(&[], 10).unwrap();
        assert_eq!((empty.brier, empty.ece), (None, None));
    }

    #[test]
    fn advice_follows_the_direction_of_the_error() {
        // Always 0.9, right half the time: over-confident.
        let over: Vec<(f64, bool)> = (0..20).map(|i| (0.9, i % 2 == 0)).collect();
        let r = report(&over, 10).unwrap();
        assert!(r.advice.starts_with("Over-confident"), "{}", r.advice);
        // Always 0.3, right nine times in ten: under-confident.
        let under: Vec<(f64, bool)> = (0..20).map(|i| (0.3, i % 10 != 0)).collect();
        assert!(
            report(&under, 10)
                .unwrap()
                .advice
                .starts_with("Under-confident")
        );
        // 0.7 right seven times in ten: calibrated.
        let fine: Vec<(f64, bool)> = (0..20).map(|i| (0.7, i % 10 < 7)).collect();
        let r = report(&fine, 10).unwrap();
        assert!(r.advice.starts_with("Well calibrated"), "{}", r.advice);
        assert!(close(r.ece.unwrap(), 0.0));
    }
}
