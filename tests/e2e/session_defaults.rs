//! `WAHA_SESSION_CONFIG_IGNORE_*` and `WAHA_CLIENT_*` fill a new session's unset options
//! (issue 11 item 8); what the user sets wins, and the session runs with them.

use serde_json::json;

use crate::support::app::{StoreKind, TestApp};

#[tokio::test]
async fn env_defaults_fill_unset_ignore_and_client_options() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[
            ("WAHA_SESSION_CONFIG_IGNORE_GROUPS", "true"),
            ("WAHA_SESSION_CONFIG_IGNORE_STATUS", "true"),
            ("WAHA_CLIENT_DEVICE_NAME", "Wharf Server"),
            ("WAHA_CLIENT_BROWSER_NAME", "Firefox"),
        ],
    )
    .await;
    // No config at all: the defaults become the stored config, and the session pairs with
    // the Linked Devices label they name.
    app.pair(&net, "plain", "15550001111").await;
    let config = app.get("/api/sessions/plain").await.json()["config"].clone();
    assert_eq!(config["ignore"]["groups"], true, "{config}");
    assert_eq!(config["ignore"]["status"], true, "{config}");
    assert!(config["ignore"]["channels"].is_null(), "{config}");
    assert_eq!(
        config["client"],
        json!({"deviceName":"Wharf Server","browserName":"Firefox"})
    );

    // What the user sets wins; only unset options take the defaults.
    let body = json!({"name":"own","start":false,"config":{
        "ignore":{"status":false},"client":{"deviceName":"Mine"}}});
    let r = app.post("/api/sessions", &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let config = r.json()["config"].clone();
    assert_eq!(config["ignore"]["status"], false, "{config}");
    assert_eq!(config["ignore"]["groups"], true, "{config}");
    assert_eq!(
        config["client"],
        json!({"deviceName":"Mine","browserName":"Firefox"})
    );

    // Updating applies them as well.
    let r = app
        .put(
            "/api/sessions/own",
            &json!({"config":{"webhooks":[]}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["config"]["ignore"]["groups"], true, "{}", r.text);
}

#[tokio::test]
async fn without_the_variables_configs_stay_as_sent() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app
        .post("/api/sessions", r#"{"name":"bare","start":false}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        r.json()["config"].is_null() || r.json()["config"] == json!({}),
        "{}",
        r.text
    );
}
