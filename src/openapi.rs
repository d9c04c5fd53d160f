//! The OpenAPI document: WAHA's info, tags and `api_key` scheme, plus every route
//! registered through `utoipa-actix-web` (so routing and the spec cannot drift).
//!
//! Served at `/-json` (Swagger UI at `/`); committed as `openapi/openapi.json` and checked
//! by `tests/e2e/openapi.rs`. Built once per actix worker at start-up.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
};
use utoipa_actix_web::AppExt;

/// Top-level document; paths come from the route registration.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "WAHA - WhatsApp HTTP API",
        description = "<b>WhatsApp HTTP API</b> served by <b>wharf</b>, a drop-in replacement for WAHA written in Rust.",
        version = "2026.7.1",
    ),
    tags(
        (name = "🖥️ Sessions", description = "Control WhatsApp sessions (accounts)"),
        (name = "📱 Pairing", description = "Pair a session with WhatsApp on your phone."),
        (name = "🔍 Observability", description = "Other methods"),
    ),
    modifiers(&SecurityAddon),
)]
pub struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "Your secret api key",
            ))),
        );
    }
}

/// Final touches on the collected document (stable across builds).
pub fn finish(mut spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    session_path_defaults(&mut spec);
    spec
}

/// WAHA documents every `{session}` path parameter with `default: "default"`. The
/// parameter is declared per route (a tuple in `params(..)` that utoipa merges with the
/// one it derives from `web::Path`); the tuple form cannot carry a default, so it is set
/// here, once, for all of them.
fn session_path_defaults(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        RefOr, Schema,
        path::{Operation, ParameterIn},
    };
    for item in spec.paths.paths.values_mut() {
        let operations: [Option<&mut Operation>; 5] = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ];
        for op in operations.into_iter().flatten() {
            for param in op.parameters.iter_mut().flatten() {
                if let RefOr::T(param) = param
                    && param.name == "session"
                    && param.parameter_in == ParameterIn::Path
                    && let Some(RefOr::T(Schema::Object(object))) = param.schema.as_mut()
                {
                    object.default = Some(serde_json::json!("default"));
                }
            }
        }
    }
}

/// The document as served, built without starting a server (tests, `wharf openapi`).
pub fn spec() -> utoipa::openapi::OpenApi {
    let (_, spec) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::api::routes)
        .split_for_parts();
    finish(spec)
}

/// Pretty JSON of [`spec`], as committed in `openapi/openapi.json`.
pub fn spec_json() -> String {
    let mut text = serde_json::to_string_pretty(&spec()).unwrap_or_default();
    text.push('\n');
    text
}
