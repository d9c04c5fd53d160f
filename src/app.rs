//! Wiring: config → store → session manager → HTTP server, and the orderly stop.
//!
//! Owns: the root cancellation token, the bound listener (port 0 allowed, for tests), the
//! HTTP server task ([`ServerTask`]: started by `run_until_stopped`, always joined), the
//! boot order — serve first, then restore sessions in the background (the session
//! manager's restore task; queued sessions show `STARTING`) — and the shutdown order: stop
//! HTTP, cancel sessions (never logging them out), wait with one deadline. Built by `main`
//! (or a test), lives until [`App::run_until_stopped`] returns.

use std::{io, net::TcpListener, sync::Arc, time::Duration};

use actix_web::web;
use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, AppState},
    config::Config,
    events::{EventBus, EventSettings},
    messages::{MessageStore, RetentionTask},
    sessions::{ManagerSettings, SessionManager, ShutdownReport, runtime::Timers},
    store::{Namespaces, Store},
};

/// How long the HTTP server may take to stop after `ServerHandle::stop(true)` before its
/// task is aborted (actix's own graceful timeout is 5 s; this leaves it room).
const HTTP_STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A built, listening server.
#[must_use = "an App does nothing until run_until_stopped() is awaited"]
pub struct App {
    port: u16,
    server: actix_web::dev::Server,
    manager: SessionManager,
    events: EventBus,
    /// Cluster mode: the `/ws` event fan-out from the other workers; stopped and joined on
    /// shutdown, after the `/ws` clients are closed.
    fanout: Option<crate::cluster::fanout::FanOut>,
    stop: CancellationToken,
    /// The media lifetime sweeper (`None` when files are kept); stopped and joined on
    /// shutdown.
    sweeper: Option<crate::media::SweeperTask>,
    /// The message-retention task (`None` when retention is off); stopped and joined on
    /// shutdown.
    retention: Option<RetentionTask>,
    /// Sessions queued for the boot restore (started once the server serves).
    restore: Vec<String>,
    /// Every stored session, for resuming undelivered webhooks (in the restore task).
    stored: Vec<String>,
    /// `WAHA_AUTO_START_DELAY_SECONDS`.
    restore_delay: Duration,
}

/// Opens the store the configuration asks for.
///
/// # Errors
/// When the store cannot be opened or reached.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let ns = Namespaces {
        main: config.namespace.clone(),
        session: config.session_namespace.clone(),
    };
    let store = match &config.mongo_url {
        Some(url) => Store::mongo(url.expose(), ns)
            .await
            .context("cannot open the MongoDB store")?,
        None => Store::sqlite(&config.local_store_base_dir, ns)
            .await
            .with_context(|| {
                format!(
                    "cannot open the local store at {}",
                    config.local_store_base_dir.display()
                )
            })?,
    };
    check_integrity(&store, config.store_allow_orphans).await?;
    crate::cli::migrate::boot_hint(config, &store).await;
    Ok(store)
}

/// Refuses to start on a main store that lost sessions whose own data is still there
/// (a missing `-wal` file, an older copy restored): booting would silently show fewer
/// sessions and a healthy `/health`. `WHARF_STORE_ALLOW_ORPHANS=true` starts anyway.
async fn check_integrity(store: &Store, allow: bool) -> anyhow::Result<()> {
    let orphans = match store.orphans().await {
        Ok(o) => o,
        // E.g. a MongoDB user without `listDatabases`: the check is skipped, loudly.
        Err(e) => {
            tracing::warn!(error = %e, "store integrity check skipped");
            return Ok(());
        }
    };
    if orphans.is_empty() {
        return Ok(());
    }
    let shown = orphans
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = orphans.len().saturating_sub(10);
    let list = if more > 0 {
        format!("{shown} and {more} more")
    } else {
        shown
    };
    // On MongoDB a database name cannot always be told apart from another namespace's
    // (`waha_a_b_c`: namespace `a`, session `b_c`, or namespace `a_b`?): warn only.
    if allow || store.kind() == "mongodb" {
        tracing::warn!(
            orphans = list,
            "the store holds data of sessions it does not know (a lost write, an older \
             copy, or another namespace's databases)"
        );
        return Ok(());
    }
    anyhow::bail!(
        "the {} store does not know {} session(s) whose own data exists: {list}. Its main \
         database may have lost recent writes (a missing -wal file) or been replaced by an \
         older copy. Restore it; or, to start anyway and leave that data alone, set \
         WHARF_STORE_ALLOW_ORPHANS=true",
        store.kind(),
        orphans.len()
    )
}

impl App {
    /// Opens the store, raises the file-descriptor limit, binds the listener and queues
    /// the sessions to restore (they start once [`App::run_until_stopped`] serves).
    ///
    /// # Errors
    /// Store unreachable, port taken.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if let Some(key) = &config.generated_api_key {
            // WAHA prints generated credentials once so they can be saved to .env.
            tracing::warn!(
                "no strong API key configured; generated one for this run. Save it:\n\
                 cat <<'EOF' >> .env\nWAHA_API_KEY={}\nEOF",
                key.expose()
            );
        }
        if let Some(password) = &config.dashboard.generated_password {
            tracing::warn!(
                "no strong dashboard password configured; generated one for this run. Save it:\n\
                 cat <<'EOF' >> .env\nWAHA_DASHBOARD_PASSWORD={}\nEOF",
                password.expose()
            );
        }
        crate::metrics::global().set_session_labels(config.metrics_session_labels);
        crate::metrics::global().set_collection_labels(config.metrics_mongo_collections);
        // Before anything opens files: every session holds a few descriptors.
        let fd_limit = crate::limits::raise_nofile_limit();
        let store = open_store(&config).await?;
        let stop = CancellationToken::new();
        let environment = serde_json::to_value(api::observability::environment_info(&config))?;
        let events = EventBus::new(
            store.clone(),
            EventSettings {
                global_webhook: config.global_webhook.clone(),
                environment,
                engine: config.engine.as_str().to_string(),
                user_agent: format!("WAHA/{}", crate::config::WAHA_VERSION),
                ws_ping_interval: Duration::from_secs(60),
                egress: config.egress.clone(),
            },
            tokio::runtime::Handle::current(),
            // Its own token: delivery keeps going while sessions stop (their final
            // `session.status` events go out now, not at the next boot); `shutdown` ends it.
            CancellationToken::new(),
        );
        let messages = MessageStore::new(store.clone());
        // Retention (WHARF_MESSAGES_RETENTION_DAYS; 0 = keep forever): hourly purge, owned by
        // the App and stopped with it.
        let retention = messages.spawn_retention(
            config.messages_retention_days,
            Duration::from_secs(3600),
            stop.child_token(),
        );
        let media = crate::media::MediaService::new(config.media.clone(), &config.base_url)
            .context("cannot set up media storage")?;
        media.remove_partials().await;
        // WHATSAPP_FILES_LIFETIME (0 = keep): the sweeper is owned by the App.
        let sweeper = media.spawn_sweeper(stop.child_token());
        let manager = SessionManager::new(
            store.clone(),
            messages.clone(),
            events.clone(),
            media.clone(),
            ManagerSettings {
                worker_id: config.worker_id.clone(),
                wa_url: config.wa_url.clone(),
                wa_version: config.wa_version,
                proxy: config.proxy.clone(),
                defaults: config.session_defaults.clone(),
                history_depth: config.history_depth,
                connect_timeout: config.connect_timeout,
                device_store_idle: config.device_store_idle,
                prekey_upload_count: config.prekey_upload_count,
                cluster: config.cluster.clone(),
                timers: Timers {
                    qr_timeout: config.qr_timeout,
                    restart_backoff: config.restart_backoff,
                    print_qr: config.print_qr,
                },
            },
            tokio::runtime::Handle::current(),
            stop.child_token(),
        );
        let fanout = config.cluster.as_ref().map(|settings| {
            let m = manager.clone();
            crate::cluster::fanout::FanOut::start(
                events.clone(),
                Arc::new(move || m.peers()),
                settings.clone(),
            )
        });
        let config = Arc::new(config);
        let listener = TcpListener::bind((config.bind_host.as_str(), config.port))
            .with_context(|| format!("cannot listen on {}:{}", config.bind_host, config.port))?;
        let port = listener.local_addr()?.port();
        config.egress.set_own_port(port);
        let state = web::Data::new(AppState {
            manager: manager.clone(),
            events: events.clone(),
            messages: messages.clone(),
            media,
            config: config.clone(),
            started_at_ms: crate::clock::now_ms(),
            stop: stop.clone(),
            keys: crate::keys::Keys::new(store.clone(), &config.api_key),
            jwt: crate::keys::jwt::Verifier::from_settings(&config.jwt)?,
            sessions_list: Default::default(),
            media_http: config.egress.http_client(),
            fanout: fanout.clone(),
        });
        let server = actix_web::HttpServer::new(move || api::build_app(state.clone()))
            // At least 4 workers even on 2 cores: a worker busy reading a large body must
            // not leave `/ping` and `/health` unanswered.
            .workers(
                std::thread::available_parallelism()
                    .map_or(4, std::num::NonZeroUsize::get)
                    .max(4),
            )
            // Small answers (statuses, acks) must not wait for the client's delayed ACK.
            .tcp_nodelay(true)
            .shutdown_timeout(5)
            // Stopping is ours (see run_until_stopped): SIGTERM must not skip session shutdown.
            .disable_signals()
            .listen(listener)?
            .run();
        let base = format!("http://{}:{port}", config.bind_host);
        let swagger = if config.swagger_enabled {
            format!("{base}/")
        } else {
            "disabled".to_string()
        };
        let dashboard = if config.dashboard.enabled {
            format!("{base}/dashboard")
        } else {
            "disabled".to_string()
        };
        tracing::info!(
            store = store.kind(),
            engine = config.engine.as_str(),
            namespace = config.namespace,
            worker = config.worker_id,
            "wharf listening on {base} (Swagger UI: {swagger}, OpenAPI: {base}/-json, \
             dashboard: {dashboard}, metrics: {base}/metrics)"
        );
        // Undelivered webhooks of every stored session go out again, started or not.
        let stored: Vec<String> = store
            .list_sessions()
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect();
        crate::limits::check_capacity(fd_limit, store.kind(), stored.len());
        // Only the plan here (a read or two): the starts run once the server answers, so
        // `/ping` is up within milliseconds whatever the number of sessions (issue 16).
        let restore = manager
            .plan_restore(
                config.worker_restart_sessions,
                config.restart_all_sessions,
                &config.start_sessions,
            )
            .await
            .context("cannot restore sessions")?;
        if !restore.is_empty() {
            tracing::info!("restoring {} sessions in the background", restore.len());
        }
        Ok(Self {
            port,
            server,
            manager,
            events,
            fanout,
            stop,
            sweeper,
            retention,
            restore,
            stored,
            restore_delay: config.auto_start_delay,
        })
    }

    /// The bound port (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A token that stops the app when cancelled (what `POST /api/server/stop` uses).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Serves until SIGINT/SIGTERM, the stop token or an HTTP server failure, then shuts
    /// down in order: HTTP (draining requests), sessions (cancel + join, never logout),
    /// event delivery.
    ///
    /// Returns what the session shutdown did.
    ///
    /// # Errors
    /// When the HTTP server failed (the rest is still shut down in order first).
    pub async fn run_until_stopped(self) -> anyhow::Result<ShutdownReport> {
        let mut server = ServerTask::start(self.server);
        // Serving now; the queued sessions start behind it (the manager owns the task and
        // joins it on shutdown).
        let events = self.events.clone();
        // Cluster mode: a session's webhooks are delivered by its owner only (resumed
        // when the lease loop claims it).
        let stored = if self.manager.is_cluster() {
            Vec::new()
        } else {
            self.stored
        };
        self.manager
            .spawn_restore(self.restore, self.restore_delay, async move {
                events.resume(&stored).await;
            });
        let mut failed = None;
        tokio::select! {
            () = self.stop.cancelled() => tracing::info!("stop requested"),
            () = shutdown_signal() => tracing::info!("signal received, stopping"),
            ended = server.ended() => {
                tracing::error!(error = %ended, "the HTTP server stopped by itself; stopping");
                failed = Some(ended);
            }
        }
        // Open WebSockets would hold the graceful HTTP stop for its whole timeout.
        self.events.close_websockets();
        if let Some(fanout) = &self.fanout {
            fanout.shutdown().await;
        }
        if failed.is_none() {
            server.stop(HTTP_STOP_DEADLINE).await;
        }
        let report = self.manager.shutdown().await;
        // Sessions are down, nothing writes history any more: end the purge (a purge in
        // progress finishes its transaction first).
        if let Some(sweeper) = self.sweeper {
            sweeper.stop(Duration::from_secs(10)).await;
        }
        if let Some(retention) = self.retention {
            retention.stop(Duration::from_secs(10)).await;
        }
        // Last: what sessions published while stopping is in the outbox either way.
        self.events.shutdown().await;
        tracing::info!("wharf stopped");
        failed.map_or(Ok(report), Err)
    }
}

/// The running actix server: its task and its control handle. Owned by
/// [`App::run_until_stopped`], which either sees it end or stops it and joins it; the
/// task never outlives the app.
#[must_use = "a ServerTask must be stopped (or seen to end) and joined"]
struct ServerTask {
    handle: actix_web::dev::ServerHandle,
    join: JoinHandle<io::Result<()>>,
}

impl ServerTask {
    /// Starts serving on the current (the app's multi-thread) runtime.
    fn start(server: actix_web::dev::Server) -> Self {
        let handle = server.handle();
        Self {
            handle,
            join: tokio::runtime::Handle::current().spawn(server),
        }
    }

    /// Waits until the server ends by itself, which it only does on failure (stopping is
    /// ours), and says why.
    ///
    /// # Cancel safety
    /// Cancel safe: the task keeps running and can still be stopped and joined.
    async fn ended(&mut self) -> anyhow::Error {
        match (&mut self.join).await {
            Ok(Ok(())) => anyhow::anyhow!("the HTTP server ended"),
            Ok(Err(e)) => anyhow::Error::new(e).context("the HTTP server failed"),
            Err(e) => anyhow::Error::new(e).context("the HTTP server task died"),
        }
    }

    /// Graceful stop: no new connections, in-flight requests drain (actix's timeout), then
    /// the task is joined. Past `deadline` the task is aborted and joined all the same.
    async fn stop(mut self, deadline: Duration) {
        self.handle.stop(true).await;
        match tokio::time::timeout(deadline, &mut self.join).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the HTTP server failed while stopping"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server task died while stopping"),
            Err(_) => {
                tracing::warn!(
                    ?deadline,
                    "the HTTP server did not stop in time; aborting it"
                );
                self.join.abort();
                // Joined even when aborted: nothing of the server runs after this returns.
                let _ = self.join.await;
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
