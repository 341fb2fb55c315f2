//! The OpenAPI 3.1 document, built from the route table: the platform's JSON routes
//! ([`PLATFORM`], the generic entity routes expanded per entity) and every installed
//! module's ([`crate::WebModule::api`]). Each operation states the statuses it
//! answers; path parameters are declared from the route itself; entity schemas carry
//! what the kernel enforces (lengths, formats, enums, ranges, unknown fields refused).
//!
//! A JSON route cannot be served without being described: [`require_documented`]
//! answers 500 for a request under `/api/` whose route is in no [`ApiOp`].

use std::collections::BTreeSet;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nexus_kernel::{EntityDef, FieldKind, builtin, registry};
use serde_json::{Value as J, json};

use crate::error::WebError;

/// One JSON operation of the route table.
pub struct ApiOp {
    /// `get`, `post`, `patch` or `delete`.
    pub method: &'static str,
    /// The route as registered (`/api/v1/ledger/bank-accounts/{id}/statements`).
    pub route: &'static str,
    /// The OpenAPI operation without its error responses: summary, parameters (the
    /// route's path parameters are added), request body, success responses.
    pub operation: fn() -> J,
    /// The error statuses it answers besides the ones every operation may
    /// (400, 401 and 403 where it needs a session, 413, 415, 429, 500, 503).
    pub errors: &'static [u16],
    /// Who may call it: stated in the document (`x-access`) and checked for every
    /// operation and every role by the authorization matrix test.
    pub access: Access,
}

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (signing in, this document).
    Anyone,
    /// Any signed-in user; what it answers is theirs (their sessions, tokens, jobs).
    SignedIn,
    /// An administrator of the box (of its first company).
    BoxAdmin,
    /// Whoever holds these grants, written as a role's (`invoice:c, journal_entry:c`).
    Needs(&'static str),
    /// Whoever may call the tool named in the path: read permission on what it reads.
    Tool,
    /// Whoever may read (to see and download) or write (to replace and remove) the
    /// record the document in the path is attached to; anyone else hears "not found".
    Attached,
}

impl Access {
    fn json(self) -> J {
        match self {
            Access::Anyone => json!("anyone"),
            Access::SignedIn => json!("signed-in"),
            Access::BoxAdmin => json!("box-admin"),
            Access::Tool => json!("tool"),
            Access::Attached => json!("attached"),
            Access::Needs(grants) => json!({ "needs": grants }),
        }
    }
}

/// The platform's own JSON routes (the entity routes are expanded per entity).
pub static PLATFORM: &[ApiOp] = &[
    ApiOp {
        method: "get",
        route: "/api/v1",
        operation: || {
            json!({ "summary": "The entities you may read",
                "responses": { "200": ok("the entities", json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array", "items": { "type": "object" } } } })) } })
        },
        errors: &[],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/openapi.json",
        operation: || json!({ "summary": "This document", "responses": { "200": ok("the OpenAPI document", json!({ "type": "object" })) } }),
        errors: &[],
        access: Access::Anyone,
    },
    ApiOp {
        method: "post",
        route: "/api/v1/session",
        operation: || {
            json!({ "summary": "Sign in: sets the session cookie and returns the CSRF token for writes",
                "requestBody": body(json!({ "type": "object", "required": ["username", "password"],
                    "properties": { "username": { "type": "string", "minLength": 1, "maxLength": 254 }, "password": { "type": "string", "minLength": 1, "maxLength": 256 },
                        "code": { "type": "string", "maxLength": 40, "description": "the 6-digit code of the second factor, or a recovery code" } } })),
                "responses": { "200": ok("signed in", json!({ "type": "object", "required": ["csrf_token", "expires_at", "user"],
                    "properties": { "csrf_token": { "type": "string" }, "expires_at": { "type": "string", "format": "date-time" }, "user": { "type": "object" } } })) } })
        },
        errors: &[401, 422],
        access: Access::Anyone,
    },
    ApiOp {
        method: "delete",
        route: "/api/v1/session",
        operation: || json!({ "summary": "Sign out", "responses": { "204": { "description": "signed out" } } }),
        errors: &[],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/me",
        operation: || json!({ "summary": "Who is signed in, the company worked in, and the companies you may switch to", "responses": { "200": ok("you", me_schema()) } }),
        errors: &[],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/sessions",
        operation: || {
            json!({ "summary": "Your live sessions (never their tokens)",
                "responses": { "200": ok("sessions", json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array", "items": { "type": "object",
                    "required": ["id", "expires_at", "company", "current"],
                    "properties": { "id": { "type": "string" }, "created_at": { "type": ["string", "null"] }, "expires_at": { "type": "string" },
                        "company": { "type": "integer" }, "address": { "type": ["string", "null"] }, "current": { "type": "boolean" } } } } } })) } })
        },
        errors: &[],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "delete",
        route: "/api/v1/sessions/{id}",
        operation: || {
            json!({ "summary": "End one of your sessions (a lost laptop, a shared computer)",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "minLength": 1, "maxLength": 64 } }],
                "responses": { "204": { "description": "ended" } } })
        },
        errors: &[404],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/tokens",
        operation: || {
            json!({ "summary": "Your API tokens (never their secrets); with all=true, every token of the company (needs permission to edit users)",
                "parameters": [{ "name": "all", "in": "query", "required": false, "schema": { "type": "string", "enum": ["true", "false"] } }],
                "responses": { "200": ok("tokens", json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array", "items": token_schema() } } })) } })
        },
        errors: &[],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "post",
        route: "/api/v1/tokens",
        operation: || {
            json!({ "summary": "Make an API token (your password again); the answer carries its secret, once. Send it as Authorization: Bearer <token>",
                "requestBody": body(json!({ "type": "object", "required": ["name", "scopes", "current_password"], "additionalProperties": false,
                    "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 80 },
                        "scopes": { "type": "string", "minLength": 1, "maxLength": 2000, "description": "entity:letters, as a role's permissions" },
                        "days": { "type": "integer", "minimum": 1, "maximum": 366 },
                        "requests_per_minute": { "type": "integer", "minimum": 1, "maximum": 60000 },
                        "current_password": { "type": "string", "minLength": 1, "maxLength": 256 } } })),
                "responses": { "201": ok("the token, with its secret", token_schema()) } })
        },
        errors: &[409, 422],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "delete",
        route: "/api/v1/tokens/{id}",
        operation: || {
            json!({ "summary": "Revoke a token: yours, or (with permission to edit users) any of the company's; it stops at once",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "minLength": 1, "maxLength": 64 } }],
                "responses": { "204": { "description": "revoked" } } })
        },
        errors: &[404],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "post",
        route: "/api/v1/session/company",
        operation: || {
            json!({ "summary": "Work in another company you may act in (your own, or one you are a member of)",
                "requestBody": body(json!({ "type": "object", "required": ["company"],
                    "properties": { "company": { "type": "integer", "minimum": 1 } } })),
                "responses": { "200": ok("you, in that company", me_schema()) } })
        },
        errors: &[404],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/jobs",
        operation: || {
            json!({ "summary": "Your newest jobs (all of the company's for an administrator)",
                "responses": { "200": ok("jobs", json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array", "items": job_schema() } } })) } })
        },
        errors: &[],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/jobs/{id}",
        operation: || json!({ "summary": "A job: state, progress, error, result, download link", "responses": { "200": ok("the job", job_schema()) } }),
        errors: &[404],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "post",
        route: "/api/v1/jobs/{id}/cancel",
        operation: || json!({ "summary": "Cancel a job (a running one stops when it next looks)", "responses": { "200": ok("the job", job_schema()) } }),
        errors: &[404, 409],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/audit/checkpoint",
        operation: || {
            json!({ "summary": "A checkpoint of the transparency log now: a C2SP signed note (origin, size, root), signed with the box's key (administrators)",
                "responses": { "200": { "description": "the signed note", "content": { "text/plain": { "schema": { "type": "string" } } } } } })
        },
        errors: &[],
        access: Access::BoxAdmin,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/audit/key",
        operation: || {
            json!({ "summary": "The key the log's checkpoints are signed with (administrators)",
                "responses": { "200": ok("the key", json!({ "type": "object", "required": ["origin", "key", "fingerprint"],
                    "properties": { "origin": { "type": "string" }, "key": { "type": "string" }, "fingerprint": { "type": "string" } } })) } })
        },
        errors: &[],
        access: Access::BoxAdmin,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/audit/inclusion",
        operation: || {
            json!({ "summary": "The proof that log entry `seq` is in the tree of `size` entries (RFC 9162; administrators)",
                "parameters": [
                    { "name": "seq", "in": "query", "required": true, "schema": { "type": "integer", "minimum": 1 } },
                    { "name": "size", "in": "query", "required": true, "schema": { "type": "integer", "minimum": 1 } }],
                "responses": { "200": ok("the proof", json!({ "type": "object", "required": ["seq", "index", "size", "root", "proof"],
                    "properties": { "seq": { "type": "integer" }, "index": { "type": "integer" }, "size": { "type": "integer" },
                        "leaf_hash": { "type": ["string", "null"] }, "root": { "type": "string" },
                        "proof": { "type": "array", "items": { "type": "string" } } } })) } })
        },
        errors: &[422],
        access: Access::BoxAdmin,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/audit/consistency",
        operation: || {
            json!({ "summary": "The proof that the tree of `from` entries is a prefix of the tree of `to` (RFC 9162; administrators)",
                "parameters": [
                    { "name": "from", "in": "query", "required": true, "schema": { "type": "integer", "minimum": 0 } },
                    { "name": "to", "in": "query", "required": true, "schema": { "type": "integer", "minimum": 0 } }],
                "responses": { "200": ok("the proof", json!({ "type": "object", "required": ["from", "to", "from_root", "to_root", "proof"],
                    "properties": { "from": { "type": "integer" }, "to": { "type": "integer" }, "from_root": { "type": "string" },
                        "to_root": { "type": "string" }, "proof": { "type": "array", "items": { "type": "string" } } } })) } })
        },
        errors: &[422],
        access: Access::BoxAdmin,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/search",
        operation: || {
            let fragments = json!({ "type": "array", "items": { "type": "object", "required": ["text", "hit"],
                "properties": { "text": { "type": "string" }, "hit": { "type": "boolean" } } } });
            json!({ "summary": "Full-text search over every record you may read (the hits the search box shows): up to 3 words, every word must match (exactly, as a prefix for the last word, or within a typo or two), else any of them; 4 words or more are a question, matched by any of its words with BM25 over title and text as one",
                "parameters": [
                    { "name": "q", "in": "query", "required": true, "description": "the words; at most 500 characters and 32 different words (more is a 400); from 4 words on, hits need only some of them (`some_words` in the answer)",
                        "schema": { "type": "string", "maxLength": 500 } },
                    { "name": "entity", "in": "query", "required": false, "description": "only these entities, comma-separated (customer,invoice)",
                        "schema": { "type": "string" } },
                    { "name": "from", "in": "query", "required": false, "description": "only records dated on or after (YYYY-MM-DD; a record's first date field)",
                        "schema": { "type": "string", "format": "date" } },
                    { "name": "to", "in": "query", "required": false, "description": "only records dated on or before (YYYY-MM-DD)",
                        "schema": { "type": "string", "format": "date" } },
                    { "name": "limit", "in": "query", "required": false, "description": "hits to return (default 20)",
                        "schema": { "type": "integer", "minimum": 1, "maximum": 100 } }],
                "responses": { "200": ok("the best hits, and how many you may see in all and per entity", json!({ "type": "object",
                    "required": ["query", "total", "by_entity", "hits"],
                    "properties": {
                        "query": { "type": "string" },
                        "total": { "type": "integer", "minimum": 0 },
                        "by_entity": { "type": "array", "items": { "type": "object", "required": ["entity", "label", "count"],
                            "properties": { "entity": { "type": "string" }, "label": { "type": "string" }, "count": { "type": "integer" } } } },
                        "hits": { "type": "array", "items": { "type": "object",
                            "required": ["entity", "id", "title", "url", "date", "score", "title_fragments", "snippet"],
                            "properties": { "entity": { "type": "string" }, "id": { "type": "integer" }, "title": { "type": "string" },
                                "url": { "type": "string" }, "date": { "type": ["string", "null"], "format": "date" },
                                "score": { "type": "number" }, "title_fragments": fragments, "snippet": fragments,
                                "document": { "type": ["object", "null"], "description": "set when the hit is a passage of a document attached to the record",
                                    "properties": { "id": { "type": "integer" }, "locator": { "type": "string" }, "page": { "type": ["integer", "null"] } } } } } } } })) } })
        },
        errors: &[400, 503],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/tools",
        operation: || {
            json!({ "summary": "The read-only tools you may call (the OpenAI tools format)",
                "responses": { "200": ok("tools", json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array", "items": crate::tools::tool_schema() } } })) } })
        },
        errors: &[],
        access: Access::SignedIn,
    },
    ApiOp {
        method: "post",
        route: "/api/v1/tools/{name}",
        operation: || {
            json!({ "summary": "Run a tool: the body is its arguments",
                "parameters": [{ "name": "name", "in": "path", "required": true, "description": "the tool, such as ledger.trial_balance",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 100 } }],
                "requestBody": body(json!({ "type": "object" })),
                "responses": { "200": ok("its answer", json!({ "type": "object", "required": ["tool", "result"], "properties": { "tool": { "type": "string" }, "result": {} } })) } })
        },
        errors: &[404, 422],
        access: Access::Tool,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/documents/{id}",
        operation: || {
            let mut schema = document_schema();
            if let Some(required) = schema["required"].as_array_mut() {
                required.push(json!("versions"));
            }
            schema["properties"]["versions"] = json!({ "type": "array", "description": "newest first",
                "items": { "type": "object", "required": ["revision", "name", "size", "mime", "sha256", "at", "by"],
                    "properties": { "revision": { "type": "integer" }, "name": { "type": "string" }, "size": { "type": "integer" },
                        "mime": { "type": "string" }, "sha256": { "type": "string" }, "at": { "type": "string", "format": "date-time" },
                        "by": { "type": "string" } } } });
            json!({ "summary": "A document and its versions", "responses": { "200": ok("the document", schema) } })
        },
        errors: &[404],
        access: Access::Attached,
    },
    ApiOp {
        method: "delete",
        route: "/api/v1/documents/{id}",
        operation: || {
            json!({ "summary": "Remove a document with all its versions",
                "parameters": [{ "name": "version", "in": "query", "schema": { "type": "integer", "minimum": 1 } }],
                "responses": { "204": { "description": "removed" } } })
        },
        errors: &[404, 409],
        access: Access::Attached,
    },
    ApiOp {
        method: "get",
        route: "/api/v1/documents/{id}/content",
        operation: || {
            json!({ "summary": "A document's current content (Range requests are answered with 206)",
                "parameters": [{ "name": "Range", "in": "header", "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "the file: a PDF, an image or text as its type, anything else as application/octet-stream",
                        "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } },
                    "206": { "description": "the range asked for", "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } } } })
        },
        errors: &[404, 416],
        access: Access::Attached,
    },
    ApiOp {
        method: "post",
        route: "/api/v1/documents/{id}/versions",
        operation: || {
            let mut params = upload_params();
            if let Some(p) = params.as_array_mut() {
                p[0]["required"] = json!(false);
                p.push(json!({ "name": "version", "in": "query", "description": "the document's version you last read",
                    "schema": { "type": "integer", "minimum": 1 } }));
            }
            json!({ "summary": "Upload a new version of a document (the body is the file)",
                "parameters": params, "requestBody": upload_body(),
                "responses": { "201": ok("the document at its new version", document_schema()) } })
        },
        errors: &[404, 409],
        access: Access::Attached,
    },
];

/// The generic entity routes: documented per entity by [`entity_paths`].
static ENTITY_ROUTES: &[&str] = &[
    "/api/v1/{entity}",
    "/api/v1/{entity}/{id}",
    "/api/v1/{entity}/{id}/history",
    "/api/v1/{entity}/{id}/documents",
    "/api/v1/{entity}/export",
];

/// A document as the API shows it (`nexus_kernel::documents::DocumentInfo`).
pub(crate) fn document_schema() -> J {
    json!({ "type": "object",
        "required": ["id", "name", "entity", "record", "size", "mime", "revision", "sha256", "updated_at", "updated_by", "version"],
        "properties": {
            "id": { "type": "integer", "minimum": 1 },
            "name": { "type": "string", "maxLength": nexus_kernel::documents::MAX_NAME_CHARS },
            "entity": { "type": "string" }, "record": { "type": "integer", "minimum": 1 },
            "size": { "type": "integer", "minimum": 0 },
            "mime": { "type": "string", "description": "detected from the content, never from the name" },
            "revision": { "type": "integer", "minimum": 1, "description": "the document's version number" },
            "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
            "updated_at": { "type": "string", "format": "date-time" }, "updated_by": { "type": "string" },
            "version": { "type": "integer", "minimum": 1, "description": "the record's version, for ?version= on a change" } } })
}

fn upload_body() -> J {
    json!({ "required": true, "description": "the file itself (any type; it is typed from its content)",
        "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } })
}

fn upload_params() -> J {
    json!([{ "name": "name", "in": "query", "required": true, "description": "the file's name (its path is dropped)",
        "schema": { "type": "string", "minLength": 1, "maxLength": crate::documents::MAX_GIVEN_NAME, "pattern": "\\S" } }])
}

fn ok(description: &str, schema: J) -> J {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn body(schema: J) -> J {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn job_schema() -> J {
    json!({ "type": "object", "required": ["id", "kind", "title", "state"], "properties": {
        "id": { "type": "integer", "minimum": 1 }, "kind": { "type": "string" }, "title": { "type": "string" },
        "state": { "type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"] },
        "attempts": { "type": "integer" }, "max_attempts": { "type": "integer" },
        "progress": { "type": ["object", "null"] }, "error": { "type": ["string", "null"] },
        "result": {}, "download": { "type": ["string", "null"] },
        "created_at": { "type": "string" }, "updated_at": { "type": "string" } } })
}

/// What a message for a status says in the document.
fn status_text(code: u16) -> &'static str {
    match code {
        400 => "the request could not be read (malformed JSON, a bad id or query)",
        401 => "sign in first",
        403 => "forbidden: no permission, or the CSRF token is missing",
        404 => "not found (or in another company)",
        409 => "conflict: a stale version, or the state does not allow it",
        413 => "the body is over 1 MiB (an uploaded file: over the appliance's upload limit)",
        415 => {
            "the content type is not JSON (an uploaded file: its content is a program, or not what its name says)"
        }
        416 => "the range asked for is outside the file",
        422 => "invalid fields; `fields` says which and why",
        429 => "too many attempts; retry after the Retry-After seconds",
        500 => "an internal error (details in the server log)",
        503 => "the store cannot save now; the message says whether the write may have been saved",
        _ => "an error",
    }
}

/// The JSON schema of a field, as the kernel parses it (`FieldDef::parse_json`).
fn field_schema(kind: FieldKind) -> J {
    // Single-line text: no control characters.
    const LINE: &str = "^[^\\u0000-\\u001f\\u007f]*$";
    const LONG: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$";
    match kind {
        FieldKind::Text { max } => {
            json!({ "type": ["string", "null"], "maxLength": max, "pattern": LINE })
        }
        FieldKind::LongText => {
            json!({ "type": ["string", "null"], "maxLength": 20000, "pattern": LONG })
        }
        FieldKind::Email => json!({ "type": ["string", "null"], "maxLength": 254,
            "pattern": "^\\s*([^@\\s\\u0000-\\u001f]+@[^@\\s\\u0000-\\u001f]*\\.[^@\\s.\\u0000-\\u001f]+)?\\s*$" }),
        FieldKind::Phone => json!({ "type": ["string", "null"], "maxLength": 40,
            "pattern": "^\\s*([0-9 +\\-()./]*[0-9][0-9 +\\-()./]*)?\\s*$" }),
        FieldKind::Int { min, max } => {
            json!({ "type": ["integer", "null"], "minimum": min, "maximum": max })
        }
        FieldKind::Money => json!({ "type": ["string", "null"],
            "pattern": "^\\s*(-?[0-9]{1,13}(\\.[0-9]{1,2})?)?\\s*$",
            "description": "an exact decimal amount, as a string" }),
        FieldKind::Bool => json!({ "type": ["boolean", "null"] }),
        FieldKind::Date => json!({ "type": ["string", "null"], "format": "date" }),
        FieldKind::Choice(options) => {
            let mut values: Vec<J> = options.iter().map(|o| json!(o)).collect();
            values.push(J::Null);
            json!({ "enum": values })
        }
        FieldKind::Ref(target) => json!({ "type": ["integer", "null"], "minimum": 1,
            "description": format!("the id of a {target} of your company") }),
        FieldKind::Grants => json!({ "type": ["string", "null"],
            "description": "entity:letters, comma separated (r, c, w, d, x)" }),
        FieldKind::Password => {
            json!({ "type": "string", "writeOnly": true, "minLength": 10, "maxLength": 256 })
        }
    }
}

/// An entity's record as the API returns it.
fn record_schema(def: &EntityDef) -> J {
    let mut props: serde_json::Map<String, J> = def
        .fields
        .iter()
        .filter(|f| f.stored())
        .map(|f| (f.name.to_string(), field_schema(f.kind)))
        .collect();
    props.insert("id".into(), json!({ "type": "integer", "minimum": 1 }));
    props.insert("version".into(), json!({ "type": "integer", "minimum": 1 }));
    props.insert("created_at".into(), json!({ "type": "string" }));
    props.insert("updated_at".into(), json!({ "type": "string" }));
    json!({ "type": "object", "properties": props, "required": ["id", "version"] })
}

/// What a create or an update sends: the entity's fields, nothing else.
fn input_schema(def: &EntityDef, update: bool) -> J {
    let mut props: serde_json::Map<String, J> = def
        .fields
        .iter()
        .map(|f| {
            let schema = if f.by_appliance {
                json!({ "description": "set by the appliance; ignored" })
            } else {
                field_schema(f.kind)
            };
            (f.name.to_string(), schema)
        })
        .collect();
    for envelope in ["id", "created_at", "updated_at"] {
        props.insert(envelope.into(), json!({ "description": "ignored" }));
    }
    // Changes of access carry the actor's own password.
    let access = [
        builtin::USER.code,
        builtin::ROLE.code,
        builtin::MEMBERSHIP.code,
        builtin::COMPANY.code,
    ];
    if access.contains(&def.code) {
        props.insert(
            nexus_kernel::CONFIRM_PASSWORD.into(),
            json!({ "type": "string", "writeOnly": true, "maxLength": 256,
                "description": "your own password, to confirm a change of access (a new user or company, a membership, a password, a role, permissions)" }),
        );
    }
    props.insert(
        "version".into(),
        json!({ "type": "integer", "minimum": 1, "description": "the version you last read" }),
    );
    let mut required: Vec<&str> = if update {
        vec!["version"]
    } else {
        def.fields
            .iter()
            .filter(|f| f.required && !f.by_appliance)
            .map(|f| f.name)
            .collect()
    };
    required.sort_unstable();
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

/// The generic routes of one entity.
fn entity_paths(def: &EntityDef, paths: &mut serde_json::Map<String, J>) {
    let n = def.name;
    let one = def.label.to_lowercase();
    let many = def.plural.to_lowercase();
    let record = json!({ "$ref": format!("#/components/schemas/{n}") });
    let creatable = def.creation == nexus_kernel::Creation::ByRole;
    let id = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } });
    let mut list_params = vec![
        // An empty `sort` means creation order, as no `sort` does.
        json!({ "name": "sort", "in": "query", "schema": { "type": "string", "enum": std::iter::once("").chain(def.fields.iter().filter(|f| f.indexed).map(|f| f.name)).collect::<Vec<_>>() } }),
        json!({ "name": "desc", "in": "query", "schema": { "type": "boolean" } }),
        json!({ "name": "q", "in": "query", "schema": { "type": "string", "maxLength": crate::records::MAX_SEARCH } }),
        json!({ "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0 } }),
        json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": crate::records::MAX_PAGE } }),
    ];
    for f in def.fields.iter().filter(|f| f.stored()) {
        list_params.push(json!({ "name": format!("f.{}", f.name), "in": "query", "schema": { "type": "string", "maxLength": crate::records::MAX_SEARCH } }));
    }
    let mut collection = json!({
        "get": with_errors(json!({ "summary": format!("List {many}"), "parameters": list_params,
            "responses": { "200": ok("a page of records", json!({ "type": "object", "required": ["data", "total"],
                "properties": { "data": { "type": "array", "items": record }, "total": { "type": "integer" },
                    "offset": { "type": "integer" }, "limit": { "type": "integer" } } })) } }), &[], true),
    });
    // A module-only entity refuses the generic create with a 409 or 422 naming why.
    let write_errors: &[u16] = &[404, 409, 422];
    collection["post"] = with_errors(
        json!({ "summary": if creatable { format!("Create a {one}") } else { format!("Create a {one} (refused: {one} records are written by their module)") },
            "parameters": [{ "name": "Idempotency-Key", "in": "header", "required": false,
                "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" } }],
            "requestBody": body(input_schema(def, false)),
            "responses": { "201": ok("created", record.clone()), "200": ok("a replay of the first answer (Idempotency-Key)", record.clone()) } }),
        write_errors,
        true,
    );
    collection["get"]["x-access"] = needs(def, 'r');
    // Making a company is the box's administrators' (who hold every permission).
    collection["post"]["x-access"] = if def.name == builtin::COMPANY.name {
        Access::BoxAdmin.json()
    } else {
        needs(def, 'c')
    };
    paths.insert(format!("/api/v1/{n}"), collection);
    let mut item = json!({
            "parameters": [id],
            "get": with_errors(json!({ "summary": format!("One {one}"), "responses": { "200": ok("the record", record.clone()) } }), &[404], true),
            "patch": with_errors(json!({ "summary": format!("Change a {one} (name the version you read)"),
                "requestBody": body(input_schema(def, true)),
                "responses": { "200": ok("updated", record.clone()) } }), &[404, 409, 422], true),
            "delete": with_errors(json!({ "summary": format!("Delete a {one}"),
                "parameters": [{ "name": "version", "in": "query", "schema": { "type": "integer", "minimum": 1 } }],
                "responses": { "204": { "description": "deleted" } } }), &[404, 409], true),
    });
    item["get"]["x-access"] = needs(def, 'r');
    item["patch"]["x-access"] = needs(def, 'w');
    item["delete"]["x-access"] = needs(def, 'd');
    paths.insert(format!("/api/v1/{n}/{{id}}"), item);
    let mut history = json!({
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } }],
            "get": with_errors(json!({ "summary": format!("A {one}'s history, newest first (events with before and after)"),
                "responses": { "200": ok("events", json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array", "items": { "type": "object" } } } })) } }), &[404], true),
    });
    history["get"]["x-access"] = needs(def, 'r');
    paths.insert(format!("/api/v1/{n}/{{id}}/history"), history);
    let mut export = json!({
            "post": with_errors(json!({ "summary": format!("Export {many} as CSV or XLSX, as a job (the list's query parameters apply)"),
                "parameters": [
                    { "name": "format", "in": "query", "schema": { "type": "string", "enum": ["csv", "xlsx"] } },
                    { "name": "sort", "in": "query", "schema": { "type": "string" } },
                    { "name": "q", "in": "query", "schema": { "type": "string", "maxLength": 200 } }
                ],
                "responses": { "202": ok("the job; follow its Location", job_schema()) } }), &[404], true),
    });
    export["post"]["x-access"] = needs(def, 'x');
    paths.insert(format!("/api/v1/{n}/export"), export);
    let mut documents = json!({
        "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } }],
        "get": with_errors(json!({ "summary": format!("The documents attached to a {one}, oldest first"),
            "responses": { "200": ok("documents", json!({ "type": "object", "required": ["data"],
                "properties": { "data": { "type": "array", "items": document_schema() } } })) } }), &[404], true),
        "post": with_errors(json!({ "summary": format!("Attach a file to a {one} (the body is the file)"),
            "parameters": upload_params(), "requestBody": upload_body(),
            "responses": { "201": ok("the new document", document_schema()) } }), &[404, 409], true),
    });
    documents["get"]["x-access"] = needs(def, 'r');
    documents["post"]["x-access"] = json!({ "needs": format!("{n}:rw") });
    paths.insert(format!("/api/v1/{n}/{{id}}/documents"), documents);
}

fn with_access(mut op: J, access: Access) -> J {
    op["x-access"] = access.json();
    op
}

/// The grants an entity route needs (`customer:r`).
fn needs(def: &EntityDef, letter: char) -> J {
    json!({ "needs": format!("{}:{letter}", def.name) })
}

/// Adds the error responses an operation may answer.
/// `GET /api/v1/me`: who is signed in, where.
fn me_schema() -> J {
    let company = json!({ "type": "object", "required": ["id", "name"],
        "properties": { "id": { "type": "integer" }, "name": { "type": "string" } } });
    json!({ "type": "object",
        "required": ["id", "username", "name", "company", "home_company", "companies", "role"],
        "properties": {
            "id": { "type": "integer" }, "username": { "type": "string" }, "name": { "type": "string" },
            "company": company, "home_company": { "type": "integer" },
            "companies": { "type": "array", "items": company }, "role": { "type": "string" },
            "mfa_required": { "type": "boolean" }, "via_token": { "type": ["string", "null"] } } })
}

fn token_schema() -> J {
    json!({ "type": "object",
        "required": ["id", "user", "username", "company", "name", "scopes", "created_at", "expires_at", "requests_per_minute", "expired"],
        "properties": {
            "id": { "type": "string" }, "user": { "type": "integer" }, "username": { "type": "string" },
            "company": { "type": "integer" }, "name": { "type": "string" }, "scopes": { "type": "string" },
            "created_at": { "type": "string", "format": "date-time" }, "expires_at": { "type": "string", "format": "date-time" },
            "requests_per_minute": { "type": "integer" }, "last_used_at": { "type": ["string", "null"] },
            "expired": { "type": "boolean" }, "token": { "type": "string" } } })
}

fn with_errors(mut op: J, errors: &[u16], session: bool) -> J {
    let mut codes: BTreeSet<u16> = errors.iter().copied().collect();
    codes.extend([400, 413, 415, 429, 500, 503]);
    if session {
        codes.extend([401, 403]);
    }
    if let Some(responses) = op.get_mut("responses").and_then(J::as_object_mut) {
        for code in codes {
            responses.insert(
                code.to_string(),
                json!({ "description": status_text(code), "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
            );
        }
    }
    // The session cookie and the CSRF header are described in `components` and the
    // document's description; operations do not list them as `security`, since they
    // travel as a cookie and a header that clients set once.
    op
}

/// Declares the path parameters of `route` that the operation does not.
fn with_path_params(mut op: J, route: &str) -> J {
    let declared: BTreeSet<String> = op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut params = op["parameters"].as_array().cloned().unwrap_or_default();
    for name in route
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    {
        if !declared.contains(name) {
            params.push(json!({ "name": name, "in": "path", "required": true,
                "schema": { "type": "integer", "minimum": 1 } }));
        }
    }
    if !params.is_empty() {
        op["parameters"] = J::Array(params);
    }
    op
}

fn every_op() -> impl Iterator<Item = &'static ApiOp> {
    PLATFORM
        .iter()
        .chain(crate::module::installed().iter().flat_map(|m| m.api.iter()))
}

/// The whole document.
pub fn document() -> J {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    schemas.insert(
        "Error".into(),
        json!({ "type": "object", "required": ["error"], "properties": { "error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "string" }, "message": { "type": "string" },
                "fields": { "type": "object", "additionalProperties": { "type": "string" } } } } } }),
    );
    for def in registry::entities() {
        schemas.insert(def.name.to_string(), record_schema(def));
        entity_paths(def, &mut paths);
    }
    for op in every_op() {
        let operation = with_path_params(
            with_access(
                with_errors((op.operation)(), op.errors, op.access != Access::Anyone),
                op.access,
            ),
            op.route,
        );
        let entry = paths
            .entry(op.route.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "NexusAI appliance API", "version": env!("CARGO_PKG_VERSION"),
            "description": "Sign in with POST /api/v1/session (with \"code\" when the account has a second factor) and send the returned csrf_token as X-CSRF-Token on every write, or send an API token as Authorization: Bearer. Money travels as decimal strings." },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": crate::session::SESSION_COOKIE },
                "token": { "type": "http", "scheme": "bearer", "description": "an API token (nexus_tok_…) made at /account/security or POST /api/v1/tokens; needs no CSRF header" },
                "csrf": { "type": "apiKey", "in": "header", "name": "X-CSRF-Token" }
            }
        },
    })
}

/// Whether `route` (as axum matched it) is described.
fn documented(route: &str) -> bool {
    ENTITY_ROUTES.contains(&route) || every_op().any(|op| op.route == route)
}

/// Route layer: a request under `/api/` whose route is not in the document is an
/// internal error — a JSON route cannot be added without being described. An
/// operation whose access is [`Access::Needs`] is refused here (403) before its
/// handler reads the body, so a caller learns nothing about a route they may not use;
/// the kernel checks the same again. (The generic entity routes are authorized by the
/// kernel before any field is read; the box's routes by their handlers, first.)
pub async fn require_documented(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let Some(route) = route.filter(|r| r.starts_with("/api/")) else {
        return next.run(req).await;
    };
    if !documented(&route) {
        tracing::error!(route, "a JSON route is missing from the OpenAPI document");
        return WebError::Kernel(nexus_kernel::KernelError::Internal(format!(
            "the route {route} is not in the OpenAPI document"
        )))
        .into_response();
    }
    let method = req.method().as_str().to_ascii_lowercase();
    let access = every_op()
        .find(|op| op.route == route && op.method == method)
        .map(|op| op.access);
    let (mut parts, body) = req.into_parts();
    if let Some(access @ Access::Needs(_)) = access
        && let Ok(auth) = crate::session::authenticate(&parts, &state)
    {
        if let Err(refused) = allowed(auth.who(), access) {
            return refused.into_response();
        }
        parts.extensions.insert(auth);
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Whether `who` may call an operation of this access.
fn allowed(who: &nexus_kernel::Principal, access: Access) -> Result<(), WebError> {
    match access {
        Access::Needs(needs) => {
            let needed = nexus_kernel::Grants::parse(needs).map_err(|e| {
                nexus_kernel::KernelError::Internal(format!("x-access {needs}: {e}"))
            })?;
            let Some(missing) = who.lacks(&needed) else {
                return Ok(());
            };
            // `invoice:c` → "you are not allowed to create invoices".
            let (entity, letters) = missing.split_once(':').unwrap_or((&missing, ""));
            let action = nexus_kernel::Action::ALL
                .into_iter()
                .find(|a| letters.starts_with(a.letter()))
                .map_or("use", nexus_kernel::Action::verb);
            let entity = registry::entity(entity)
                .map_or_else(|| entity.to_string(), |d| d.plural.to_lowercase());
            Err(nexus_kernel::KernelError::Forbidden { action, entity }.into())
        }
        _ => Ok(()),
    }
}
