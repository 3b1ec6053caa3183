//! How concepts evolved, read back from the event log that every write appends to: a concept's
//! timeline (created, first linked to each other concept, links passing strength thresholds,
//! contradicted) and a growth report over a window (new concepts and links, the most active
//! concepts).
//!
//! Nothing extra is written at `learn`: the `concept.created`, `links.strengthened`,
//! `memory.created` and `contradiction.saved` events already say all of it. A read scans the
//! tenant's events oldest first, at most [`MAX_TIMELINE_EVENTS`] of them (and none before the
//! log's compaction point); the answer says where it started and whether it stopped early.

use super::*;
use continuum_core::store::LinkWrite;
use continuum_core::{Event, EventScope, Timestamp};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Events one timeline or growth read scans at most.
pub const MAX_TIMELINE_EVENTS: usize = 200_000;
/// Entries a timeline returns at most (its newest).
pub const MAX_TIMELINE_ENTRIES: usize = 1_000;
/// Link strengths whose crossing is a milestone (the cap is one too).
pub const STRENGTH_MILESTONES: [f64; 2] = [0.5, 0.8];
/// Concepts a growth report lists, each way.
pub const MAX_GROWTH_LIST: usize = 50;

const PAGE: usize = 1_000;

/// One step in a concept's history.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TimelineEntry {
    pub at: Timestamp,
    /// The event it was read from.
    pub seq: u64,
    /// `created`, `linked` (first link with `other`), `strengthened` (a link with `other`
    /// passed `strength`), or `contradicted` (a contradiction between beliefs that mention it).
    pub kind: &'static str,
    /// The concept linked to, for `linked` and `strengthened`.
    pub other: Option<String>,
    /// The link's strength after the event, for `linked` and `strengthened`.
    pub strength: Option<f64>,
    /// For `contradicted`: the contradiction's id and what shows it.
    pub detail: Option<String>,
}

/// Where a scan of the event log started and stopped.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Scan {
    /// The first position read after (> 0: older events were compacted away).
    pub from: u64,
    /// The last position read.
    pub through: u64,
    pub events: usize,
    /// True when the scan stopped at [`MAX_TIMELINE_EVENTS`] before the end of the log.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Timeline {
    pub concept: ConceptRef,
    /// Memories that mentioned it, in the events read.
    pub mentions: u64,
    /// Oldest first (the newest [`MAX_TIMELINE_ENTRIES`] when there are more).
    pub entries: Vec<TimelineEntry>,
    pub scan: Scan,
}

/// A concept and how much it moved in a window.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ActiveConcept {
    pub key: String,
    pub name: String,
    /// Memories of the window that mention it.
    pub mentions: u64,
    /// Its links strengthened in the window (co-occurrences counted).
    pub co_occurrences: u64,
}

/// What grew in a window.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Growth {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub memories: u64,
    pub new_concepts: u64,
    /// The first ones created in the window (at most 50).
    pub new_concept_names: Vec<String>,
    /// Pairs linked for the first time in the window (as far as the scan saw).
    pub new_links: u64,
    /// Co-occurrences added to links in the window.
    pub co_occurrences: u64,
    /// Most mentioned in the window, then most co-occurring (at most 50).
    pub most_active: Vec<ActiveConcept>,
    pub scan: Scan,
}

impl Engine {
    /// Reads the tenant's events oldest first from the compaction point, calling `each` until
    /// it returns false or the bound.
    async fn scan_events(
        &self,
        tenant: &TenantId,
        mut each: impl FnMut(&continuum_core::EventRecord) -> bool,
    ) -> Result<Scan> {
        let mut after = self.store.compacted_through().await?;
        let from = after;
        let mut events = 0;
        loop {
            let page = self
                .store
                .events_since(EventScope::Tenant(tenant), after, PAGE)
                .await?;
            let n = page.len();
            for r in &page {
                after = r.seq;
                events += 1;
                if !each(r) {
                    return Ok(Scan {
                        from,
                        through: after,
                        events,
                        truncated: false,
                    });
                }
                if events >= MAX_TIMELINE_EVENTS {
                    return Ok(Scan {
                        from,
                        through: after,
                        events,
                        truncated: true,
                    });
                }
            }
            if n < PAGE {
                return Ok(Scan {
                    from,
                    through: after,
                    events,
                    truncated: false,
                });
            }
        }
    }

    /// A concept's history, read from the event log.
    pub async fn concept_timeline(&self, who: impl Into<Caller>, name: &str) -> Result<Timeline> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let key = continuum_core::extract::concept_key(name);
        let concept = match self
            .store
            .concepts(tenant, std::slice::from_ref(&key))
            .await?
        {
            found if !key.is_empty() && !found.is_empty() => found.into_iter().next(),
            _ => None,
        }
        .ok_or_else(|| Error::NotFound(format!("no concept '{name}'")))?;
        let rule = self.config.hebbian;
        let mut contradictions = Vec::new();
        let mut entries: Vec<TimelineEntry> = Vec::new();
        let mut strengths: HashMap<String, f64> = HashMap::new();
        let mut mentions = 0u64;
        let mut created = false;
        let scan = self
            .scan_events(tenant, |r| {
                let entry = |kind, other: Option<&str>, strength, detail| TimelineEntry {
                    at: r.at,
                    seq: r.seq,
                    kind,
                    other: other.map(str::to_string),
                    strength,
                    detail,
                };
                match &r.event {
                    Event::ConceptCreated { key: k, .. } if *k == key && !created => {
                        created = true;
                        entries.push(entry("created", None, None, None));
                    }
                    Event::MemoryCreated { concepts, .. }
                        if concepts.iter().any(|c| c.key == key) =>
                    {
                        mentions += 1;
                        if !created {
                            created = true;
                            entries.push(entry("created", None, None, None));
                        }
                    }
                    Event::LinksStrengthened { links } => {
                        for l in links {
                            let (a, b) = match l {
                                LinkWrite::CoOccurred { a, b, .. }
                                | LinkWrite::AtLeast { a, b, .. } => (a, b),
                            };
                            let other = if *a == key {
                                b
                            } else if *b == key {
                                a
                            } else {
                                continue;
                            };
                            let before = strengths.get(other).copied();
                            let after = match (l, before) {
                                (LinkWrite::CoOccurred { count, .. }, None) => {
                                    rule.new_strength(*count)
                                }
                                (LinkWrite::CoOccurred { count, .. }, Some(s)) => {
                                    rule.strengthened(s, (*count).max(1))
                                }
                                (LinkWrite::AtLeast { strength, .. }, s) => {
                                    s.unwrap_or(0.0).max(*strength).min(rule.cap)
                                }
                            };
                            strengths.insert(other.clone(), after);
                            match before {
                                None => {
                                    entries.push(entry("linked", Some(other), Some(after), None))
                                }
                                Some(s) => {
                                    let passed = STRENGTH_MILESTONES
                                        .iter()
                                        .chain(std::iter::once(&rule.cap))
                                        .filter(|m| s < **m && after >= **m)
                                        .count();
                                    if passed > 0 {
                                        entries.push(entry(
                                            "strengthened",
                                            Some(other),
                                            Some(after),
                                            None,
                                        ));
                                    }
                                }
                            }
                        }
                    }
                    Event::ContradictionSaved {
                        record: Some(c), ..
                    } if c.status == continuum_core::reflection::ContradictionStatus::Open
                        && contradictions.len() < MAX_TIMELINE_ENTRIES =>
                    {
                        contradictions.push((r.seq, r.at, c.clone()));
                    }
                    _ => {}
                }
                true
            })
            .await?;
        // A contradiction is the concept's when either belief mentions it; a belief in several
        // contradictions is read once.
        let mut mentions_it: HashMap<continuum_core::reflection::RecordId, bool> = HashMap::new();
        for (seq, at, c) in contradictions {
            let mut mentioned = false;
            for id in [c.earlier, c.later] {
                let m = match mentions_it.get(&id) {
                    Some(m) => *m,
                    None => {
                        let m = match self.store.record(tenant, &id).await? {
                            Some(continuum_core::reflection::Record::Belief(b)) => self
                                .extractor
                                .concepts(&b.text)
                                .iter()
                                .any(|x| x.key == key),
                            _ => false,
                        };
                        mentions_it.insert(id, m);
                        m
                    }
                };
                mentioned |= m;
            }
            if mentioned {
                entries.push(TimelineEntry {
                    at,
                    seq,
                    kind: "contradicted",
                    other: None,
                    strength: None,
                    detail: Some(format!("{}: {}", c.id, c.evidence)),
                });
            }
        }
        entries.sort_by_key(|e| e.seq);
        if entries.len() > MAX_TIMELINE_ENTRIES {
            entries.drain(..entries.len() - MAX_TIMELINE_ENTRIES);
        }
        Ok(Timeline {
            concept: ConceptRef {
                key: concept.key.clone(),
                name: concept.name.clone(),
            },
            mentions,
            entries,
            scan,
        })
    }

    /// What grew in `[since, until)`: new concepts and links, and the most active concepts.
    pub async fn concept_growth(
        &self,
        who: impl Into<Caller>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Growth> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        // A window that ends before it starts holds nothing (an empty report, not an error).
        // Pairs seen before the window, to tell new links from old ones: the scan starts at
        // the log's beginning when the window has one, and only counts inside the window.
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut active: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut g = Growth {
            since,
            until,
            memories: 0,
            new_concepts: 0,
            new_concept_names: Vec::new(),
            new_links: 0,
            co_occurrences: 0,
            most_active: Vec::new(),
            scan: Scan {
                from: 0,
                through: 0,
                events: 0,
                truncated: false,
            },
        };
        let scan = self
            .scan_events(tenant, |r| {
                // Times in the log are not strictly ordered (another node's events keep
                // theirs), so the whole log is read and each event placed by its own time.
                if until.is_some_and(|u| r.at >= u) {
                    return true;
                }
                let inside = since.is_none_or(|s| r.at >= s);
                match &r.event {
                    Event::ConceptCreated { key, name, .. } => {
                        names.entry(key.clone()).or_insert_with(|| name.clone());
                        if inside {
                            g.new_concepts += 1;
                            if g.new_concept_names.len() < MAX_GROWTH_LIST && !name.is_empty() {
                                g.new_concept_names.push(name.clone());
                            }
                        }
                    }
                    Event::MemoryCreated { concepts, .. } if inside => {
                        g.memories += 1;
                        for c in concepts {
                            names.entry(c.key.clone()).or_insert_with(|| c.name.clone());
                            active.entry(c.key.clone()).or_default().0 += 1;
                        }
                    }
                    Event::LinksStrengthened { links } => {
                        for l in links {
                            let (a, b, n) = match l {
                                LinkWrite::CoOccurred { a, b, count } => (a, b, (*count).max(1)),
                                LinkWrite::AtLeast { a, b, .. } => (a, b, 0),
                            };
                            let fresh = seen.insert((a.clone(), b.clone()));
                            if inside {
                                g.new_links += u64::from(fresh);
                                g.co_occurrences += n;
                                active.entry(a.clone()).or_default().1 += n;
                                active.entry(b.clone()).or_default().1 += n;
                            }
                        }
                    }
                    _ => {}
                }
                true
            })
            .await?;
        let mut list: Vec<ActiveConcept> = active
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(key, (mentions, co))| ActiveConcept {
                name: names.get(&key).cloned().unwrap_or_else(|| key.clone()),
                key,
                mentions,
                co_occurrences: co,
            })
            .collect();
        list.sort_by(|x, y| {
            y.mentions
                .cmp(&x.mentions)
                .then(y.co_occurrences.cmp(&x.co_occurrences))
                .then_with(|| x.key.cmp(&y.key))
        });
        list.truncate(MAX_GROWTH_LIST);
        g.most_active = list;
        g.scan = scan;
        Ok(g)
    }
}
