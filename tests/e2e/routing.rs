//! Express's routing leniency on every served route (issue 14, item 1): the route table is
//! walked from the served OpenAPI document, so routes added later are covered too.

use reqwest::Method;
use serde_json::Value;

use crate::support::app::{API_KEY, StoreKind, TestApp};

/// Routes whose side effects would end the test.
const SKIP: &[&str] = &["/api/server/stop"];

fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s {
            "{session}" => "default",
            s if s.starts_with('{') => "x1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Upper-cases the literal segments only (parameter values keep their case).
fn shouted(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s {
            "{session}" => "default".to_string(),
            s if s.starts_with('{') => "x1".to_string(),
            s => s.to_ascii_uppercase(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_slash_letter_case_and_head_work_on_every_route() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let spec: Value = app.get("/-json").await.json();
    let paths = spec["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (template, item) in paths {
        if SKIP.contains(&template.as_str()) {
            continue;
        }
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let body = (method == "post" || method == "put").then_some("{}");
            let path = concrete(template);
            let want = app.request(m.clone(), &path, Some(API_KEY), body).await;
            for variant in [format!("{path}/"), shouted(template)] {
                let got = app.request(m.clone(), &variant, Some(API_KEY), body).await;
                assert_eq!(
                    got.status, want.status,
                    "{method} {variant} vs {path}: {} / {}",
                    got.text, want.text
                );
                assert!(
                    !got.text.contains("Cannot "),
                    "{method} {variant}: {}",
                    got.text
                );
            }
            if method == "get" {
                let head = app.request(Method::HEAD, &path, Some(API_KEY), None).await;
                assert_eq!(head.status, want.status, "HEAD {path}");
                assert!(head.text.is_empty(), "HEAD {path} has a body");
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} operations walked");
    // Unknown routes stay unknown, whatever the spelling.
    let r = app.get("/api/nope/").await;
    assert_eq!(r.status, 404);
}
