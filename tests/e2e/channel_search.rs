//! Issue 12 item 3, the channel search: `alice` creates three channels, mockwa lists them
//! in its channel directory (country, categories, featured), `bob` follows one; `bob`
//! then finds them by text and by view, a page at a time through WAHA's cursors, and
//! reads the fixed lists of views, countries and categories. Both stores.

use serde_json::{Value, json};

use crate::support::app::{Reply, StoreKind, TestApp};

const ALICE: &str = "15550009301";
const BOB: &str = "15550009302";

fn ok(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    if r.text.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn ids(result: &Value) -> Vec<String> {
    result["channels"]
        .as_array()
        .unwrap_or_else(|| panic!("no channels: {result}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn by_view(app: &TestApp, body: Value) -> Value {
    ok(
        &app.post("/api/bob/channels/search/by-view", &body.to_string())
            .await,
        200,
    )
}

async fn by_text(app: &TestApp, body: Value) -> Value {
    ok(
        &app.post("/api/bob/channels/search/by-text", &body.to_string())
            .await,
        200,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_channels_by_text_and_view_with_cursors() {
    for store in StoreKind::all("channel_search") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "alice", ALICE).await;
        app.pair(&net, "bob", BOB).await;

        let mut made = Vec::new();
        for (name, description) in [
            ("Harbour sports", "Regattas and rowing"),
            ("Harbour news", "What the harbour master says"),
            ("Dock talk", "Gossip from the quay"),
        ] {
            let c = ok(
                &app.post(
                    "/api/alice/channels",
                    &json!({"name": name, "description": description}).to_string(),
                )
                .await,
                201,
            );
            made.push(c["id"].as_str().unwrap().to_string());
        }
        let (sports, news, dock) = (made[0].clone(), made[1].clone(), made[2].clone());
        let listing = |country: &str, categories: &[&str], featured: bool| mockwa::Listing {
            country: Some(country.into()),
            categories: categories.iter().map(|c| (*c).to_string()).collect(),
            featured,
        };
        net.list_newsletter(&sports, listing("US", &["SPORTS"], true))
            .unwrap();
        net.list_newsletter(&news, listing("US", &["NEWS_AND_INFORMATION"], false))
            .unwrap();
        net.list_newsletter(&dock, listing("BR", &["PEOPLE"], false))
            .unwrap();
        ok(
            &app.post(&format!("/api/bob/channels/{news}/follow"), "{}")
                .await,
            201,
        );

        // By text: the name or the description, any case; most followed first; WAHA's
        // `ChannelPublicInfo`.
        let found = by_text(&app, json!({"text": "HARBOUR"})).await;
        assert_eq!(ids(&found), [news.as_str(), sports.as_str()], "{found}");
        let first = &found["channels"][0];
        let mut keys: Vec<&str> = first
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "description",
                "id",
                "invite",
                "name",
                "picture",
                "preview",
                "subscribersCount",
                "verified"
            ]
        );
        assert_eq!(first["name"], "Harbour news");
        assert_eq!(first["description"], "What the harbour master says");
        assert_eq!(first["subscribersCount"], 1);
        assert_eq!(first["verified"], false);
        assert!(
            first["invite"]
                .as_str()
                .unwrap()
                .starts_with("https://www.whatsapp.com/channel/"),
            "{first}"
        );
        assert_eq!(found["page"]["hasNextPage"], false, "{found}");
        assert_eq!(found["page"]["hasPreviousPage"], false, "{found}");
        let quay = by_text(&app, json!({"text": "quay"})).await;
        assert_eq!(ids(&quay), [dock.as_str()], "{quay}");
        let sporty = by_text(&app, json!({"text": "harbour", "categories": ["SPORTS"]})).await;
        assert_eq!(ids(&sporty), [sports.as_str()], "{sporty}");
        let none = by_text(&app, json!({"text": "submarine"})).await;
        assert_eq!(none["channels"], json!([]), "{none}");
        assert_eq!(none["page"]["endCursor"], Value::Null, "{none}");

        // Pages: `page.endCursor` is the next request's `startCursor`.
        let p1 = by_text(&app, json!({"text": "harbour", "limit": 1})).await;
        assert_eq!(ids(&p1), [news.as_str()], "{p1}");
        assert_eq!(p1["page"]["hasNextPage"], true, "{p1}");
        assert_eq!(p1["page"]["hasPreviousPage"], false, "{p1}");
        let cursor = p1["page"]["endCursor"].as_str().unwrap().to_string();
        let p2 = by_text(
            &app,
            json!({"text": "harbour", "limit": 1, "startCursor": cursor}),
        )
        .await;
        assert_eq!(ids(&p2), [sports.as_str()], "{p2}");
        assert_eq!(p2["page"]["hasNextPage"], false, "{p2}");
        assert_eq!(p2["page"]["hasPreviousPage"], true, "{p2}");

        // By view. WAHA's defaults: RECOMMENDED in the US, any category.
        let rec = by_view(&app, json!({})).await;
        assert_eq!(ids(&rec), [news.as_str(), sports.as_str()], "{rec}");
        let featured = by_view(&app, json!({"view": "FEATURED", "countries": ["US"]})).await;
        assert_eq!(ids(&featured), [sports.as_str()], "{featured}");
        let brazil = by_view(&app, json!({"view": "POPULAR", "countries": ["BR"]})).await;
        assert_eq!(ids(&brazil), [dock.as_str()], "{brazil}");
        let newest = by_view(
            &app,
            json!({"view": "NEW", "countries": ["US", "BR"], "categories": [], "limit": 2}),
        )
        .await;
        assert_eq!(ids(&newest), [dock.as_str(), news.as_str()], "{newest}");
        assert_eq!(newest["page"]["hasNextPage"], true, "{newest}");
        let rest = by_view(
            &app,
            json!({"view": "NEW", "countries": ["US", "BR"], "limit": 2,
                   "startCursor": newest["page"]["endCursor"]}),
        )
        .await;
        assert_eq!(ids(&rest), [sports.as_str()], "{rest}");
        let people = by_view(
            &app,
            json!({"view": "RECOMMENDED", "countries": ["US", "BR"], "categories": ["PEOPLE"]}),
        )
        .await;
        assert_eq!(ids(&people), [dock.as_str()], "{people}");

        // Bad input is a 4xx: WAHA's DTO checks, and WhatsApp's refusals.
        for (path, body) in [
            ("by-view", json!({"view": "SIDEWAYS"})),
            ("by-view", json!({"limit": 0})),
            (
                "by-text",
                json!({"text": "x", "startCursor": "not-a-cursor"}),
            ),
            ("by-text", json!({"text": 5})),
        ] {
            let r = app
                .post(
                    &format!("/api/bob/channels/search/{path}"),
                    &body.to_string(),
                )
                .await;
            assert_eq!(r.status, 400, "{path} {body}: {}", r.text);
        }

        // The fixed lists, as WAHA serves them (no running session needed).
        let views = ok(&app.get("/api/bob/channels/search/views").await, 200);
        assert!(
            views
                .as_array()
                .unwrap()
                .contains(&json!({"value": "RECOMMENDED", "name": "Recommended"})),
            "{views}"
        );
        let countries = ok(&app.get("/api/nobody/channels/search/countries").await, 200);
        let countries = countries.as_array().unwrap();
        assert!(countries.len() > 200, "{}", countries.len());
        assert!(countries.contains(&json!({"code": "US", "name": "United States"})));
        let categories = ok(&app.get("/api/bob/channels/search/categories").await, 200);
        assert!(
            categories
                .as_array()
                .unwrap()
                .contains(&json!({"value": "SPORTS", "name": "Sports"})),
            "{categories}"
        );
    }
}
