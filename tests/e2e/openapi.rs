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
    let generated = wharf::openapi::spec_json();
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

#[test]
fn every_operation_matches_waha_path_method_tag_and_operation_id() {
    let ours = operations(&serde_json::to_value(wharf::openapi::spec()).unwrap());
    let waha = operations(&waha_spec());
    for ((method, path), op) in &ours {
        if path.starts_with("/api/wharf/") {
            // wharf's own extensions (documented in the README), not WAHA routes.
            continue;
        }
        let theirs = waha
            .get(&(method.clone(), path.clone()))
            .unwrap_or_else(|| panic!("{method} {path} is not a WAHA route"));
        assert_eq!(op["operationId"], theirs["operationId"], "{method} {path}");
        assert_eq!(op["tags"], theirs["tags"], "{method} {path}");
        let expected_status: Vec<&String> =
            theirs["responses"].as_object().unwrap().keys().collect();
        let our_status: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(
            our_status, expected_status,
            "{method} {path} response codes"
        );
    }
    let waha_paths: std::collections::BTreeSet<&String> = waha.keys().map(|(_, p)| p).collect();
    let our_paths: std::collections::BTreeSet<&String> = ours
        .keys()
        .map(|(_, p)| p)
        .filter(|p| waha_paths.contains(p))
        .collect();
    println!(
        "WAHA coverage: {} of {} paths, {} of {} operations implemented",
        our_paths.len(),
        waha_paths.len(),
        ours.keys().filter(|k| waha.contains_key(*k)).count(),
        waha.len()
    );
}

#[test]
fn schema_names_are_waha_schema_names() {
    let ours = serde_json::to_value(wharf::openapi::spec()).unwrap();
    let waha = waha_spec();
    // Helper schemas of our own that WAHA inlines are allowed by name here.
    let allowed_extra: [&str; 0] = [];
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
        serde_json::to_value(wharf::openapi::spec()).unwrap()
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
