//! Time per lexical search on a generated 10k-document index (sessions of 12 turns, a
//! vocabulary shaped like `continuum bench`'s): `cargo bench -p continuum-index --bench search`.
//! A plain loop, not a statistics harness: it prints the mean time per search of each ranking.

use continuum_core::store::{IndexDoc, MemoryFilter, MemoryHead};
use continuum_core::{MemoryId, SessionId, Source, Timestamp};
use continuum_index::{Analyzer, TextIndex};
use std::time::Instant;

const COMMON: &[&str] = &[
    "plan", "service", "near", "went", "billing", "mobile", "app", "test", "team", "weekend",
    "deploy", "review", "migrate", "fallback", "keeps", "failing", "ticket", "dinner",
];
const RARE: usize = 400;

struct Rng(u64);
impl Rng {
    fn next(&mut self, m: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % m
    }
}

fn word(rng: &mut Rng) -> String {
    if rng.next(3) == 0 {
        COMMON[rng.next(COMMON.len() as u64) as usize].to_string()
    } else {
        format!("w{}x", rng.next(RARE as u64))
    }
}

fn main() {
    let n = 10_000;
    let mut rng = Rng(42);
    let mut a = Analyzer::new();
    let mut ix = TextIndex::new();
    for i in 0..n {
        let text: Vec<String> = (0..20).map(|_| word(&mut rng)).collect();
        ix.add(
            &mut a,
            IndexDoc {
                head: MemoryHead {
                    id: MemoryId::new_at(i as i64),
                    source: Source::User,
                    session: Some(SessionId::new(format!("s{}", i / 12)).unwrap()),
                    created_at: Timestamp(i as i64),
                    superseded: false,
                },
                content: text.join(" "),
                concepts: Vec::new(),
                speaker: None,
            },
        );
    }
    let queries: Vec<Vec<u32>> = (0..500)
        .map(|_| {
            let q: Vec<String> = (0..4).map(|_| word(&mut rng)).collect();
            ix.query_terms(&mut a, &q.join(" "), 32)
        })
        .collect();
    let all = MemoryFilter::default();
    let rounds = 4;
    let mut sink = 0usize;
    let started = Instant::now();
    for _ in 0..rounds {
        for q in &queries {
            sink += ix.search_expanded(q, &[0.6, 0.3], 0.7, 1.0, &all, 60).len();
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / (rounds * queries.len()) as f64;
    println!("search_expanded (60 results): {per:.1} µs per search ({sink} hits)");
    let started = Instant::now();
    for _ in 0..rounds {
        for q in &queries {
            sink += ix.search(q, &all, 60).len();
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / (rounds * queries.len()) as f64;
    println!("search (plain BM25, 60 results): {per:.1} µs per search ({sink} hits)");
}
