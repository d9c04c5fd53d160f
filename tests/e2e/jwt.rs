//! JWT session tokens (issue 13 item 3): HS256 with `WHARF_JWT_SECRET`, RS256 / ES256 with
//! `WHARF_JWT_PUBLIC_KEY`, audience and issuer checks, expiry with leeway, algorithm
//! pinning, and the mint route. The key pairs in `fixtures/jwt/` were made for these tests
//! only (`openssl genrsa` / `ecparam -name prime256v1`).

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use crate::keys::sessions;
use crate::support::app::{StoreKind, TestApp};

const SECRET: &str = "jwt-tests-shared-secret-0123456789abcdef";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/fixtures/jwt")
        .join(name)
}

fn now() -> i64 {
    wharf::clock::now_s()
}

fn hs(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn status(app: &TestApp, method: Method, path: &str, token: &str) -> u16 {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", app.base))
        .header("Authorization", format!("Bearer {token}"));
    if path.ends_with("/start") {
        req = req.header("content-type", "application/json").body("{}");
    }
    req.send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_tokens_checked_for_expiry_audience_issuer_session_and_actions() {
    let app = TestApp::spawn_with(
        StoreKind::Embedded,
        &[
            ("WHARF_JWT_SECRET", SECRET),
            ("WHARF_JWT_AUDIENCE", "wharf"),
            ("WHARF_JWT_ISSUER", "tenant-backend"),
        ],
    )
    .await;
    sessions(&app, &["alpha", "beta"]).await;
    let claims = |extra: Value| {
        let mut c = json!({"session": "alpha", "aud": "wharf", "iss": "tenant-backend",
                           "exp": now() + 300, "actions": ["read"]});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        hs(&c, SECRET.as_bytes())
    };
    let app = &app;
    let get = |t: String| async move { status(app, Method::GET, "/api/sessions/alpha", &t).await };
    assert_eq!(get(claims(json!({}))).await, 200);
    // Expired within the 30 s leeway: accepted; beyond: refused.
    assert_eq!(get(claims(json!({"exp": now() - 10}))).await, 200);
    assert_eq!(get(claims(json!({"exp": now() - 120}))).await, 401);
    assert_eq!(get(claims(json!({"exp": null}))).await, 401);
    assert_eq!(get(claims(json!({"aud": "someone-else"}))).await, 401);
    assert_eq!(get(claims(json!({"aud": null}))).await, 401);
    assert_eq!(get(claims(json!({"iss": "intruder"}))).await, 401);
    assert_eq!(get(claims(json!({"iss": null}))).await, 401);
    assert_eq!(get(claims(json!({"session": null}))).await, 401);
    assert_eq!(get(claims(json!({"actions": ["read", "root"]}))).await, 401);
    assert_eq!(
        get(hs(
            &json!({"session": "alpha", "aud": "wharf", "iss": "tenant-backend",
        "exp": now() + 300}),
            b"wrong-secret"
        ))
        .await,
        401
    );
    // The session and the actions it names, nothing else.
    let t = claims(json!({}));
    assert_eq!(
        status(app, Method::GET, "/api/sessions/beta", &t).await,
        403
    );
    assert_eq!(
        status(app, Method::POST, "/api/sessions/alpha/start", &t).await,
        403
    );
    assert_eq!(status(app, Method::GET, "/api/keys", &t).await, 403);
    // Several sessions.
    let both = claims(json!({"session": null, "sessions": ["alpha", "beta"]}));
    assert_eq!(
        status(app, Method::GET, "/api/sessions/beta", &both).await,
        200
    );
    // The token also works as the API key.
    let r = app
        .request(Method::GET, "/api/sessions/alpha", Some(&t), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // An unsigned (`alg: none`) token.
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none"})),
        b64(json!({"session": "alpha",
        "aud": "wharf", "iss": "tenant-backend", "exp": now() + 300}))
    );
    assert_eq!(get(none).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_and_es256_tokens_verified_with_the_public_key_only() {
    for (pem, alg, der) in [
        (
            "rsa_public.pem",
            jsonwebtoken::Algorithm::RS256,
            "rsa_private_pkcs1.der",
        ),
        (
            "ec_public.pem",
            jsonwebtoken::Algorithm::ES256,
            "ec_private_pkcs8.der",
        ),
    ] {
        let public = fixture(pem);
        let app = TestApp::spawn_with(
            StoreKind::Embedded,
            &[("WHARF_JWT_PUBLIC_KEY", public.to_str().unwrap())],
        )
        .await;
        sessions(&app, &["alpha"]).await;
        let private = std::fs::read(fixture(der)).unwrap();
        let key = if alg == jsonwebtoken::Algorithm::RS256 {
            jsonwebtoken::EncodingKey::from_rsa_der(&private)
        } else {
            jsonwebtoken::EncodingKey::from_ec_der(&private)
        };
        let claims = json!({"session": "alpha", "exp": now() + 300});
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap();
        assert_eq!(
            status(&app, Method::GET, "/api/sessions/alpha", &token).await,
            200,
            "{alg:?}"
        );
        // Algorithm confusion: HS256 "signed" with the public key's bytes.
        let confused = hs(&claims, &std::fs::read(&public).unwrap());
        assert_eq!(
            status(&app, Method::GET, "/api/sessions/alpha", &confused).await,
            401
        );
        // wharf holds no secret: it cannot mint.
        let r = app
            .post(
                "/api/wharf/tokens",
                r#"{"session":"alpha","ttlSeconds":60}"#,
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_token_names_one_session_and_expires() {
    let app = TestApp::spawn_with(StoreKind::Embedded, &[("WHARF_JWT_SECRET", SECRET)]).await;
    sessions(&app, &["alpha", "beta"]).await;
    let r = app
        .post(
            "/api/wharf/tokens",
            r#"{"session":"alpha","actions":["read"],"ttlSeconds":60}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json()["token"].as_str().unwrap().to_string();
    let expires = chrono::DateTime::parse_from_rfc3339(r.json()["expiresAt"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!((expires - now() - 60).abs() <= 2, "{expires}");
    assert_eq!(
        status(&app, Method::GET, "/api/sessions/alpha", &token).await,
        200
    );
    assert_eq!(
        status(&app, Method::GET, "/api/sessions/beta", &token).await,
        403
    );
    assert_eq!(
        status(&app, Method::POST, "/api/sessions/alpha/start", &token).await,
        403
    );
    for bad in [
        r#"{"session":"alpha","ttlSeconds":0}"#,
        r#"{"session":"alpha","ttlSeconds":100000}"#,
        r#"{"session":"alpha","ttlSeconds":60,"actions":["root"]}"#,
    ] {
        assert_eq!(
            app.post("/api/wharf/tokens", bad).await.status,
            400,
            "{bad}"
        );
    }
    let r = app
        .post("/api/wharf/tokens", r#"{"session":"nope","ttlSeconds":60}"#)
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    // A token cannot mint tokens.
    let r = reqwest::Client::new()
        .post(format!("{}/api/wharf/tokens", app.base))
        .header("Authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(r#"{"session":"alpha","ttlSeconds":60}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}
