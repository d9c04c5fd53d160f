//! The OpenAPI document: committed copy is current, and every operation matches WAHA's.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;

use crate::support::app::{StoreKind, TestApp};

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json")
}

fn waha_spec() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/waha-openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("WAHA reference spec at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Routes of WAHA releases newer than the 2026.7.1 spec (`METHOD path` lines of
/// `../shared/reference/waha-endpoints.txt`): served routes may be among these instead.
fn newer_waha_routes() -> std::collections::BTreeSet<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/waha-endpoints.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("WAHA endpoint list at {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.trim().split_once(' '))
        .map(|(m, p)| (m.to_ascii_uppercase(), p.trim().to_string()))
        .collect()
}

/// `(METHOD, path) -> operation` of a spec.
fn operations(spec: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.insert((method.to_ascii_uppercase(), path.clone()), op.clone());
        }
    }
    out
}

#[test]
fn committed_openapi_json_is_current() {
    let generated = wharf::api::openapi::spec_json();
    if std::env::var_os("WHARF_BLESS").is_some() {
        std::fs::write(committed_path(), &generated).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `WHARF_BLESS=1 cargo test --test e2e openapi` \
         (or `cargo run -p wharf -- openapi > openapi/openapi.json`)"
    );
}

/// How many of WAHA's operations wharf serves: the coverage ratchet. The test below fails
/// when fewer are served; an issue that adds operations raises this number in the same
/// change (a one-line edit).
const WAHA_OPERATIONS_SERVED: usize = 162;

/// The same ratchet for the routes of newer WAHA releases (`waha-endpoints.txt`) that the
/// reference spec lacks (the Groups settings and join requests).
const NEWER_WAHA_OPERATIONS_SERVED: usize = 9;

/// The `$ref` name of an operation's JSON request body (`None` without a body).
fn request_schema(op: &Value) -> Option<String> {
    let schema = op
        .get("requestBody")?
        .get("content")?
        .get("application/json")?
        .get("schema")?;
    Some(
        schema["$ref"]
            .as_str()
            .map_or_else(|| schema.to_string(), str::to_string),
    )
}

#[test]
fn every_operation_matches_waha_operation_id_tag_status_request_schema_and_deprecation() {
    let ours = operations(&serde_json::to_value(wharf::api::openapi::spec()).unwrap());
    let waha = operations(&waha_spec());
    let newer = newer_waha_routes();
    let mut served = 0;
    let mut newer_served = 0;
    for ((method, path), op) in &ours {
        if path.starts_with("/api/wharf/") {
            // wharf's own extensions (documented in the README), not WAHA routes.
            continue;
        }
        // Method and path: the map key.
        let Some(theirs) = waha.get(&(method.clone(), path.clone())) else {
            // A route of a newer WAHA than the reference spec: nothing to compare with.
            assert!(
                newer.contains(&(method.clone(), path.clone())),
                "{method} {path} is not a WAHA route"
            );
            newer_served += 1;
            continue;
        };
        served += 1;
        assert_eq!(op["operationId"], theirs["operationId"], "{method} {path}");
        assert_eq!(op["tags"], theirs["tags"], "{method} {path}");
        let expected_status: Vec<&String> =
            theirs["responses"].as_object().unwrap().keys().collect();
        let our_status: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(
            our_status, expected_status,
            "{method} {path} response codes"
        );
        assert_eq!(
            request_schema(op),
            request_schema(theirs),
            "{method} {path} request body schema"
        );
        assert_eq!(
            op["deprecated"].as_bool().unwrap_or(false),
            theirs["deprecated"].as_bool().unwrap_or(false),
            "{method} {path} deprecated"
        );
    }
    let waha_paths: std::collections::BTreeSet<&String> = waha.keys().map(|(_, p)| p).collect();
    let our_paths: std::collections::BTreeSet<&String> = ours
        .keys()
        .map(|(_, p)| p)
        .filter(|p| waha_paths.contains(p))
        .collect();
    println!(
        "WAHA coverage: {} of {} paths, {served} of {} operations implemented \
         (+{newer_served} of newer WAHA releases)",
        our_paths.len(),
        waha_paths.len(),
        waha.len()
    );
    assert!(
        served >= WAHA_OPERATIONS_SERVED,
        "WAHA coverage went down: {served} operations served, the ratchet says \
         {WAHA_OPERATIONS_SERVED}"
    );
    assert!(
        newer_served >= NEWER_WAHA_OPERATIONS_SERVED,
        "coverage of newer WAHA routes went down: {newer_served} served, the ratchet says \
         {NEWER_WAHA_OPERATIONS_SERVED}"
    );
    if served > WAHA_OPERATIONS_SERVED {
        println!(
            "WAHA coverage rose to {served}: raise WAHA_OPERATIONS_SERVED in tests/e2e/openapi.rs"
        );
    }
}

/// Every response has the `description` OpenAPI requires, and no schema is utoipa's
/// `allOf: [<schema>, {type: object, …annotations}]`, which no string value passes. (The full
/// OpenAPI 3.1 validation is `compat-tests/python/test_openapi.py`.)
#[test]
fn every_response_has_a_description_and_no_schema_contradicts_itself() {
    fn walk(value: &Value, at: &str, bad: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(items)) = map.get("allOf") {
                    for item in items {
                        let annotations_only = item.as_object().is_some_and(|o| {
                            o.keys().all(|k| {
                                matches!(
                                    k.as_str(),
                                    "type" | "description" | "default" | "title" | "example"
                                )
                            })
                        });
                        if annotations_only && item["type"] == "object" {
                            bad.push(format!("{at}: {value}"));
                        }
                    }
                }
                for (k, v) in map {
                    walk(v, &format!("{at}/{k}"), bad);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), bad);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
    let spec = serde_json::to_value(wharf::api::openapi::spec()).unwrap();
    for ((method, path), op) in operations(&spec) {
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {status}: no description"
            );
        }
    }
    let mut bad = Vec::new();
    walk(&spec, "#", &mut bad);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn qr_route_documents_png_base64_file_and_raw_value() {
    let spec = serde_json::to_value(wharf::api::openapi::spec()).unwrap();
    let content = &spec["paths"]["/api/{session}/auth/qr"]["get"]["responses"]["200"]["content"];
    let png = &content["image/png"]["schema"];
    assert_eq!(
        (&png["type"], &png["format"]),
        (&"string".into(), &"binary".into())
    );
    let refs: Vec<&str> = content["application/json"]["schema"]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("oneOf: {content}"))
        .iter()
        .filter_map(|s| s["$ref"].as_str())
        .collect();
    assert_eq!(
        refs,
        [
            "#/components/schemas/Base64File",
            "#/components/schemas/QRCodeValue"
        ]
    );
}

#[test]
fn schema_names_are_waha_schema_names() {
    let ours = serde_json::to_value(wharf::api::openapi::spec()).unwrap();
    let waha = waha_spec();
    // Helper schemas of our own that WAHA inlines are allowed by name here, and schemas of
    // newer WAHA releases than the reference spec (as waha-py 2026.9.2's models name them).
    let allowed_extra: [&str; 5] = [
        "GroupJoinRequest",
        "GroupJoinRequestResult",
        "SettingsMemberAddMode",
        "SettingsMemberShareHistoryMode",
        "SettingsMembershipApproval",
    ];
    for name in ours["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            waha["components"]["schemas"].get(name).is_some()
                || allowed_extra.contains(&name.as_str()),
            "schema {name} is not in WAHA's spec"
        );
    }
    assert_eq!(
        ours["components"]["securitySchemes"]["api_key"],
        waha["components"]["securitySchemes"]["api_key"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_and_swagger_ui_are_served_without_a_key() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.request(Method::GET, "/-json", None, None).await;
    assert_eq!(r.status, 200);
    let served = r.json();
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        served,
        serde_json::to_value(wharf::api::openapi::spec()).unwrap()
    );
    let r = app.request(Method::GET, "/", None, None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text.contains("swagger-ui"),
        "{}",
        &r.text[..r.text.len().min(300)]
    );
    let r = app
        .request(Method::GET, "/swagger-initializer.js", None, None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("/-json"));
    let r = app
        .request(Method::GET, "/swagger-ui-bundle.js", None, None)
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_can_be_disabled() {
    let app = TestApp::spawn_with(
        StoreKind::Embedded,
        &[("WHATSAPP_SWAGGER_ENABLED", "false")],
    )
    .await;
    let r = app
        .request(Method::GET, "/", Some(crate::support::app::API_KEY), None)
        .await;
    assert_eq!(r.status, 404);
}
