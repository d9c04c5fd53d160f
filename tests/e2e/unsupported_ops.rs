//! Issue 12 item 4: the WAHA operations wharf does not run (screenshot, passkey pairing,
//! the debug routes, apps, MCP) answer WAHA's status and body, never `404 Cannot …`,
//! on both stores.

use serde_json::{Value, json};

use crate::support::app::{StoreKind, TestApp};

fn not_implemented() -> Value {
    json!({"message": "The method is not implemented by the engine.",
           "error": "Unprocessable Entity", "statusCode": 422})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_passkey_apps_and_mcp_answer_as_waha() {
    for store in StoreKind::all("unsupported_ops") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;

        // Screenshot: the WORKING gate first (WAHA's 422 status body), then GOWS's
        // NotImplementedByEngineError.
        let r = app.get("/api/screenshot?session=nobody").await;
        assert_eq!(
            (r.status, r.json()),
            (
                422,
                json!({"error": "Session \"nobody\" does not exist", "session": "nobody"})
            )
        );
        app.pair(&net, "default", "15550001111").await;
        let r = app.get("/api/screenshot?session=default").await;
        assert_eq!((r.status, r.json()), (422, not_implemented()));
        let r = app.get("/api/screenshot").await;
        assert_eq!((r.status, r.json()), (422, not_implemented()));

        // Passkey: a wharf session is never in a passkey step.
        for (method, path, expected) in [
            ("GET", "challenge", "PASSKEY_REQUIRED"),
            ("GET", "confirmation", "PASSKEY_CONFIRMATION_REQUIRED"),
            ("POST", "confirm", "PASSKEY_CONFIRMATION_REQUIRED"),
        ] {
            let url = format!("/api/default/auth/passkey/{path}");
            let r = if method == "GET" {
                app.get(&url).await
            } else {
                app.post(&url, "{}").await
            };
            assert_eq!(
                (r.status, r.json()),
                (
                    422,
                    json!({"error": "Session status is not as expected. Try again later or restart the session",
                           "session": "default", "status": "WORKING", "expected": [expected]})
                ),
                "{method} {path}"
            );
        }
        let assertion = json!({"id": "cred", "rawId": "cred", "type": "public-key",
            "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}});
        let r = app
            .post("/api/default/auth/passkey", &assertion.to_string())
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.json()["expected"], json!(["PASSKEY_REQUIRED"]));
        // The assertion is validated first, as class-validator does.
        let r = app.post("/api/default/auth/passkey", "{}").await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = app.get("/api/nobody/auth/passkey/challenge").await;
        assert_eq!(
            (r.status, r.json()),
            (
                404,
                json!({"message": "Session not found", "error": "Not Found", "statusCode": 404})
            )
        );

        // Apps: none are run, so none are listed or found, and none can be created.
        let r = app.get("/api/apps?session=default").await;
        assert_eq!((r.status, r.json()), (200, json!([])));
        let r = app.get("/api/apps?session=nobody").await;
        assert_eq!(r.status, 404, "{}", r.text);
        let app_body =
            json!({"id": "app_1", "session": "default", "app": "chatwoot", "config": {}});
        let r = app.post("/api/apps", &app_body.to_string()).await;
        assert_eq!(
            (r.status, r.json()),
            (
                422,
                json!({"message": "App 'chatwoot' is not supported by wharf: it runs no apps",
                       "error": "Unprocessable Entity", "statusCode": 422})
            )
        );
        let r = app
            .post("/api/apps", &json!({"session": "default"}).to_string())
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        let missing =
            json!({"message": "App 'app_1' not found", "error": "Not Found", "statusCode": 404});
        for r in [
            app.get("/api/apps/app_1").await,
            app.put("/api/apps/app_1", &app_body.to_string()).await,
            app.delete("/api/apps/app_1").await,
        ] {
            assert_eq!((r.status, r.json()), (404, missing.clone()));
        }
        let r = app.post("/mcp", "{}").await;
        assert_eq!(
            (r.status, r.json()),
            (
                422,
                json!({"message": "App 'mcp' is not supported by wharf: it runs no apps",
                       "error": "Unprocessable Entity", "statusCode": 422})
            )
        );
        let r = app
            .request(reqwest::Method::POST, "/mcp", None, Some("{}"))
            .await;
        assert_eq!(r.status, 401, "MCP needs the key: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_routes_need_waha_debug_mode() {
    let paths = [
        "/api/server/debug/cpu?seconds=1",
        "/api/server/debug/heapsnapshot",
        "/api/server/debug/browser/trace/default?seconds=1&categories=*",
    ];
    let app = TestApp::spawn(StoreKind::Embedded).await;
    for path in paths {
        let r = app.get(path).await;
        assert_eq!(
            (r.status, r.json()),
            (
                404,
                json!({"message": "WAHA_DEBUG_MODE is disabled", "error": "Not Found", "statusCode": 404})
            ),
            "{path}"
        );
    }
    let app = TestApp::spawn_with(StoreKind::Embedded, &[("WAHA_DEBUG_MODE", "true")]).await;
    for path in paths {
        let r = app.get(path).await;
        assert_eq!((r.status, r.json()), (422, not_implemented()), "{path}");
        let r = app
            .request(reqwest::Method::GET, path, Some("wrong"), None)
            .await;
        assert_eq!(r.status, 401, "{path}");
    }
}
