//! SQL builders shared by the reads: parameters, filters, the page cursor codec, full-text queries.

use super::*;

pub(crate) type Params = Vec<Box<dyn ToSql + Sync + Send>>;

pub(crate) fn refs(p: &Params) -> Vec<&(dyn ToSql + Sync)> {
    p.iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// SQL conditions for a filter on alias `m`, numbering parameters after those in `p`.
pub(crate) fn filter_sql(f: &MemoryFilter, p: &mut Params) -> String {
    let mut sql = String::new();
    if !f.sources.is_empty() {
        let sources: Vec<String> = f.sources.iter().map(|s| s.as_str().to_string()).collect();
        p.push(Box::new(sources));
        sql.push_str(&format!(" AND m.source = ANY(${})", p.len()));
    }
    if let Some(s) = &f.session {
        p.push(Box::new(s.as_str().to_string()));
        sql.push_str(&format!(" AND m.session = ${}", p.len()));
    }
    if let Some(t) = f.since {
        p.push(Box::new(t.millis()));
        sql.push_str(&format!(" AND m.created_at >= ${}", p.len()));
    }
    if let Some(t) = f.until {
        p.push(Box::new(t.millis()));
        sql.push_str(&format!(" AND m.created_at < ${}", p.len()));
    }
    if f.current_only {
        sql.push_str(" AND m.superseded_by IS NULL");
    }
    sql
}

pub(crate) fn parse_cursor(c: &str) -> Result<(i64, i64)> {
    let bad = || Error::InvalidInput(format!("'{c}' is not a valid page cursor"));
    let (t, r) = c.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?))
}

/// A tsquery matching any of the terms (letters and digits only reach the database).
pub(crate) fn ts_query(terms: &[String]) -> Option<String> {
    let clean: Vec<String> = terms
        .iter()
        .map(|t| {
            t.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|t| !t.is_empty())
        .collect();
    (!clean.is_empty()).then(|| clean.join(" | "))
}
