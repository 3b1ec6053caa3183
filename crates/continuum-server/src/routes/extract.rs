//! Request extractors and the checks of common parameters (pages, offsets, sources, sessions).

use super::*;

/// A JSON body whose rejections keep the error envelope (413 too large, 415 not JSON, 422
/// wrong shape, 400 malformed).
pub(crate) struct Body<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => {
                let status = rejection.status();
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
                    rejection.body_text()
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
