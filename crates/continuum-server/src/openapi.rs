//! The OpenAPI document, generated from the same list that builds the router.
//!
//! Every endpoint is added through [`Api::op`], which registers the handler with axum and
//! records its documentation (summary, scope, query, body and response types) in one step, so
//! no route can exist without being documented. Schemas come from the Rust types the handlers
//! actually read and write (`schemars`): request types as they are deserialised, response
//! types as they are serialised. The document is OpenAPI 3.1, whose schemas are JSON Schema
//! 2020-12, what `schemars` writes.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};
use continuum_core::keys::Scope;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// The scope a route declares, put in each of its requests: the `Auth` extractor enforces it
/// as soon as the key is known (before the body is read), so the documented scope and the
/// enforced one are the same by construction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequiredScope(pub(crate) Scope);

/// Marks the requests of the original service's endpoints, whose malformed JSON bodies are
/// answered 422 as the original (FastAPI) answered them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompatRoute;

/// How metering counts a route's requests (put into every authenticated route's requests
/// and read by the `Auth` extractor).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metered(pub(crate) Option<continuum_core::account::UsageKind>);

/// One operation's documentation.
pub(crate) struct Op {
    tag: &'static str,
    summary: &'static str,
    /// The scope a key needs; `None`: no key needed.
    scope: Option<Scope>,
    query: Option<SchemaFn>,
    body: Option<SchemaFn>,
    response: Option<SchemaFn>,
    status: u16,
    /// Kept with the request and response shapes of the original Python service.
    compat: bool,
    /// Answers this media type rather than JSON (an HTML page, an event stream).
    media: Option<&'static str>,
    /// Error statuses particular to this operation, with their meaning.
    also: Vec<(u16, &'static str)>,
    /// How metering counts its requests (authenticated routes only); `None`: not counted,
    /// and allowed past the daily request quota.
    usage: Option<continuum_core::account::UsageKind>,
}

impl Op {
    pub(crate) fn new(tag: &'static str, summary: &'static str) -> Op {
        Op {
            tag,
            summary,
            scope: None,
            query: None,
            body: None,
            response: None,
            status: 200,
            compat: false,
            media: None,
            also: Vec::new(),
            usage: Some(continuum_core::account::UsageKind::Other),
        }
    }

    pub(crate) fn scope(mut self, s: Scope) -> Op {
        self.scope = Some(s);
        self
    }

    pub(crate) fn query<T: JsonSchema>(mut self) -> Op {
        self.query = Some(schema_of::<T>);
        self
    }

    pub(crate) fn body<T: JsonSchema>(mut self) -> Op {
        self.body = Some(schema_of::<T>);
        self
    }

    pub(crate) fn returns<T: JsonSchema>(mut self) -> Op {
        self.response = Some(schema_of::<T>);
        self
    }

    pub(crate) fn created(mut self) -> Op {
        self.status = 201;
        self
    }

    /// Documents an error status particular to this operation.
    pub(crate) fn also(mut self, status: u16, description: &'static str) -> Op {
        self.also.push((status, description));
        self
    }

    pub(crate) fn html(self) -> Op {
        self.media("text/html")
    }

    pub(crate) fn media(mut self, media: &'static str) -> Op {
        self.media = Some(media);
        self
    }

    /// Answers 101 and switches to the WebSocket protocol.
    pub(crate) fn upgrades(mut self) -> Op {
        self.status = 101;
        self
    }

    /// Counts the operation's requests as `kind` (learn, recall, search; others are `other`).
    pub(crate) fn usage(mut self, kind: continuum_core::account::UsageKind) -> Op {
        self.usage = Some(kind);
        self
    }

    /// Neither counted nor held to the daily request quota (a tenant over its quota can still
    /// read its usage and plan); the rate limit still applies.
    pub(crate) fn unmetered(mut self) -> Op {
        self.usage = None;
        self
    }

    pub(crate) fn compat(mut self) -> Op {
        self.compat = true;
        self
    }
}

/// A router under construction and the documentation of each of its operations.
pub(crate) struct Api<S> {
    router: Router<S>,
    ops: Vec<(Method, &'static str, Op)>,
}

impl<S: Clone + Send + Sync + 'static> Api<S> {
    pub(crate) fn new() -> Self {
        Api {
            router: Router::new(),
            ops: Vec::new(),
        }
    }

    /// Routes `method path` to `handler` and documents it.
    pub(crate) fn op<H, T>(mut self, method: Method, path: &'static str, handler: H, op: Op) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("{method} is not a routable method"));
        let route = on(filter, handler);
        let route = match op.scope {
            Some(s) => route.layer(axum::Extension((RequiredScope(s), Metered(op.usage)))),
            None => route,
        };
        let route = if op.compat {
            route.layer(axum::Extension(CompatRoute))
        } else {
            route
        };
        self.router = self.router.route(path, route);
        self.ops.push((method, path, op));
        self
    }

    /// The router and the OpenAPI document describing it.
    pub(crate) fn finish(self) -> (Router<S>, Value) {
        let doc = document(&self.ops);
        (self.router, doc)
    }
}

fn generator(serialize: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings.into_generator()
}

/// `{name}` segments of a path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// What a path parameter accepts: the same rules the handlers apply to it.
fn path_param_schema(path: &str, name: &str) -> Value {
    match (path, name) {
        (p, "id") if p.starts_with("/v1/memories/") => {
            json!({"type": "string", "format": "uuid", "description": "A memory id (a UUID)"})
        }
        (p, "id")
            if ["/v1/intentions/", "/v1/contradictions/", "/v1/claims/"]
                .iter()
                .any(|r| p.starts_with(r)) =>
        {
            json!({"type": "string", "format": "uuid", "description": "A record id (a UUID)"})
        }
        (p, "id") if p.starts_with("/v1/tenants/") => json!({
            "type": "string",
            "pattern": "^[A-Za-z0-9_.-]{1,64}$",
            "description": "A tenant id"
        }),
        (p, "id") if p.starts_with("/v1/webhooks/") => json!({
            "type": "string",
            "pattern": "^wh_[0-9a-f]{32}$",
            "description": "A webhook subscription id"
        }),
        (_, "delivery") => json!({
            "type": "string",
            "pattern": "^wh_[0-9a-f]{32}\\.[0-9]{1,18}$",
            "description": "A delivery id: the subscription's id, a dot, the event's position"
        }),
        (p, "id") if p.starts_with("/v1/sessions/") => json!({
            "type": "string",
            "minLength": 1,
            "maxLength": continuum_core::SessionId::MAX_LEN,
            "pattern": SESSION_PATTERN,
            "description": "A session id"
        }),
        _ => json!({"type": "string", "minLength": 1}),
    }
}

/// A session id: no control characters, not only spaces.
pub(crate) const SESSION_PATTERN: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

/// Query parameters from an object schema: one per property.
fn query_params(schema: &Schema, g: &SchemaGenerator) -> Vec<Value> {
    // A `$ref` to a component: look the object up among the definitions.
    let resolved = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| g.definitions().get(name).cloned())
        .unwrap_or_else(|| schema.as_value().clone());
    let required: Vec<&str> = resolved
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = resolved.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, s)| {
            let mut p = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": s,
            });
            if let Some(d) = s.get("description") {
                p["description"] = d.clone();
            }
            p
        })
        .collect()
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn document(ops: &[(Method, &'static str, Op)]) -> Value {
    let mut requests = generator(false);
    let mut responses = generator(true);
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, op) in ops {
        let mut params: Vec<Value> = path_params(path)
            .into_iter()
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_param_schema(path, name)}))
            .collect();
        if let Some(q) = op.query {
            let s = q(&mut requests);
            params.extend(query_params(&s, &requests));
        }
        let ok = match op.response {
            Some(r) => json!({
                "description": if op.status == 201 { "Created" } else { "OK" },
                "content": {"application/json": {"schema": r(&mut responses)}}
            }),
            None if op.status == 101 => json!({"description": "Switching Protocols: a WebSocket"}),
            None => match op.media {
                Some(media) => json!({
                    "description": "OK",
                    "content": {media: {"schema": {"type": "string"}}}
                }),
                None => json!({"description": "OK"}),
            },
        };
        let mut responses_doc = Map::new();
        responses_doc.insert(op.status.to_string(), ok);
        if op.body.is_some() || op.query.is_some() || !path_params(path).is_empty() {
            responses_doc.insert(
                "400".into(),
                error_response("Invalid input: bad JSON, a bad value, a limit exceeded"),
            );
            responses_doc.insert(
                "422".into(),
                error_response("Well-formed but unusable input"),
            );
        }
        if op.body.is_some() {
            responses_doc.insert("413".into(), error_response("Body over the size limit"));
            responses_doc.insert(
                "415".into(),
                error_response("The body is not declared as application/json"),
            );
        }
        for (status, description) in &op.also {
            responses_doc.insert(status.to_string(), error_response(description));
        }
        if let Some(scope) = op.scope {
            responses_doc.insert(
                "401".into(),
                error_response("No API key, or an unknown, revoked or expired one"),
            );
            responses_doc.insert(
                "403".into(),
                error_response(match scope {
                    Scope::Read => "The key lacks the read scope",
                    Scope::Write => "The key lacks the write scope",
                    Scope::Admin => "The key lacks the admin scope",
                    Scope::Operator => "The key lacks the operator scope",
                }),
            );
            responses_doc.insert(
                "429".into(),
                error_response("Rate limit exceeded (see Retry-After)"),
            );
        }
        if !path_params(path).is_empty() {
            responses_doc.insert("404".into(), error_response("No such item in this tenant"));
        }
        responses_doc.insert(
            "503".into(),
            error_response("The store is unavailable (locked, unreachable)"),
        );
        let mut operation = json!({
            "operationId": operation_id(method, path),
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses_doc,
        });
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        if let Some(b) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": b(&mut requests)}}
            });
        }
        match op.scope {
            Some(s) => {
                operation["security"] = json!([{"apiKey": []}, {"bearer": []}]);
                operation["x-required-scope"] = json!(s.as_str());
            }
            None => operation["security"] = json!([]),
        }
        if op.compat {
            operation["x-compatibility"] = json!("original Python service");
        }
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut schemas = requests.take_definitions(true);
    for (k, v) in responses.take_definitions(true) {
        schemas.insert(k, v);
    }
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "A stable machine-readable code, e.g. not_found, rate_limited"},
                    "message": {"type": "string"}
                }
            }}
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Continuum",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Memory for AI agents: learn conversation turns, recall what is relevant. The API key decides the tenant; nothing in a request can name another one.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"}
            }
        }
    })
}

fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty() && *s != "v1") {
        id.push('_');
        id.push_str(
            &seg.trim_start_matches('{')
                .trim_end_matches('}')
                .replace('-', "_"),
        );
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_and_operation_ids() {
        assert_eq!(path_params("/v1/memories/{id}/supersede"), vec!["id"]);
        assert!(path_params("/v1/health").is_empty());
        assert_eq!(
            operation_id(&Method::POST, "/v1/memories/{id}/supersede"),
            "post_memories_id_supersede"
        );
    }

    #[derive(JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Q {
        /// How many.
        limit: Option<usize>,
        concept: String,
    }

    #[test]
    fn query_structs_become_parameters() {
        let mut g = generator(false);
        let s = schema_of::<Q>(&mut g);
        let params = query_params(&s, &g);
        let by_name = |n: &str| params.iter().find(|p| p["name"] == n).unwrap().clone();
        assert_eq!(by_name("concept")["required"], true);
        assert_eq!(by_name("limit")["required"], false);
        assert_eq!(by_name("limit")["description"], "How many.");
        assert_eq!(by_name("limit")["in"], "query");
    }
}
