//! Page limits, defined once: every interface (REST, MCP, CLI) and the engine check against
//! these, so a page means the same everywhere.

/// The most items a store page holds (memories of `list`, events, sessions, decisions,
/// concepts), and how deep `search` may page (`offset + limit`).
pub const MAX_PAGE: usize = 1000;

/// The most results one answer returns to a client: a search page, a REST or MCP listing page
/// (memories, sessions, decisions, concepts, neighbours).
pub const MAX_RESULTS: usize = 100;

/// The largest offset of the offset-paged listings (the original service's shapes).
pub const MAX_OFFSET: usize = 10_000;

/// The largest offset of a search page: with a full page of [`MAX_RESULTS`], a search reaches
/// down to the [`MAX_PAGE`]th result and no further.
pub const MAX_SEARCH_OFFSET: usize = MAX_PAGE - MAX_RESULTS;
