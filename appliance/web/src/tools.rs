//! The modules' read-only tools over HTTPS: `GET /api/v1/tools` lists the ones the
//! signed-in user may call (in the shape of the OpenAI tools format, so a client can
//! hand them to a model as they are), `POST /api/v1/tools/{name}` runs one with the
//! JSON object it posts as its arguments. The assistant calls the same tools in
//! process.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value as J, json};

use crate::AppState;
use crate::error::WebError;
use crate::session::{Auth, JsonSubmit};

/// A tool as the list shows it.
fn tool_json(t: &nexus_kernel::Tool) -> J {
    json!({
        "type": "function",
        "function": {
            "name": t.name,
            "description": t.description,
            "parameters": t.schema(),
        },
        "reads": t.reads.iter().map(|e| e.name).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/tools`.
pub async fn api_tools(State(state): State<AppState>, auth: Auth) -> Json<J> {
    let tools = state.kernel.tools_for(auth.who());
    Json(json!({ "data": tools.into_iter().map(tool_json).collect::<Vec<_>>() }))
}

/// `POST /api/v1/tools/{name}`: the body is the tool's arguments.
pub async fn api_call_tool(
    State(state): State<AppState>,
    Path(name): Path<String>,
    submit: JsonSubmit,
) -> Result<Json<J>, WebError> {
    let args = J::Object(submit.object);
    let kernel = state.kernel.clone();
    let who = submit.auth.who().clone();
    let tool = name.clone();
    // Tools read the store synchronously; keep that off the async workers.
    let result = tokio::task::spawn_blocking(move || kernel.call_tool(&who, &tool, &args))
        .await
        .map_err(|e| WebError::Kernel(nexus_kernel::KernelError::Internal(e.to_string())))??;
    Ok(Json(json!({ "tool": name, "result": result })))
}

/// The tools' schema, for the OpenAPI document.
pub(crate) fn tool_schema() -> J {
    json!({
        "type": "object",
        "required": ["type", "function", "reads"],
        "properties": {
            "type": { "type": "string", "enum": ["function"] },
            "function": {
                "type": "object",
                "required": ["name", "description", "parameters"],
                "properties": {
                    "name": { "type": "string" },
                    "description": { "type": "string" },
                    "parameters": { "type": "object" },
                },
            },
            "reads": { "type": "array", "items": { "type": "string" } },
        },
    })
}
