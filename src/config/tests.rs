use std::collections::BTreeMap;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(vars(pairs))
}

#[test]
fn from_vars_empty_gives_waha_defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.port, 3000);
    assert_eq!(c.base_url, "http://localhost:3000");
    assert_eq!(
        c.local_store_base_dir,
        std::path::PathBuf::from("./.sessions")
    );
    assert_eq!(c.engine, EngineName::Gows);
    assert_eq!(c.namespace, "gows");
    assert_eq!(c.session_namespace, "gows");
    assert!(c.worker_restart_sessions);
    assert!(!c.restart_all_sessions);
    assert!(c.swagger_enabled);
    assert!(c.mongo_url.is_none());
    // No key configured: a random one is generated and used.
    let generated = c.generated_api_key.as_ref().unwrap().expose().clone();
    assert_eq!(generated.len(), 32);
    assert!(c.api_key.matches(&generated));
    assert!(!c.api_key.matches(""));
}

#[test]
fn from_vars_port_wins_over_whatsapp_api_port() {
    let c = parse(&[("PORT", "4000"), ("WHATSAPP_API_PORT", "5000")]).unwrap();
    assert_eq!(c.port, 4000);
    let c = parse(&[("WHATSAPP_API_PORT", "5000")]).unwrap();
    assert_eq!(c.port, 5000);
}

#[test]
fn from_vars_weak_keys_are_replaced() {
    let zeros_sha = format!(
        "sha512:{}",
        hex::encode(Sha512::digest("0".repeat(32).as_bytes()))
    );
    for weak in [
        "123",
        "321",
        "waha",
        "admin",
        &"0".repeat(32),
        &"1".repeat(32),
        &zeros_sha,
    ] {
        let c = parse(&[("WAHA_API_KEY", weak)]).unwrap();
        assert!(c.generated_api_key.is_some(), "{weak} should be replaced");
        assert!(!c.api_key.matches(weak));
    }
}

#[test]
fn from_vars_plain_and_sha512_keys_match() {
    let c = parse(&[("WAHA_API_KEY", "s3cret-key")]).unwrap();
    assert!(c.generated_api_key.is_none());
    assert!(c.api_key.matches("s3cret-key"));
    assert!(!c.api_key.matches("s3cret-kez"));
    let hashed = format!("sha512:{}", hex::encode(Sha512::digest(b"s3cret-key")));
    let c = parse(&[("WAHA_API_KEY", &hashed)]).unwrap();
    assert!(c.api_key.matches("s3cret-key"));
    assert!(!c.api_key.matches(&hashed));
    // WHATSAPP_API_KEY is copied over WAHA_API_KEY.
    let c = parse(&[
        ("WAHA_API_KEY", "a-key-one"),
        ("WHATSAPP_API_KEY", "b-key-two"),
    ])
    .unwrap();
    assert!(c.api_key.matches("b-key-two"));
}

#[test]
fn from_vars_no_api_key_disables_auth() {
    let c = parse(&[("WAHA_NO_API_KEY", "true")]).unwrap();
    assert!(matches!(c.api_key, ApiKey::Disabled));
    assert!(c.generated_api_key.is_none());
}

#[test]
fn from_vars_bad_values_are_all_reported_by_name() {
    let err = parse(&[
        ("PORT", "abc"),
        ("WAHA_NO_API_KEY", "maybe"),
        ("WHATSAPP_DEFAULT_ENGINE", "VENOM"),
        ("WAHA_LOG_FORMAT", "XML"),
        ("WHATSAPP_SESSIONS_MONGO_URL", "postgres://x"),
        ("WAHA_API_KEY", "sha512:zz"),
    ])
    .unwrap_err();
    let text = err.to_string();
    for name in [
        "PORT",
        "WAHA_NO_API_KEY",
        "WHATSAPP_DEFAULT_ENGINE",
        "WAHA_LOG_FORMAT",
        "WHATSAPP_SESSIONS_MONGO_URL",
        "WAHA_API_KEY",
    ] {
        assert!(text.contains(name), "{name} missing from: {text}");
    }
    assert_eq!(err.0.len(), 6);
}

#[test]
fn from_vars_engine_sets_namespaces() {
    let c = parse(&[("WHATSAPP_DEFAULT_ENGINE", "noweb")]).unwrap();
    assert_eq!(c.engine, EngineName::Noweb);
    assert_eq!(c.namespace, "noweb");
    let c = parse(&[("WAHA_NAMESPACE", "all"), ("WAHA_SESSION_NAMESPACE", "x")]).unwrap();
    assert_eq!(
        (c.namespace.as_str(), c.session_namespace.as_str()),
        ("all", "x")
    );
}

#[test]
fn from_vars_exclude_paths_are_anchored_regexes() {
    let c = parse(&[("WAHA_API_KEY_EXCLUDE_PATH", "api/files/(.*), health,/ping")]).unwrap();
    let m = |p: &str| c.api_key_exclude.iter().any(|re| re.is_match(p));
    assert!(m("api/files/default/x.jpg"));
    assert!(m("health"));
    assert!(m("ping"));
    assert!(!m("api/sessions"));
    assert!(!m("healthz"));
}

#[test]
fn from_vars_global_webhook_is_parsed() {
    let c = parse(&[
        ("WHATSAPP_HOOK_URL", "http://127.0.0.1:9/hook"),
        ("WHATSAPP_HOOK_EVENTS", "message,session.status"),
        ("WHATSAPP_HOOK_HMAC_KEY", "k"),
        ("WHATSAPP_HOOK_RETRIES_POLICY", "linear"),
        ("WHATSAPP_HOOK_CUSTOM_HEADERS", "X-A:1;X-B: two"),
    ])
    .unwrap();
    let hook = c.global_webhook.unwrap();
    assert_eq!(hook.events, vec!["message", "session.status"]);
    assert_eq!(hook.hmac.unwrap().key.as_deref(), Some("k"));
    assert_eq!(hook.retries.unwrap().policy, Some(RetryPolicy::Linear));
    assert_eq!(hook.custom_headers.unwrap()[1].value, "two");
    assert!(parse(&[("WHATSAPP_HOOK_URL", "ftp://x")]).is_err());
}

#[test]
fn from_vars_wa_url_only_in_mock_network_builds() {
    let result = parse(&[("WHARF_WA_URL", "ws://127.0.0.1:1/ws/chat")]);
    if cfg!(feature = "mock-network") {
        assert_eq!(
            result.unwrap().wa_url.as_deref(),
            Some("ws://127.0.0.1:1/ws/chat")
        );
    } else {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("WHARF_WA_URL"), "{err}");
    }
}

#[test]
fn secret_debug_is_redacted() {
    let c = parse(&[("WAHA_API_KEY", "very-secret-key")]).unwrap();
    assert!(!format!("{c:?}").contains("very-secret-key"));
}

#[test]
fn media_variables_follow_waha_defaults_and_are_validated() {
    let c = parse(&[]).unwrap();
    assert!(c.media.download);
    assert!(c.media.mimetypes.is_empty());
    assert_eq!(c.media.lifetime, Duration::from_secs(180));
    assert_eq!(c.media.folder, PathBuf::from("/tmp/whatsapp-files"));
    assert_eq!(c.media.storage, MediaStorageKind::Local);

    let c = parse(&[
        ("WHATSAPP_DOWNLOAD_MEDIA", "false"),
        ("WHATSAPP_FILES_MIMETYPES", " audio , Image/PNG ,"),
        ("WHATSAPP_FILES_LIFETIME", "0"),
        ("WAHA_MEDIA_STORAGE", "s3"),
        ("WAHA_S3_BUCKET", "media"),
        ("WAHA_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("WAHA_S3_FORCE_PATH_STYLE", "true"),
        ("WAHA_S3_SECRET_ACCESS_KEY", "s3cr3t"),
    ])
    .unwrap();
    assert!(!c.media.download);
    assert_eq!(c.media.mimetypes, ["audio", "image/png"]);
    assert!(c.media.lifetime.is_zero());
    let MediaStorageKind::S3(s3) = &c.media.storage else {
        panic!("S3 expected");
    };
    assert_eq!(s3.bucket, "media");
    assert_eq!(s3.region, "us-east-1");
    assert!(s3.force_path_style && !s3.proxy_files);
    assert!(!format!("{s3:?}").contains("s3cr3t"), "secret redacted");

    let e = parse(&[
        ("WAHA_MEDIA_STORAGE", "S3"),
        ("WAHA_S3_ENDPOINT", "minio:9000"),
        ("WHATSAPP_FILES_LIFETIME", "-1"),
    ])
    .unwrap_err()
    .to_string();
    for name in [
        "WAHA_S3_BUCKET",
        "WAHA_S3_ENDPOINT",
        "WHATSAPP_FILES_LIFETIME",
    ] {
        assert!(e.contains(name), "{name} in {e}");
    }
    let e = parse(&[("WAHA_MEDIA_STORAGE", "POSTGRESQL")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("WAHA_MEDIA_STORAGE"), "{e}");
}

#[test]
fn from_vars_cluster_is_off_by_default_and_needs_mongo() {
    assert!(parse(&[]).unwrap().cluster.is_none());
    let err = parse(&[("WHARF_CLUSTER", "true")]).unwrap_err();
    assert!(err.to_string().contains("WHARF_CLUSTER"), "{err}");
    // A shared secret is required.
    let err = parse(&[
        ("WHARF_CLUSTER", "true"),
        ("WHATSAPP_SESSIONS_MONGO_URL", "mongodb://127.0.0.1:27017"),
        ("WHARF_CLUSTER_SECRET", "short"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("WHARF_CLUSTER_SECRET"), "{err}");
    let c = parse(&[
        ("WHARF_CLUSTER", "true"),
        ("WHATSAPP_SESSIONS_MONGO_URL", "mongodb://127.0.0.1:27017"),
        ("WHARF_CLUSTER_SECRET", "0123456789abcdef"),
    ])
    .unwrap();
    let cluster = c.cluster.unwrap();
    // A generated worker id, used as the worker id too.
    assert!(cluster.worker_id.starts_with("wharf-"), "{cluster:?}");
    assert_eq!(c.worker_id, cluster.worker_id);
    assert_eq!(cluster.advertise_url, "http://localhost:3000");
    assert_eq!(cluster.capacity, 500);
    assert_eq!(cluster.lease_ttl, Duration::from_secs(10));
    assert_eq!(cluster.dead_after, Duration::from_secs(15));
    assert_eq!(cluster.tick(), Duration::from_secs(2));
    assert_eq!(cluster.margin(), Duration::from_secs(2));
    let err = parse(&[
        ("WHARF_CLUSTER", "true"),
        ("WHATSAPP_SESSIONS_MONGO_URL", "mongodb://127.0.0.1:27017"),
        ("WHARF_CLUSTER_LEASE_SECONDS", "0"),
        ("WHARF_CLUSTER_CAPACITY", "0"),
        ("WHARF_ADVERTISE_URL", "host:1"),
    ])
    .unwrap_err()
    .to_string();
    for name in [
        "WHARF_CLUSTER_LEASE_SECONDS",
        "WHARF_CLUSTER_CAPACITY",
        "WHARF_ADVERTISE_URL",
    ] {
        assert!(err.contains(name), "{err}");
    }
}
