//! Request extractors and the checks of common parameters (pages, offsets, sources, sessions).

use super::*;

/// A JSON body whose rejections keep the error envelope (413 too large, 415 not JSON, 422
/// wrong shape, 400 malformed).
pub(crate) struct Body<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        let compat = req.extensions().get::<CompatRoute>().is_some();
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => {
                let status = match &rejection {
                    JsonRejection::JsonSyntaxError(_) if compat => StatusCode::UNPROCESSABLE_ENTITY,
                    r => r.status(),
                };
                let code = match &rejection {
                    JsonRejection::JsonDataError(_) => "invalid_input",
                    JsonRejection::JsonSyntaxError(_) => "invalid_json",
                    JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    _ => "invalid_input",
                };
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "request body is over the size limit".to_string()
                } else {
                    plain_types(&rejection.body_text())
                };
                Err(ApiError::Http {
                    status,
                    code,
                    message,
                })
            }
        }
    }
}

/// A query string whose rejections keep the error envelope (400, naming the parameter).
pub(crate) struct Q<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Q(v)),
            Err(rejection) => Err(ApiError::bad_request(plain_types(&rejection.body_text()))),
        }
    }
}

/// A path whose rejections keep the error envelope.
pub(crate) struct P<T>(pub(super) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(P(v)),
            Err(rejection) => Err(ApiError::bad_request(plain_types(&rejection.body_text()))),
        }
    }
}

/// A JSON count: a non-negative integer, also written as a float with no fraction (`5.0`),
/// which JSON Schema counts as an integer too.
pub(crate) fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    // Past the largest count, still a count: the range check that follows names the limit.
    if let Some(u) = n.as_u64() {
        return Ok(Some(usize::try_from(u).unwrap_or(usize::MAX)));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= 0.0 => {
            Ok(Some(if f < 9.0e15 { f as usize } else { usize::MAX }))
        }
        _ => Err(D::Error::custom(format!(
            "{n} is not a non-negative integer"
        ))),
    }
}

/// A JSON integer, also written as a float with no fraction.
pub(crate) fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        _ => Err(D::Error::custom(format!("{n} is not an integer in range"))),
    }
}

/// A deserialisation message in the API's words: no Rust type names (`struct LearnCompat`,
/// `usize`, `u64`), which mean nothing to a client.
pub(crate) fn plain_types(message: &str) -> String {
    let mut out = Vec::new();
    let mut words = message.split(' ').peekable();
    while let Some(w) = words.next() {
        if (w == "struct" || w == "enum" || w == "tuple") && words.peek().is_some() {
            let name = words.next().unwrap_or("");
            let tail: String = name
                .chars()
                .skip_while(|c| c.is_alphanumeric() || *c == '_' || *c == '<' || *c == '>')
                .collect();
            out.push(format!(
                "{}{tail}",
                if w == "enum" {
                    "one of the allowed values"
                } else {
                    "a JSON object"
                }
            ));
            continue;
        }
        let (core, tail) = w.split_at(
            w.find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(w.len()),
        );
        let plain = match core {
            "usize" | "u64" | "u32" | "u16" | "u8" => "a non-negative integer",
            "isize" | "i64" | "i32" | "i16" | "i8" => "an integer",
            "f64" | "f32" => "a number",
            "bool" => "a boolean",
            other => {
                out.push(format!("{other}{tail}"));
                continue;
            }
        };
        out.push(format!("{plain}{tail}"));
    }
    out.join(" ")
        .replace(
            "Failed to deserialize the JSON body into the target type: ",
            "",
        )
        .replace(
            "Failed to deserialize query string: ",
            "invalid query string: ",
        )
}

pub(super) fn page(limit: Option<usize>, default: usize) -> AppResult<usize> {
    let l = limit.unwrap_or(default);
    if l == 0 || l > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(l)
}

pub(super) fn offset(o: Option<usize>) -> AppResult<usize> {
    let o = o.unwrap_or(0);
    if o > MAX_OFFSET {
        return Err(ApiError::bad_request(format!(
            "offset may be at most {MAX_OFFSET}"
        )));
    }
    Ok(o)
}

/// A search offset: at most [`continuum_core::limits::MAX_SEARCH_OFFSET`].
pub(super) fn search_offset(o: Option<usize>) -> AppResult<usize> {
    use continuum_core::limits::MAX_SEARCH_OFFSET;
    let o = o.unwrap_or(0);
    if o > MAX_SEARCH_OFFSET {
        return Err(ApiError::bad_request(format!(
            "a search offset may be at most {MAX_SEARCH_OFFSET}"
        )));
    }
    Ok(o)
}

pub(super) fn sources(s: &Option<String>) -> AppResult<Vec<Source>> {
    Ok(s.as_deref()
        .map(str::parse)
        .transpose()?
        .into_iter()
        .collect())
}

pub(super) fn session(s: &Option<String>) -> AppResult<Option<SessionId>> {
    Ok(s.clone().map(SessionId::new).transpose()?)
}
