//! Step 1, lexical: BM25F over memory text (and `search`, which is this step alone, paged).

use super::*;
use continuum_core::keys::{Caller, Scope};

impl Engine {
    /// Full-text candidates, best first: from the derived index, or the store's own search.
    pub(super) async fn lexical(
        &self,
        tenant: &TenantId,
        query: &str,
        terms: &[String],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<Scored>> {
        if !self.config.derived_index {
            return self.store.text_search(tenant, terms, filter, limit).await;
        }
        let slot = self.fresh_index(tenant).await?;
        let guard = slot
            .read()
            .map_err(|_| Error::Internal("index lock poisoned".into()))?;
        let terms = match guard.as_ref() {
            Some(ix) => {
                let mut a = self
                    .analyzer
                    .lock()
                    .map_err(|_| Error::Internal("analyzer lock poisoned".into()))?;
                ix.query_terms(&mut a, query, self.config.max_query_terms)
            }
            None => Vec::new(),
        };
        let context = if self.embedder.is_some() {
            &self.config.session_context_with_embedder
        } else {
            &self.config.session_context
        };
        let weights: Vec<f32> = context.iter().map(|w| *w as f32).collect();
        Ok(guard
            .as_ref()
            .map(|ix| match self.config.session_context_mode {
                crate::SessionContextMode::Expand => ix.search_expanded(
                    &terms,
                    &weights,
                    self.config.neighbour_field_weight as f32,
                    self.config.speaker_boost as f32,
                    filter,
                    limit,
                ),
                crate::SessionContextMode::Spread => {
                    ix.search_in_context(&terms, &weights, filter, limit)
                }
            })
            .unwrap_or_default())
    }

    /// Full-text search with filters and paging (`limit` ≤ [`MAX_RESULTS`], `offset + limit`
    /// ≤ [`continuum_core::limits::MAX_PAGE`]).
    ///
    /// [`MAX_RESULTS`]: continuum_core::limits::MAX_RESULTS
    #[tracing::instrument(name = "engine.search", level = "debug", skip_all)]
    pub async fn search(
        &self,
        who: impl Into<Caller>,
        req: &SearchRequest,
    ) -> Result<Vec<SearchHit>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.config.check_text("query", &req.query)?;
        let limit = req.limit.unwrap_or(10);
        let most = continuum_core::limits::MAX_RESULTS;
        if limit == 0 || limit > most {
            return Err(Error::InvalidInput(format!(
                "limit must be between 1 and {most}"
            )));
        }
        if req.offset + limit > continuum_core::store::MAX_PAGE {
            return Err(Error::InvalidInput(format!(
                "offset + limit may be at most {}",
                continuum_core::store::MAX_PAGE
            )));
        }
        let terms = search_terms(&req.query, self.config.max_query_terms);
        let hits = self
            .lexical(tenant, &req.query, &terms, &req.filter, req.offset + limit)
            .await?;
        let page: Vec<_> = hits.into_iter().skip(req.offset).collect();
        let ids: Vec<MemoryId> = page.iter().map(|h| h.head.id).collect();
        let mut by_id: HashMap<MemoryId, Memory> = self
            .store
            .get(tenant, &ids)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        Ok(page
            .into_iter()
            .filter_map(|h| {
                by_id.remove(&h.head.id).map(|memory| SearchHit {
                    score: h.score,
                    memory,
                })
            })
            .collect())
    }
}
