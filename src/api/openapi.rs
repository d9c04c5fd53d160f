//! The OpenAPI document: WAHA's info, tags and `api_key` scheme, plus every route
//! registered through `utoipa-actix-web` (so routing and the spec cannot drift).
//!
//! Served at `/-json` (Swagger UI at `/`); committed as `openapi/openapi.json` and checked
//! by `tests/e2e/openapi.rs` (drift, WAHA coverage ratchet) and
//! `compat-tests/python/test_openapi.py` (OpenAPI 3.1 validity, answers match schemas).
//! [`finish`] repairs what utoipa's derive gets wrong. Built once per actix worker at
//! start-up.

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
        (name = "🔑 Api Keys", description = "API Keys management"),
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

/// Final touches on the collected document (stable across builds): what utoipa's derive
/// cannot express, applied to every operation and schema so that new handlers get it too.
/// `tests/e2e/openapi.rs` and `compat-tests/python/test_openapi.py` (an OpenAPI 3.1
/// validator) pin the result.
pub fn finish(mut spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for item in spec.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            finish_operation(op);
        }
    }
    if let Some(components) = spec.components.as_mut() {
        for schema in components.schemas.values_mut() {
            fix_schema(schema);
        }
    }
    spec
}

/// Operations WAHA marks `deprecated: true` (by `operationId`, WAHA's spelling included).
/// utoipa takes deprecation only from Rust's `#[deprecated]` on the handler, which would
/// warn wherever actix registers the route; `tests/e2e/openapi.rs` checks this list
/// against WAHA's spec for every served operation.
const DEPRECATED_OPERATIONS: [&str; 10] = [
    "SessionsController_DEPRACATED_start",
    "SessionsController_DEPRECATED_stop",
    "SessionsController_DEPRECATED_logout",
    "ChattingController_sendTextGet",
    "VersionController_get",
    "ChattingController_sendButtons",
    "ChattingController_reply",
    "ChattingController_sendLinkPreview_DEPRECATED",
    "ChattingController_getMessages",
    "ChattingController_DEPRECATED_checkNumberStatus",
];

fn finish_operation(op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::{Deprecated, RefOr, Schema, path::ParameterIn};
    if op
        .operation_id
        .as_deref()
        .is_some_and(|id| DEPRECATED_OPERATIONS.contains(&id))
    {
        op.deprecated = Some(Deprecated::True);
    }
    for param in op.parameters.iter_mut().flatten() {
        if let RefOr::T(param) = param
            && let Some(schema) = param.schema.as_mut()
        {
            fix_schema(schema);
            // WAHA documents every `{session}` path parameter with `default: "default"`.
            // It is declared per route as a tuple in `params(..)`, which cannot carry a
            // default, so it is set here once for all of them.
            if param.name == "session"
                && param.parameter_in == ParameterIn::Path
                && let RefOr::T(Schema::Object(object)) = schema
            {
                object.default = Some(serde_json::json!("default"));
            }
        }
    }
    if let Some(RefOr::T(body)) = op.request_body.as_mut() {
        for content in body.content.values_mut() {
            if let RefOr::T(content) = content
                && let Some(schema) = content.schema.as_mut()
            {
                fix_schema(schema);
            }
        }
    }
    for (status, response) in &mut op.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        // OpenAPI requires a `description` on every response. WAHA's is `""`, which utoipa
        // drops when serializing (`skip_serializing_if = "String::is_empty"`), so an empty one
        // becomes the status's reason phrase (`OK`, `Created`).
        if response.description.is_empty() {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|code| actix_web::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Response")
                .to_string();
        }
        for content in response.content.values_mut() {
            if let RefOr::T(content) = content
                && let Some(schema) = content.schema.as_mut()
            {
                fix_schema(schema);
            }
        }
    }
}

/// Repairs utoipa's wrapper for an inlined field that carries its own doc comment or
/// default: `allOf: [<inline schema>, {type: object, description}]`. The wrapper's
/// `type: object` (utoipa's default type) contradicts a string enum, so no value passes
/// (e.g. `SessionInfo.status`, `WAMessage.source`). The annotations move onto the inlined
/// schema itself (what WAHA's spec has); for anything else the wrapper loses only its type.
#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "utoipa's Schema is non_exhaustive; the other kinds hold no sub-schemas we emit"
)]
fn fix_schema(schema: &mut utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) {
    use utoipa::openapi::{
        RefOr,
        schema::{AdditionalProperties, ArrayItems, Schema},
    };
    let RefOr::T(inner) = schema else {
        return;
    };
    match inner {
        Schema::Object(object) => {
            for property in object.properties.values_mut() {
                fix_schema(property);
            }
            if let Some(extra) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(extra) = extra
            {
                fix_schema(extra);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                fix_schema(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(fix_schema),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(fix_schema),
        Schema::AllOf(all_of) => {
            all_of.items.iter_mut().for_each(fix_schema);
            if let Some(merged) = merge_annotation_wrapper(&mut all_of.items) {
                *inner = merged;
            }
        }
        _ => {}
    }
}

/// `[<inline object schema>, <annotations only>]` → the inline schema carrying those
/// annotations; for any other first item, strips the bogus type from the annotations
/// wrapper and returns `None` (the `allOf` stays).
fn merge_annotation_wrapper(
    items: &mut [utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>],
) -> Option<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{
        RefOr,
        schema::{Object, Schema, SchemaType},
    };
    let [first, RefOr::T(Schema::Object(wrapper))] = items else {
        return None;
    };
    let mut bare = wrapper.clone();
    bare.title = None;
    bare.description = None;
    bare.default = None;
    bare.read_only = None;
    bare.write_only = None;
    bare.example = None;
    bare.examples = Vec::new();
    bare.deprecated = None;
    if bare != Object::new() {
        return None; // a real object schema, not utoipa's annotation wrapper
    }
    if let RefOr::T(Schema::Object(target)) = first {
        let mut merged = target.clone();
        let wrapper = wrapper.clone();
        merged.title = wrapper.title.or(merged.title);
        merged.description = wrapper.description.or(merged.description);
        merged.default = wrapper.default.or(merged.default);
        merged.read_only = wrapper.read_only.or(merged.read_only);
        merged.write_only = wrapper.write_only.or(merged.write_only);
        merged.example = wrapper.example.or(merged.example);
        merged.deprecated = wrapper.deprecated.or(merged.deprecated);
        if !wrapper.examples.is_empty() {
            merged.examples = wrapper.examples;
        }
        return Some(Schema::Object(merged));
    }
    wrapper.schema_type = SchemaType::AnyValue;
    None
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
