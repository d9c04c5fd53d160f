//! `/dashboard` on the server side (issue 14, item 2): its Basic-auth login as WAHA has it
//! (`WAHA_DASHBOARD_*`), the embedded assets and their content types, and its absence from
//! the OpenAPI document. The page itself is driven in a real browser by
//! `compat-tests/python/test_dashboard.py`. The dashboard touches no store, so these run
//! on the embedded store only.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::app::{API_KEY, StoreKind, TestApp};

const USER: &str = "ops";
const PASSWORD: &str = "dash-Pass-7f1e9c";

/// A raw request with an optional `Authorization` header value.
async fn fetch(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", app.base));
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    req.send().await.expect("request sent")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn content_type(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_login_guards_the_page_and_its_assets() {
    let app = TestApp::spawn_with(
        StoreKind::Embedded,
        &[
            ("WAHA_DASHBOARD_USERNAME", USER),
            ("WAHA_DASHBOARD_PASSWORD", PASSWORD),
        ],
    )
    .await;
    let good = basic(USER, PASSWORD);

    // Without the login, or with a wrong one: 401 with a Basic challenge, WAHA's body.
    let api_key_only = reqwest::Client::new()
        .get(format!("{}/dashboard", app.base))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_key_only.status(),
        StatusCode::UNAUTHORIZED,
        "the API key is not the dashboard login"
    );
    let wrong = [
        None,
        Some(basic(USER, "dash-Pass-7f1e9")),
        Some(basic("admin", PASSWORD)),
        Some(basic(USER, "")),
        Some(format!("Bearer {PASSWORD}")),
        Some("Basic !!!not-base64".to_string()),
        Some(format!("Basic {USER}:{PASSWORD}")),
    ];
    for auth in &wrong {
        for path in ["/dashboard", "/dashboard/", "/dashboard/app.js"] {
            let res = fetch(&app, Method::GET, path, auth.as_deref()).await;
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{path} with {auth:?}"
            );
            let challenge = res.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Basic realm="), "{challenge}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body, json!({"message": "Unauthorized", "statusCode": 401}));
        }
    }

    // With it: the page and every asset, with their content types.
    for (path, ty, marker) in [
        ("/dashboard", "text/html", "<title>wharf dashboard</title>"),
        ("/dashboard/", "text/html", "<title>wharf dashboard</title>"),
        ("/dashboard/index.html", "text/html", "/dashboard/app.js"),
        (
            "/dashboard/event-monitor",
            "text/html",
            "id=\"event-monitor\"",
        ),
        ("/dashboard/app.js", "text/javascript", "new WebSocket("),
        ("/dashboard/app.css", "text/css", "#qr"),
    ] {
        let res = fetch(&app, Method::GET, path, Some(&good)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            content_type(&res).starts_with(ty),
            "{path}: {}",
            content_type(&res)
        );
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let text = res.text().await.unwrap();
        assert!(text.contains(marker), "{path} lacks {marker:?}");
    }
    // Nothing is loaded from elsewhere (no CDN: the deployment may have no internet).
    let html = fetch(&app, Method::GET, "/dashboard", Some(&good))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let head = fetch(&app, Method::HEAD, "/dashboard", Some(&good)).await;
    assert_eq!(head.status(), StatusCode::OK);
    let unknown = fetch(&app, Method::GET, "/dashboard/nope.js", Some(&good)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // The login opens the dashboard only, not the API: that still wants the key.
    let api = fetch(&app, Method::GET, "/api/sessions", Some(&good)).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_is_404_and_no_password_is_open() {
    let off = TestApp::spawn_with(
        StoreKind::Embedded,
        &[
            ("WAHA_DASHBOARD_ENABLED", "false"),
            ("WAHA_DASHBOARD_PASSWORD", PASSWORD),
        ],
    )
    .await;
    for path in ["/dashboard", "/dashboard/app.js"] {
        let res = fetch(&off, Method::GET, path, Some(&basic("admin", PASSWORD))).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["statusCode"], 404, "{body}");
        assert_eq!(body["message"], format!("Cannot GET {path}"), "{body}");
    }

    let open = TestApp::spawn_with(
        StoreKind::Embedded,
        &[("WAHA_DASHBOARD_NO_PASSWORD", "true")],
    )
    .await;
    for path in ["/dashboard", "/dashboard/app.js"] {
        let res = fetch(&open, Method::GET, path, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_password_is_replaced_by_a_random_one() {
    // `admin` is weak (as for the API key): it must not open the dashboard.
    let app =
        TestApp::spawn_with(StoreKind::Embedded, &[("WAHA_DASHBOARD_PASSWORD", "admin")]).await;
    for password in ["admin", ""] {
        let res = fetch(
            &app,
            Method::GET,
            "/dashboard",
            Some(&basic("admin", password)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{password:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_in_the_openapi_document() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let spec = app.get("/-json").await;
    assert_eq!(spec.status, 200);
    let paths = spec.json()["paths"].as_object().unwrap().clone();
    assert!(paths.len() > 50, "the document lists WAHA's routes");
    assert!(
        !spec.text.contains("/dashboard"),
        "WAHA's spec has no dashboard operation"
    );
}
