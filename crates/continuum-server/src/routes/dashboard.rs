//! The web dashboard at `/dashboard`: one page, one script and one style sheet, all held in
//! the binary (no build step, nothing fetched from elsewhere). The page is static; everything
//! it shows comes from the REST API with the key the user signs in with, which the script
//! keeps in the tab's session storage and sends as `X-API-Key`. A strict
//! Content-Security-Policy allows only this server's script, style and connections.

use super::*;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/app.css");

/// Scripts, styles and connections from this origin only; no inline script or style, no
/// plugins, no framing, no form posts, no `<base>`.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub(super) fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    use axum::routing::get;
    r.route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/app.js", get(script))
        .route("/dashboard/app.css", get(style))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_is_under_100_kb_and_loads_nothing_from_elsewhere() {
        let total = INDEX.len() + SCRIPT.len() + STYLE.len();
        assert!(total < 100 * 1024, "{total} bytes");
        for (name, text) in [
            ("index.html", INDEX),
            ("app.js", SCRIPT),
            ("app.css", STYLE),
        ] {
            for bad in ["http://", "https://", "//cdn", "@import"] {
                // Namespaces in SVG are identifiers, not fetches.
                let hits = text
                    .match_indices(bad)
                    .filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/"))
                    .count();
                assert_eq!(hits, 0, "{name} names {bad}");
            }
        }
        // No inline script or style for the policy to have to allow.
        assert!(!INDEX.contains("<script>"), "inline script");
        assert!(!INDEX.contains("<style"), "inline style");
        assert!(!INDEX.contains(" style="), "style attribute");
        let handler = INDEX.match_indices(" on").any(|(i, _)| {
            let rest = &INDEX[i + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
    }
}
