//! Golden tests: raw response bodies byte-for-byte as WAHA writes them (waha.md §3.1).

use reqwest::Method;

use crate::support::app::{API_KEY, StoreKind, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_key_returns_401_exact_body() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.request(Method::GET, "/api/sessions", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.text, r#"{"message":"Unauthorized","statusCode":401}"#);
    let r = app
        .request(Method::GET, "/api/sessions", Some("wrong-key"), None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.text, r#"{"message":"Unauthorized","statusCode":401}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_in_any_header_case_or_query_is_accepted() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let client = reqwest::Client::new();
    for header in ["X-Api-Key", "x-api-key", "X-API-KEY"] {
        let r = client
            .get(format!("{}/api/sessions", app.base))
            .header(header, API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{header}");
    }
    let r = app
        .request(
            Method::GET,
            &format!("/api/sessions?x-api-key={API_KEY}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // The header wins over the query.
    let r = app
        .request(
            Method::GET,
            &format!("/api/sessions?x-api-key={API_KEY}"),
            Some("bad"),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclude_path_and_no_api_key_skip_auth() {
    let app = TestApp::spawn_with(
        StoreKind::Embedded,
        &[("WAHA_API_KEY_EXCLUDE_PATH", "health,api/server/.*")],
    )
    .await;
    assert_eq!(
        app.request(Method::GET, "/health", None, None).await.status,
        200
    );
    assert_eq!(
        app.request(Method::GET, "/api/server/version", None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.request(Method::GET, "/api/sessions", None, None)
            .await
            .status,
        401
    );
    let open = TestApp::spawn_with(StoreKind::Embedded, &[("WAHA_NO_API_KEY", "true")]).await;
    assert_eq!(
        open.request(Method::GET, "/api/sessions", None, None)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_returns_404_exact_body() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    for (method, path) in [
        (Method::GET, "/api/sessions/nope"),
        (Method::POST, "/api/sessions/nope/start"),
        (Method::POST, "/api/sessions/nope/logout"),
        (Method::POST, "/api/sessions/nope/restart"),
        (Method::GET, "/api/sessions/nope/me"),
    ] {
        let r = app.request(method.clone(), path, Some(API_KEY), None).await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(
            r.text,
            r#"{"message":"Session not found","error":"Not Found","statusCode":404}"#
        );
    }
    let r = app.put("/api/sessions/nope", "{}").await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_existing_session_returns_422_exact_body() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    assert_eq!(
        app.post("/api/sessions", r#"{"name":"dup","start":false}"#)
            .await
            .status,
        201
    );
    let r = app
        .post("/api/sessions", r#"{"name":"dup","start":false}"#)
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.text,
        r#"{"message":"Session 'dup' already exists. Use PUT to update it.","error":"Unprocessable Entity","statusCode":422}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_running_session_returns_422_already_started() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    assert_eq!(
        app.post("/api/sessions", r#"{"name":"s1"}"#).await.status,
        201
    );
    let r = app.post("/api/sessions/s1/start", "").await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.text,
        r#"{"message":"Session 's1' is already started.","error":"Unprocessable Entity","statusCode":422}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_session_name_returns_400_message_array() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.post("/api/sessions", r#"{"name":"bad name!"}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        r#"{"message":["Session name can only contain alphanumeric characters, hyphens, and underscores (a-z, A-Z, 0-9, -, _) or be empty"],"error":"Bad Request","statusCode":400}"#
    );
    let long = "a".repeat(55);
    let r = app
        .post("/api/sessions", &format!(r#"{{"name":"{long}"}}"#))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        r#"{"message":["name must be shorter than or equal to 54 characters"],"error":"Bad Request","statusCode":400}"#
    );
    let r = app.post("/api/sessions", r#"{"name":123}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        r#"{"message":["name must be a string"],"error":"Bad Request","statusCode":400}"#
    );
    let r = app
        .post("/api/sessions", r#"{"name":"ok","start":"yes"}"#)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"][0], "start must be a boolean value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_returns_400_and_stores_nothing() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.post("/api/sessions", r#"{"name":"x","#).await;
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"], "Bad Request");
    assert_eq!(body["statusCode"], 400);
    assert!(body["message"].is_string());
    assert_eq!(
        app.get("/api/sessions?all=true").await.json(),
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_returns_413() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let big = format!(r#"{{"name":"x","pad":"{}"}}"#, "a".repeat(51 * 1024 * 1024));
    let r = app.post("/api/sessions", &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.text,
        r#"{"message":"request entity too large","error":"Payload Too Large","statusCode":413}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_returns_nest_404() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.get("/api/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text,
        r#"{"message":"Cannot GET /api/nope","error":"Not Found","statusCode":404}"#
    );
    assert_eq!(r.headers["content-type"], "application/json");
    // A wrong method on a known path is a 404 too, like NestJS.
    let r = app
        .request(Method::DELETE, "/ping", Some(API_KEY), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text,
        r#"{"message":"Cannot DELETE /ping","error":"Not Found","statusCode":404}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_needs_no_key_and_allows_any_origin() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let client = reqwest::Client::new();
    let r = client
        .request(Method::OPTIONS, format!("{}/api/sessions", app.base))
        .header("Origin", "http://dashboard.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-api-key,content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = client
        .get(format!("{}/api/sessions", app.base))
        .header("Origin", "http://dashboard.example")
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_url_without_scheme_returns_400() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app
        .post(
            "/api/sessions",
            r#"{"name":"v","start":false,"config":{"webhooks":[{"url":"example.com/hook","events":["message"]}]}}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        r#"{"message":["config.webhooks.0.url must be a URL address"],"error":"Bad Request","statusCode":400}"#
    );
    let r = app
        .put(
            "/api/sessions/v",
            r#"{"config":{"webhooks":[{"url":"ftp://x","events":[]}]}}"#,
        )
        .await;
    // Like NestJS's ValidationPipe, the body is validated before the session is looked up.
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_with_bad_boolean_or_enum_returns_400_exact_body() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.get("/api/sessions?all=maybe").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        r#"{"message":["all must be a boolean value"],"error":"Bad Request","statusCode":400}"#
    );
    let r = app.get("/api/default/auth/qr?format=svg").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        r#"{"message":["format must be one of the following values: image, raw"],"error":"Bad Request","statusCode":400}"#
    );
    // A query that names no session where one is required: 400 before any gate.
    let r = app.get("/api/contacts/check-exists?phone=123456").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        r#"{"message":["session should not be empty"],"error":"Bad Request","statusCode":400}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_gate_from_path_body_and_query_returns_exact_422() {
    for store in StoreKind::all("working_gate_from_path_body_and_query_returns_exact_422") {
        let app = TestApp::spawn(store).await;
        let r = app
            .post("/api/sessions", r#"{"name":"idle","start":false}"#)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        for name in ["idle", "ghost"] {
            let expected = if name == "idle" {
                r#"{"error":"Session status is not as expected. Try again later or restart the session","session":"idle","status":"STOPPED","expected":["WORKING"]}"#.to_string()
            } else {
                format!(r#"{{"error":"Session \"{name}\" does not exist","session":"{name}"}}"#)
            };
            // From the path.
            let r = app
                .delete(&format!(
                    "/api/{name}/chats/1@c.us/messages/true_1@c.us_AAAA"
                ))
                .await;
            assert_eq!(r.status, 422, "path: {}", r.text);
            assert_eq!(r.text, expected, "path");
            // From the body.
            let r = app
                .post(
                    "/api/startTyping",
                    &format!(r#"{{"session":"{name}","chatId":"1@c.us"}}"#),
                )
                .await;
            assert_eq!(r.status, 422, "body: {}", r.text);
            assert_eq!(r.text, expected, "body");
            // From the query.
            let r = app
                .get(&format!("/api/sendText?phone=1@c.us&text=x&session={name}"))
                .await;
            assert_eq!(r.status, 422, "query: {}", r.text);
            assert_eq!(r.text, expected, "query");
        }
    }
}
