//! The text index as a file: written whole beside the store, read back by the next process
//! instead of rebuilding from every memory.
//!
//! What is written is the index a rebuild would make at the same change-log position: only live
//! documents (a forgotten one leaves no id, posting, speaker or concept behind), numbered
//! again in their order, with term and concept texts rather than this process's term ids. Not
//! written: vectors (caught up from the store's vector log, as after a rebuild), the neighbour
//! graph (a file of its own), caches.
//!
//! Layout, little-endian: magic, format version, the change-log position and the caller's
//! fingerprint of the event there, the tenant, counts; the term, concept and session texts;
//! per document its id, time, source, superseded flag, session, length, speaker terms and
//! concepts; per term its postings (document gaps and frequencies as LEB128); per session its
//! documents in time order; per concept its documents (gaps); a CRC-32 of all of it last. A
//! file that fails any check is refused whole ([`TextIndex::from_bytes`]), never half-read.

use super::*;
use continuum_core::{SessionId, Source, Timestamp};

const MAGIC: &[u8; 8] = b"CTMTEXT\0";
const VERSION: u32 = 1;

/// Why a file was refused.
fn bad(why: impl std::fmt::Display) -> continuum_core::Error {
    continuum_core::Error::Internal(format!("text index file: {why}"))
}

/// What a file says about itself before it is read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHead {
    /// The change-log position the index reflects.
    pub seq: u64,
    /// The writer's fingerprint of the event at `seq` (see the engine), so a store replaced
    /// by another with a different history is noticed.
    pub fingerprint: u64,
    pub tenant: String,
    pub docs: u32,
}

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn str(&mut self, s: &str) {
        self.var(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct In<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> continuum_core::Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| bad("cut short"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> continuum_core::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> continuum_core::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> continuum_core::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn var(&mut self) -> continuum_core::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or_else(|| bad("cut short"))?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(bad("a number runs past 64 bits"))
    }
    /// A count of items, each at least `min_bytes` long in the rest of the file: a damaged
    /// count cannot make the reader reserve more than the file could hold.
    fn count(&mut self, min_bytes: usize) -> continuum_core::Result<usize> {
        let n = self.var()?;
        let room = (self.bytes.len() - self.at) / min_bytes.max(1);
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= room)
            .ok_or_else(|| bad("a count larger than the file"))
    }
    /// A number below `limit`.
    fn below(&mut self, limit: usize) -> continuum_core::Result<u32> {
        let v = self.var()?;
        (v < limit as u64)
            .then_some(v as u32)
            .ok_or_else(|| bad("a reference out of range"))
    }
    fn str(&mut self) -> continuum_core::Result<&'a str> {
        let n = self.count(1)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| bad("text that is not UTF-8"))
    }
}

fn head_of(r: &mut In<'_>) -> continuum_core::Result<FileHead> {
    if r.take(8)? != MAGIC {
        return Err(bad("not a Continuum text index"));
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(bad(format!("format {version}, this build reads {VERSION}")));
    }
    let seq = r.u64()?;
    let fingerprint = r.u64()?;
    let tenant = r.str()?.to_string();
    let docs = r.u32()?;
    Ok(FileHead {
        seq,
        fingerprint,
        tenant,
        docs,
    })
}

impl TextIndex {
    /// The terms the live documents use (postings and speakers): what [`Self::to_bytes`]
    /// writes.
    fn live_terms(&self) -> Vec<TermId> {
        let mut out: Vec<TermId> = self
            .terms
            .iter()
            .filter(|(_, ps)| ps.iter().any(|p| self.lens[p.doc as usize] != DEAD))
            .map(|(t, _)| *t)
            .collect();
        for d in 0..self.docs.len() {
            if self.lens[d] != DEAD {
                out.extend_from_slice(self.speaker_of(d as u32));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The index as a file (see the module's text). `fingerprint` identifies the event at
    /// [`Self::seq`].
    pub fn to_bytes(&self, tenant: &str, fingerprint: u64) -> Vec<u8> {
        // Live documents, numbered again in order.
        let mut new_of = vec![u32::MAX; self.docs.len()];
        let mut live = Vec::with_capacity(self.live as usize);
        for (d, len) in self.lens.iter().enumerate() {
            if *len != DEAD {
                new_of[d] = live.len() as u32;
                live.push(d as u32);
            }
        }
        // Terms, in term-id order (deterministic files).
        let mut term_no: FxHashMap<TermId, u32> = FxHashMap::default();
        let (mut file_terms, mut term_texts) = (Vec::new(), Vec::new());
        for t in self.live_terms() {
            if let Some(s) = self.dict.term(t) {
                term_no.insert(t, term_texts.len() as u32);
                file_terms.push(t);
                term_texts.push(s);
            }
        }
        // Concepts some live document mentions, numbered again in their order.
        let mut concept_keys: Vec<&str> = vec![""; self.concept_docs.len()];
        for (k, &c) in &self.concept_ids {
            concept_keys[c as usize] = k;
        }
        let mut concept_no = vec![u32::MAX; self.concept_docs.len()];
        let mut concepts = Vec::new();
        for (c, docs) in self.concept_docs.iter().enumerate() {
            if docs.iter().any(|&d| new_of[d as usize] != u32::MAX) {
                concept_no[c] = concepts.len() as u32;
                concepts.push(c);
            }
        }
        // Sessions with a live document.
        let mut session_names: Vec<&str> = vec![""; self.sessions.len()];
        for (name, &s) in &self.session_slots {
            session_names[s as usize] = name;
        }
        let mut session_no = vec![u32::MAX; self.sessions.len()];
        let mut sessions = Vec::new();
        for (s, docs) in self.sessions.iter().enumerate() {
            if docs.iter().any(|&d| new_of[d as usize] != u32::MAX) {
                session_no[s] = sessions.len() as u32;
                sessions.push(s);
            }
        }

        let mut o = Out(Vec::with_capacity(64 + live.len() * 48));
        o.0.extend_from_slice(MAGIC);
        o.u32(VERSION);
        o.u64(self.seq);
        o.u64(fingerprint);
        o.str(tenant);
        o.u32(live.len() as u32);
        o.var(term_texts.len() as u64);
        for s in &term_texts {
            o.str(s);
        }
        o.var(concepts.len() as u64);
        for &c in &concepts {
            o.str(concept_keys[c]);
        }
        o.var(sessions.len() as u64);
        for &s in &sessions {
            o.str(session_names[s]);
        }
        for &d in &live {
            let doc = &self.docs[d as usize];
            o.0.extend_from_slice(&doc.id.0.as_u128().to_le_bytes());
            o.u64(doc.created_at.0 as u64);
            let source = Source::ALL
                .iter()
                .position(|s| *s == doc.source)
                .unwrap_or(0);
            o.u8(source as u8 | (u8::from(doc.superseded) << 7));
            let session = self.places[d as usize].map_or(0, |(s, _)| session_no[s as usize] + 1);
            o.var(u64::from(session));
            o.var(u64::from(self.lens[d as usize]));
            let speaker: Vec<u32> = self
                .speaker_of(d)
                .iter()
                .filter_map(|t| term_no.get(t).copied())
                .collect();
            o.var(speaker.len() as u64);
            for t in speaker {
                o.var(u64::from(t));
            }
            let mine = self.concepts_of(d);
            o.var(mine.len() as u64);
            for &c in mine {
                o.var(u64::from(concept_no[c as usize]));
            }
        }
        // Postings, per term in the file's term order (none for a term only speakers use).
        for t in &file_terms {
            let kept: Vec<&Posting> = self
                .terms
                .get(t)
                .into_iter()
                .flatten()
                .filter(|p| new_of[p.doc as usize] != u32::MAX)
                .collect();
            o.var(kept.len() as u64);
            let mut prev = 0u32;
            for p in kept {
                let doc = new_of[p.doc as usize];
                o.var(u64::from(doc - prev));
                o.var(u64::from(p.tf));
                prev = doc;
            }
        }
        for &s in &sessions {
            let docs: Vec<u32> = self.sessions[s]
                .iter()
                .map(|&d| new_of[d as usize])
                .filter(|&d| d != u32::MAX)
                .collect();
            o.var(docs.len() as u64);
            for d in docs {
                o.var(u64::from(d));
            }
        }
        for &c in &concepts {
            let docs: Vec<u32> = self.concept_docs[c]
                .iter()
                .map(|&d| new_of[d as usize])
                .filter(|&d| d != u32::MAX)
                .collect();
            o.var(docs.len() as u64);
            let mut prev = 0u32;
            for d in docs {
                o.var(u64::from(d - prev));
                prev = d;
            }
        }
        let crc = crc32fast::hash(&o.0);
        o.u32(crc);
        o.0
    }

    /// The head of a file, read without checking the rest (to decide whether reading it is
    /// worth it).
    pub fn file_head(bytes: &[u8]) -> continuum_core::Result<FileHead> {
        head_of(&mut In { bytes, at: 0 })
    }

    /// Reads a file [`Self::to_bytes`] wrote. Anything damaged, cut short or inconsistent
    /// refuses the whole file.
    pub fn from_bytes(bytes: &[u8]) -> continuum_core::Result<(FileHead, TextIndex)> {
        let body = bytes.len().checked_sub(4).ok_or_else(|| bad("cut short"))?;
        let crc = u32::from_le_bytes(bytes[body..].try_into().expect("4"));
        if crc32fast::hash(&bytes[..body]) != crc {
            return Err(bad("its checksum does not match (damaged or cut short)"));
        }
        let r = &mut In {
            bytes: &bytes[..body],
            at: 0,
        };
        let head = head_of(r)?;
        let n = head.docs as usize;
        if n > r.bytes.len() / 20 {
            return Err(bad("more documents than the file could hold"));
        }
        let n_terms = r.count(1)?;
        let mut ix = TextIndex::new();
        let mut terms = Vec::with_capacity(n_terms);
        for _ in 0..n_terms {
            terms.push(ix.dict.intern(r.str()?));
        }
        let n_concepts = r.count(1)?;
        // Sized once: growing the maps of a million documents rehashes them again and again.
        ix.concept_ids.reserve(n_concepts);
        ix.terms.reserve(n_terms);
        ix.by_id.reserve(n);
        for c in 0..n_concepts {
            let key: Box<str> = r.str()?.into();
            if ix.concept_ids.insert(key, c as u32).is_some() {
                return Err(bad("a concept listed twice"));
            }
        }
        let n_sessions = r.count(1)?;
        ix.session_slots.reserve(n_sessions);
        for s in 0..n_sessions {
            let name = SessionId::new(r.str()?).map_err(|e| bad(e.to_string()))?;
            if ix
                .session_slots
                .insert(name.as_str().into(), s as u32)
                .is_some()
            {
                return Err(bad("a session listed twice"));
            }
            ix.session_names.push(name);
        }
        ix.docs.reserve_exact(n);
        ix.lens.reserve_exact(n);
        ix.concepts_from.reserve_exact(n + 1);
        ix.speakers_from.reserve_exact(n + 1);
        ix.concepts_from.push(0);
        ix.speakers_from.push(0);
        let mut session_of = Vec::with_capacity(n);
        for _ in 0..n {
            let id = MemoryId(uuid::Uuid::from_u128(u128::from_le_bytes(
                r.take(16)?.try_into().expect("16"),
            )));
            let created_at = Timestamp(r.u64()? as i64);
            let flags = r.u8()?;
            let source = *Source::ALL
                .get(usize::from(flags & 0x7f))
                .ok_or_else(|| bad("an unknown source"))?;
            let session = r.below(n_sessions + 1)?;
            let len = r.var()?;
            if len >= u64::from(DEAD) {
                return Err(bad("a document length out of range"));
            }
            let n_speaker = r.count(1)?;
            if n_speaker > MAX_SPEAKER_TERMS {
                return Err(bad("too many speaker terms"));
            }
            let mut speaker = Vec::with_capacity(n_speaker);
            for _ in 0..n_speaker {
                speaker.push(terms[r.below(n_terms)? as usize]);
            }
            let n_mine = r.count(1)?;
            let first = ix.doc_concepts.len();
            for _ in 0..n_mine {
                let c = r.below(n_concepts)?;
                if ix.doc_concepts[first..].contains(&c) {
                    return Err(bad("a document lists a concept twice"));
                }
                ix.doc_concepts.push(c);
            }
            ix.concepts_from.push(ix.doc_concepts.len() as u32);
            let ord = ix.docs.len() as u32;
            if ix.by_id.insert(id, ord).is_some() {
                return Err(bad("a memory listed twice"));
            }
            ix.with_speaker += u32::from(!speaker.is_empty());
            ix.push_speaker(&speaker);
            ix.total_len += len;
            ix.lens.push(len as u32);
            session_of.push(session);
            ix.docs.push(Doc {
                id,
                created_at,
                source,
                superseded: flags & 0x80 != 0,
                alive: true,
            });
        }
        ix.live = n as u32;
        for &t in &terms {
            let count = r.count(2)?;
            if count == 0 {
                continue;
            }
            if count > n {
                return Err(bad("more postings than documents"));
            }
            let mut ps = Vec::with_capacity(count);
            let mut doc = 0u64;
            for i in 0..count {
                let gap = r.var()?;
                if i > 0 && gap == 0 {
                    return Err(bad("postings out of order"));
                }
                doc += gap;
                if doc >= n as u64 {
                    return Err(bad("a posting of no document"));
                }
                let tf = r.var()?;
                if tf == 0 || tf > u64::from(u16::MAX) {
                    return Err(bad("a term frequency out of range"));
                }
                ps.push(Posting {
                    doc: doc as u32,
                    tf: tf as u16,
                });
            }
            if ix.terms.insert(t, ps).is_some() {
                return Err(bad("a term listed twice"));
            }
        }
        ix.places = vec![None; n];
        ix.near = vec![[NO_DOC; 4]; n];
        for s in 0..n_sessions {
            let count = r.count(1)?;
            let mut list = Vec::with_capacity(count);
            for pos in 0..count {
                let d = r.below(n)?;
                if session_of[d as usize] != s as u32 + 1 || ix.places[d as usize].is_some() {
                    return Err(bad("a session lists a document of another"));
                }
                ix.places[d as usize] = Some((s as u32, pos as u32));
                list.push(d);
            }
            let at = |p: i64| {
                usize::try_from(p)
                    .ok()
                    .and_then(|p| list.get(p).copied())
                    .unwrap_or(NO_DOC)
            };
            for (p, &d) in list.iter().enumerate() {
                let p = p as i64;
                ix.near[d as usize] = [at(p - 2), at(p - 1), at(p + 1), at(p + 2)];
            }
            ix.sessions.push(list);
        }
        if (0..n).any(|d| (session_of[d] != 0) != ix.places[d].is_some()) {
            return Err(bad("a document missing from its session"));
        }
        for c in 0..n_concepts {
            let count = r.count(1)?;
            let mut docs = Vec::with_capacity(count);
            let mut doc = 0u64;
            for i in 0..count {
                let gap = r.var()?;
                if i > 0 && gap == 0 {
                    return Err(bad("concept mentions out of order"));
                }
                doc += gap;
                if doc >= n as u64 || !ix.concepts_of(doc as u32).contains(&(c as u32)) {
                    return Err(bad("a concept mention the document does not list"));
                }
                docs.push(doc as u32);
            }
            ix.concept_docs.push(docs);
        }
        let listed: usize = ix.concept_docs.iter().map(Vec::len).sum();
        if listed != ix.doc_concepts.len() {
            return Err(bad("concept mentions that do not match the documents"));
        }
        if r.at != r.bytes.len() {
            return Err(bad("bytes left over"));
        }
        ix.vec_of = vec![NO_VECTOR; n];
        ix.seq = head.seq;
        Ok((head, ix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    const WORDS: &[&str] = &[
        "kafka",
        "redis",
        "deploy",
        "tokio",
        "paris",
        "hiking",
        "guitar",
        "painting",
        "budget",
        "rollback",
        "migration",
        "sister",
        "dog",
        "concert",
        "recipe",
        "garden",
        "pottery",
        "marathon",
        "tuesday",
        "camping",
    ];

    fn random_doc(rng: &mut Rng, i: i64) -> IndexDoc {
        let words: Vec<&str> = (0..3 + rng.below(12))
            .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
            .collect();
        let concepts = (0..rng.below(4))
            .map(|_| WORDS[rng.below(6) as usize].to_string())
            .collect();
        let session = (rng.below(5) > 0)
            .then(|| continuum_core::SessionId::new(format!("s{}", rng.below(7))).unwrap());
        IndexDoc {
            head: MemoryHead {
                id: MemoryId::new_at(i),
                source: Source::ALL[rng.below(3) as usize],
                session,
                // Some out of order, as imports are.
                created_at: Timestamp(i * 10 - rng.below(3) as i64 * 25),
                superseded: rng.below(9) == 0,
            },
            content: words.join(" "),
            concepts,
            speaker: (rng.below(3) == 0)
                .then(|| ["Caroline", "Melanie Ross"][rng.below(2) as usize].to_string()),
        }
    }

    /// Every kind of answer the index gives, for a set of queries, as comparable values.
    fn answers(ix: &TextIndex, a: &mut Analyzer) -> Vec<String> {
        let all = MemoryFilter::default();
        let users = MemoryFilter {
            sources: vec![Source::User],
            current_only: true,
            ..Default::default()
        };
        let mut out = vec![format!("{} live, ratio {}", ix.len(), ix.dead_ratio())];
        let key = |hits: &[Scored]| {
            hits.iter()
                .map(|h| format!("{}:{}", h.head.id, h.score.to_bits()))
                .collect::<Vec<_>>()
                .join(",")
        };
        for q in [
            "kafka deploy",
            "caroline guitar",
            "sister dog painting",
            "melanie tuesday concert",
            "absent words",
        ] {
            let terms = ix.query_terms(a, q, 32);
            for f in [&all, &users] {
                out.push(key(&ix.search(&terms, f, 10)));
                out.push(key(&ix.search_expanded(
                    &terms,
                    &[0.6, 0.3],
                    0.7,
                    1.0,
                    f,
                    10,
                )));
            }
        }
        for k in &WORDS[..6] {
            out.push(format!("{:?}", ix.mentions(k, &all, 5)));
        }
        let mut each = Vec::new();
        ix.each_mentioning(&WORDS[..6], &all, 3, |i, h, at| {
            each.push(format!("{i} {} {at:?}", h.id))
        });
        out.push(each.join(";"));
        out
    }

    #[test]
    fn a_saved_index_answers_as_a_rebuilt_one() {
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut a = Analyzer::new();
            let mut ix = TextIndex::new();
            let mut docs = Vec::new();
            for i in 0..300 {
                let d = random_doc(&mut rng, i + 1);
                ix.add(&mut a, d.clone());
                docs.push(d);
                // Forgets among the writes.
                if rng.below(4) == 0 {
                    let victim = docs.remove(rng.below(docs.len() as u64) as usize);
                    ix.remove(&victim.head.id);
                }
            }
            ix.seq = 77;
            let bytes = ix.to_bytes("t1", 42);
            // A rebuild: the live documents added afresh, in order, with a new analyzer.
            let mut a2 = Analyzer::new();
            let mut rebuilt = TextIndex::new();
            for d in &docs {
                rebuilt.add(&mut a2, d.clone());
            }
            // Read with a third analyzer whose word cache holds other words.
            let mut a3 = Analyzer::new();
            a3.tokens("zebra quokka painting");
            let (head, loaded) = TextIndex::from_bytes(&bytes).unwrap();
            assert_eq!(
                head,
                FileHead {
                    seq: 77,
                    fingerprint: 42,
                    tenant: "t1".into(),
                    docs: docs.len() as u32
                }
            );
            assert_eq!(loaded.seq, 77);
            assert_eq!(
                answers(&loaded, &mut a3),
                answers(&rebuilt, &mut a2),
                "seed {seed}"
            );
            // A loaded index saves and loads again to the same answers.
            let again_bytes = loaded.to_bytes("t1", 42);
            let mut a4 = Analyzer::new();
            let (_, reloaded) = TextIndex::from_bytes(&again_bytes).unwrap();
            assert_eq!(answers(&reloaded, &mut a4), answers(&rebuilt, &mut a2));
            // And it keeps working: new documents and forgets after loading.
            let mut more = loaded;
            let mut again = rebuilt;
            for i in 1000..1040 {
                let d = random_doc(&mut rng, i);
                more.add(&mut a3, d.clone());
                again.add(&mut a2, d);
            }
            more.remove(&docs[0].head.id);
            again.remove(&docs[0].head.id);
            assert_eq!(
                answers(&more, &mut a3),
                answers(&again, &mut a2),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn the_compact_filter_check_agrees_with_the_head_filter() {
        let mut rng = Rng(17);
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        for i in 0..200 {
            ix.add(&mut a, random_doc(&mut rng, i + 1));
        }
        let s3 = continuum_core::SessionId::new("s3").unwrap();
        let filters = [
            MemoryFilter::default(),
            MemoryFilter {
                session: Some(s3.clone()),
                ..Default::default()
            },
            MemoryFilter {
                sources: vec![Source::Assistant, Source::Thinking],
                current_only: true,
                ..Default::default()
            },
            MemoryFilter {
                session: Some(s3),
                since: Some(Timestamp(500)),
                until: Some(Timestamp(1500)),
                ..Default::default()
            },
        ];
        let mut passed = vec![0; filters.len()];
        for d in 0..ix.docs.len() as u32 {
            let head = ix.head(d);
            for (i, f) in filters.iter().enumerate() {
                assert_eq!(ix.passes(f, d), f.matches_head(&head), "{f:?} {head:?}");
                passed[i] += usize::from(f.matches_head(&head));
            }
        }
        assert!(passed.iter().all(|&n| n > 0 && n <= 200), "{passed:?}");
        assert!(passed[1] < 200 && passed[3] < passed[1]);
    }

    #[test]
    fn forgotten_memories_leave_nothing_in_the_file() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let mut secret = random_doc(&mut Rng(5), 1);
        secret.content = "xylophonist quartermaster".into();
        secret.concepts = vec!["zanzibar".into()];
        secret.speaker = Some("Wolfgang".into());
        secret.head.session = Some(continuum_core::SessionId::new("hidden-session").unwrap());
        ix.add(&mut a, secret.clone());
        ix.add(&mut a, random_doc(&mut Rng(6), 2));
        ix.remove(&secret.head.id);
        let bytes = ix.to_bytes("t", 0);
        let text = String::from_utf8_lossy(&bytes);
        for word in [
            "xylophon",
            "quartermast",
            "zanzibar",
            "wolfgang",
            "hidden-session",
        ] {
            assert!(!text.contains(word), "{word} is still in the file");
        }
        assert!(
            !bytes
                .windows(16)
                .any(|w| w == secret.head.id.0.as_u128().to_le_bytes())
        );
        let (_, loaded) = TextIndex::from_bytes(&bytes).unwrap();
        assert_eq!(loaded.len(), 1);
        assert!(!loaded.contains(&secret.head.id));
    }

    #[test]
    fn a_damaged_or_cut_file_is_refused_whole() {
        let mut rng = Rng(99);
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        for i in 0..60 {
            ix.add(&mut a, random_doc(&mut rng, i + 1));
        }
        let bytes = ix.to_bytes("t", 1);
        assert!(TextIndex::from_bytes(&bytes).is_ok());
        for at in (0..bytes.len()).step_by(7) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x24;
            assert!(
                TextIndex::from_bytes(&damaged).is_err(),
                "a flipped byte at {at} was read"
            );
        }
        for len in [0, 3, 8, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(TextIndex::from_bytes(&bytes[..len]).is_err());
        }
        // A file whose checksum was recomputed over damage is still refused by its checks,
        // and never makes the reader panic.
        for at in (12..bytes.len() - 4).step_by(3) {
            let mut forged = bytes[..bytes.len() - 4].to_vec();
            forged[at] = forged[at].wrapping_add(1 + rng.below(250) as u8);
            let crc = crc32fast::hash(&forged);
            forged.extend_from_slice(&crc.to_le_bytes());
            let _ = TextIndex::from_bytes(&forged);
        }
        let mut other = bytes.clone();
        other[8] = 9; // another format version
        assert!(
            TextIndex::file_head(&other)
                .unwrap_err()
                .to_string()
                .contains("format 9")
        );
    }
}
