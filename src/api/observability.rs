//! `🔍 Observability`: `/ping`, `/health`, `/api/server/*`, `/api/version` (waha.md §9).
//!
//! Owns: `WAHAEnvironment`, the health document and the redaction of
//! `/api/server/environment` (wharf never prints secrets there, unlike WAHA).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Body, Query};
use crate::config::{Config, WAHA_VERSION};

/// `PingResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingResponse {
    /// Always `pong`.
    #[schema(example = "pong")]
    pub message: String,
}

/// `WAHAEnvironment.worker`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentWorker {
    /// `WAHA_WORKER_ID`, or null.
    pub id: Option<String>,
}

/// `WAHAEnvironment`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WAHAEnvironment {
    /// WAHA API version implemented.
    #[schema(example = "2026.7.1")]
    pub version: String,
    /// Reported engine.
    #[schema(example = "GOWS")]
    pub engine: String,
    /// Tier.
    #[schema(example = "CORE")]
    pub tier: String,
    /// Browser path (always null: no browser).
    pub browser: Option<String>,
    /// `os/arch`.
    #[schema(example = "linux/x64")]
    pub platform: String,
    /// Worker.
    #[schema(inline)]
    pub worker: EnvironmentWorker,
}

/// The environment block used by `/api/server/version`, webhooks and 500 bodies.
pub fn environment_info(config: &Config) -> WAHAEnvironment {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    WAHAEnvironment {
        version: WAHA_VERSION.to_string(),
        engine: config.engine.as_str().to_string(),
        tier: "CORE".to_string(),
        browser: None,
        platform: format!("{}/{arch}", std::env::consts::OS),
        worker: EnvironmentWorker {
            id: (!config.worker_id.is_empty()).then(|| config.worker_id.clone()),
        },
    }
}

/// `WorkerInfo`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerInfo {
    /// The worker id.
    #[schema(example = "waha")]
    pub id: String,
}

/// `ServerStatusResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatusResponse {
    /// Start time, ms.
    pub start_timestamp: i64,
    /// Uptime, ms.
    pub uptime: i64,
    /// Worker.
    pub worker: WorkerInfo,
}

/// `StopRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StopRequest {
    /// Terminate at once instead of a graceful stop.
    #[serde(default)]
    pub force: Option<bool>,
}

/// `StopResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopResponse {
    /// Always true.
    pub stopping: bool,
}

/// Query of `/api/server/environment`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvironmentQuery {
    /// Include all environment variables
    // Lenient like WAHA's `BooleanString` transform: only `true`/`1` mean yes, any other
    // value no — so it is parsed as a string and documented as the boolean it means.
    #[serde(default)]
    #[param(value_type = Option<bool>, default = false, example = false)]
    pub all: Option<String>,
}

/// Ping the server
///
/// Check if the server is alive and responding to requests.
#[utoipa::path(
    operation_id = "PingController_ping",
    tag = "🔍 Observability",
    responses((status = 200, description = "", body = PingResponse))
)]
#[get("/ping")]
pub async fn ping() -> HttpResponse {
    HttpResponse::Ok().json(PingResponse {
        message: "pong".into(),
    })
}

/// Check the health of the server
///
/// Perform all health checks and return the server's health status.
#[utoipa::path(
    operation_id = "HealthController_check",
    tag = "🔍 Observability",
    responses(
        (status = 200, description = "The Health Check is successful", body = Object),
        (status = 503, description = "The Health Check is not successful", body = Object)
    ),
    security(("api_key" = []))
)]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let config = &state.config;
    let mut details = serde_json::Map::new();
    details.insert(
        "mediaFiles.space".into(),
        disk_indicator(&config.files_folder, config.health_media_threshold_mb),
    );
    let store = state.manager.store();
    let probe = tokio::time::timeout(std::time::Duration::from_secs(3), store.ping()).await;
    let store_error = match probe {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timeout".to_string()),
    };
    // Indicator names follow WAHA's terminus checks.
    if store.kind() == "mongodb" {
        let indicator = match &store_error {
            None => serde_json::json!({"status": "up", "message": "Up and running"}),
            Some(e) => serde_json::json!({"status": "down", "message": e}),
        };
        details.insert("mongodb".into(), indicator);
    } else {
        let mut indicator = disk_indicator(
            &config.local_store_base_dir,
            config.health_sessions_threshold_mb,
        );
        if let Some(e) = &store_error {
            indicator["status"] = "down".into();
            indicator["message"] = e.clone().into();
        }
        details.insert("sessionsFiles.space".into(), indicator);
    }
    let (info, error): (serde_json::Map<_, _>, serde_json::Map<_, _>) = details
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(_, v)| v["status"] == "up");
    if error.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({
            "status": "ok", "info": info, "error": {}, "details": details,
        }))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "error", "info": info, "error": error, "details": details,
        }))
    }
}

/// WAHA's disk indicator `{status, path, diskPath, free, threshold}` (bytes) for `path`,
/// measured on its nearest existing ancestor (the folder may not exist yet).
fn disk_indicator(path: &std::path::Path, threshold_mb: u64) -> serde_json::Value {
    let threshold = threshold_mb.saturating_mul(1024 * 1024);
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let disk_path = absolute
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"));
    match rustix::fs::statvfs(disk_path) {
        Ok(st) => {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            serde_json::json!({
                "status": if free >= threshold { "up" } else { "down" },
                "path": path.display().to_string(),
                "diskPath": disk_path.display().to_string(),
                "free": free,
                "threshold": threshold,
            })
        }
        Err(e) => serde_json::json!({
            "status": "down",
            "path": path.display().to_string(),
            "diskPath": disk_path.display().to_string(),
            "message": e.to_string(),
            "threshold": threshold,
        }),
    }
}

/// Get the version of the server
#[utoipa::path(
    operation_id = "ServerController_get",
    tag = "🔍 Observability",
    responses((status = 200, description = "", body = WAHAEnvironment)),
    security(("api_key" = []))
)]
#[get("/api/server/version")]
pub async fn server_version(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(environment_info(&state.config))
}

/// Get the server version
#[utoipa::path(
    operation_id = "VersionController_get",
    tag = "🔍 Observability",
    responses((status = 200, description = "", body = WAHAEnvironment)),
    security(("api_key" = []))
)]
#[get("/api/version")]
pub async fn version(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(environment_info(&state.config))
}

/// Get the server status
#[utoipa::path(
    operation_id = "ServerController_status",
    tag = "🔍 Observability",
    responses((status = 200, description = "", body = ServerStatusResponse)),
    security(("api_key" = []))
)]
#[get("/api/server/status")]
pub async fn server_status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = crate::clock::now_ms();
    let status = ServerStatusResponse {
        start_timestamp: state.started_at_ms,
        uptime: now - state.started_at_ms,
        worker: WorkerInfo {
            id: state.config.worker_id.clone(),
        },
    };
    // Cluster mode adds wharf's `cluster` object (workers, leases); WAHA's fields stay.
    let Some(view) = cluster_view(&state).await? else {
        return Ok(HttpResponse::Ok().json(status));
    };
    let mut body = serde_json::to_value(status).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["cluster"] = serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(body))
}

/// Cluster mode: the membership and leases as stored now (`None` outside cluster mode).
async fn cluster_view(
    state: &AppState,
) -> Result<Option<crate::cluster::view::ClusterView>, ApiError> {
    let (Some(settings), Some(store)) = (&state.config.cluster, state.manager.store().cluster())
    else {
        return Ok(None);
    };
    let view = crate::cluster::view::ClusterView::read(&store, settings).await?;
    Ok(Some(view))
}

/// `GET /metrics` (wharf's addition; WAHA has none): Prometheus' OpenMetrics text. Behind
/// the API key like every route, unless `WAHA_API_KEY_EXCLUDE_PATH` lists `metrics`.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let views = state.manager.list(true).await?;
    let mut text = crate::metrics::global().render(views.iter().map(|v| v.status.as_str()));
    if let Some(view) = cluster_view(&state).await? {
        // The cluster's series go before the registry's closing `# EOF`.
        let head = text.strip_suffix("# EOF\n").unwrap_or(&text).to_string();
        text = format!("{head}{}# EOF\n", crate::cluster::view::metrics(&view));
    }
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}

/// The environment map shown by `/api/server/environment`, redacted.
pub fn redacted_environment(config: &Config, all: bool) -> BTreeMap<String, String> {
    config
        .environment
        .expose()
        .iter()
        .filter(|(k, _)| {
            all || k.starts_with("WAHA_") || k.starts_with("WHATSAPP_") || k.starts_with("DEBUG")
        })
        .map(|(k, v)| (k.clone(), crate::redact::env_value(k, v)))
        .collect()
}

/// Get the server environment
#[utoipa::path(
    operation_id = "ServerController_environment",
    tag = "🔍 Observability",
    params(EnvironmentQuery),
    responses((status = 200, description = "", body = Object)),
    security(("api_key" = []))
)]
#[get("/api/server/environment")]
pub async fn server_environment(
    state: web::Data<AppState>,
    query: Query<EnvironmentQuery>,
) -> Result<HttpResponse, ApiError> {
    let all = matches!(query.0.all.as_deref(), Some("true" | "1"));
    Ok(HttpResponse::Ok().json(redacted_environment(&state.config, all)))
}

/// Stop (and restart) the server
///
/// If you're using docker, after calling this endpoint Docker will start a new container, so you can use this endpoint to restart the server
#[utoipa::path(
    operation_id = "ServerController_stop",
    tag = "🔍 Observability",
    request_body = StopRequest,
    responses((status = 201, description = "", body = StopResponse)),
    security(("api_key" = []))
)]
#[post("/api/server/stop")]
pub async fn server_stop(state: web::Data<AppState>, body: Body<StopRequest>) -> HttpResponse {
    let force = body.0.force.unwrap_or(false);
    tracing::warn!(force, "stop requested through the API");
    if force {
        // WAHA: SIGKILL. Sessions are crash-safe (all state is in the store).
        std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            std::process::exit(1);
        });
    } else {
        // WAHA answers first and stops ~1 s later; the graceful path in `app` does the rest.
        let stop = state.stop.clone();
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
            stop.cancel();
        });
    }
    HttpResponse::Created().json(StopResponse { stopping: true })
}

/// Registers this tag's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(ping)
        .service(health)
        .service(server_version)
        .service(server_environment)
        .service(server_status)
        .service(server_stop)
        .service(version);
}
