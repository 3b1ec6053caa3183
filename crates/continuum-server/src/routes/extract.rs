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
