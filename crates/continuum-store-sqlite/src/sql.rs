//! SQL builders shared by the reads: filters, placeholders, full-text queries, the page cursor codec.

use super::*;

/// Appends SQL conditions for a filter on alias `m`, pushing their parameters.
pub(crate) fn filter_sql(f: &MemoryFilter, params: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    if !f.sources.is_empty() {
        sql.push_str(" AND m.source IN (");
        for (i, s) in f.sources.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('?');
            params.push(Value::Text(s.as_str().into()));
        }
        sql.push(')');
    }
    if let Some(s) = &f.session {
        sql.push_str(" AND m.session = ?");
        params.push(Value::Text(s.as_str().into()));
    }
    if let Some(t) = f.since {
        sql.push_str(" AND m.created_at >= ?");
        params.push(Value::Integer(t.millis()));
    }
    if let Some(t) = f.until {
        sql.push_str(" AND m.created_at < ?");
        params.push(Value::Integer(t.millis()));
    }
    if f.current_only {
        sql.push_str(" AND m.superseded_by IS NULL");
    }
    sql
}

pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

/// Quotes search terms for an FTS5 MATCH: each term a phrase, any of them may match.
pub(crate) fn fts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

pub(crate) fn parse_cursor(c: &str) -> Result<(i64, i64)> {
    let bad = || Error::InvalidInput(format!("'{c}' is not a valid page cursor"));
    let (t, r) = c.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?))
}
