//! Cluster mode: any worker answers any request — requests for a session another worker
//! runs are forwarded to it (issue 15, routing).
//!
//! Owns the [`forward`] middleware (wired in `api::build_app` just inside authentication,
//! so an unauthenticated request is refused here and never travels) and the HTTP client
//! to peers (one pool per process: keep-alive, `TCP_NODELAY`, timeouts). Outside cluster
//! mode it only passes requests on.
//!
//! For each request it finds the session the request names — the `{session}` path
//! segment, `?session=`, or the JSON body's `session` (`name` for the deprecated
//! `/api/sessions/{start,stop,logout}`), with the same table the scope check uses
//! (`api::scopes`) — and routes it by the lease table the lease loop keeps in memory
//! (`sessions::cluster_routes`):
//! - runs here, or runs nowhere (stopped, unknown; confirmed by the read below): served
//!   here;
//! - another live worker holds its lease: the request is sent there as it came (method,
//!   path and query, headers but hop-by-hop ones, body; the client's `X-Api-Key` /
//!   `Authorization` untouched, so the owner authenticates it again) with
//!   `X-Wharf-Cluster` (`cluster::peer`), and the owner's status, headers and body are
//!   the answer;
//! - not running here and held by no live peer by the snapshot: the lease is read once
//!   from MongoDB (a session just started or moved elsewhere goes there);
//! - wanted but held by no live worker (being placed, claimed or handed over): still in
//!   transit → the lifecycle routes
//!   (`GET/PUT/DELETE /api/sessions/{s}`, `…/me`, start/stop/restart/logout) are served
//!   here (status `STARTING`), everything else answers `503` with `Retry-After`.
//!
//! A request carrying a valid `X-Wharf-Cluster` is never forwarded again (loop guard); an
//! invalid one is refused with WAHA's 401. `GET /api/sessions` is this worker's list with
//! the entries of sessions running elsewhere taken from their owners' lists.
//!
//! Every session-named request is forwarded, reads of the database included: the owner's
//! answer is the reference (its WORKING gate, its live state), at the cost of one hop. So
//! is an admin route about one session (a `{session}` path segment). Both ends are counted
//! for `/metrics` (`cluster::view::forwarded`, `cluster::view::from_peer`).

use std::{sync::LazyLock, time::Duration};

use actix_web::{
    HttpMessage, HttpResponse,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::Next,
    web,
};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{
    ApiError, AppState, BODY_LIMIT,
    scopes::{self, Rule, Source},
};
use crate::{cluster::peer, sessions::cluster_routes::Route};

/// The longest a forwarded request may take (media sends fetch URLs for up to 60 s and
/// convert files): past it the client gets a 502.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(180);
/// Connecting to a peer: they are on the same network; a dead one is detected quickly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a request waits for a session that is `STARTING` here (see
/// `SessionManager::settle`).
const SETTLE_MAX: Duration = Duration::from_secs(5);
/// Asking the peers for their sessions list.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Marks a request that came from a peer with a valid credential.
#[derive(Debug, Clone, Copy)]
pub struct FromPeer;

/// The client to peers: one keep-alive pool for the process.
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(FORWARD_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        // Peers answer as the client would see them: a redirect is passed on, not followed.
        .redirect(reqwest::redirect::Policy::none())
        // Peer URLs are internal: never through an `HTTP_PROXY` of the environment.
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
});

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the HTTP stacks set themselves.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    ) || name == peer::HEADER
}

/// How a request names its session.
struct Named {
    session: String,
    /// A lifecycle or status route: served here while the session is in transit.
    lifecycle: bool,
}

fn is_lifecycle(pattern: &str) -> bool {
    matches!(
        pattern,
        "/api/sessions/{session}"
            | "/api/sessions/{session}/me"
            | "/api/sessions/{session}/start"
            | "/api/sessions/{session}/stop"
            | "/api/sessions/{session}/restart"
            | "/api/sessions/{session}/logout"
            | "/api/sessions/start"
            | "/api/sessions/stop"
            | "/api/sessions/logout"
    )
}

/// The body fields that may name a session.
#[derive(Deserialize)]
struct SessionFields {
    #[serde(default)]
    session: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<serde_json::Value>,
}

/// Reads the whole body (at most [`BODY_LIMIT`]) and puts it back for the handler.
async fn buffer_body(req: &mut ServiceRequest) -> Result<web::Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(e.to_string()))?;
        if buf.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::payload_too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    let bytes = buf.freeze();
    req.set_payload(actix_web::dev::Payload::from(bytes.clone()));
    Ok(bytes)
}

/// The session named by `field` of a JSON body, as the handlers read it (absent or
/// blank: `default`; a body that is not JSON: the handler answers, so `None`).
fn body_session(req: &ServiceRequest, body: &[u8], field: &str) -> Option<String> {
    let is_json = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
    if !is_json {
        return Some("default".into());
    }
    let fields: SessionFields = serde_json::from_slice(body).ok()?;
    let value = if field == "name" {
        fields.name
    } else {
        fields.session
    };
    match value {
        None => Some("default".into()),
        Some(serde_json::Value::String(s)) if s.is_empty() => Some("default".into()),
        Some(serde_json::Value::String(s)) => Some(s),
        // Not a string: the handler's 400.
        Some(_) => None,
    }
}

/// The session `req` names, buffering the body when that is where it is named.
async fn named_session(
    req: &mut ServiceRequest,
) -> Result<(Option<Named>, Option<web::Bytes>), ApiError> {
    let method = req.method().as_str().to_string();
    let Some((pattern, rule)) = scopes::rule_for_request(&method, req.path()) else {
        return Ok((None, None));
    };
    let lifecycle = is_lifecycle(pattern);
    let from = match rule {
        Rule::Session { from, .. } => from,
        // The deprecated session routes name it in the body's `name`.
        Rule::Admin if lifecycle => Source::Body("name"),
        // An admin-only route about one session (the browser trace): its owner answers.
        Rule::Admin if pattern.contains("{session}") => Source::Path,
        Rule::Admin | Rule::Public | Rule::Listing => return Ok((None, None)),
    };
    let (session, body) = match from {
        Source::Path => (scopes::path_session(pattern, req.path()), None),
        Source::Segment(i) => (
            req.path()
                .trim_start_matches('/')
                .split('/')
                .nth(i)
                .map(str::to_string),
            None,
        ),
        Source::Query => (Some(super::auth::query_session(req.query_string())), None),
        Source::Body(field) => {
            let body = buffer_body(req).await?;
            (body_session(req, &body, field), Some(body))
        }
    };
    Ok((session.map(|session| Named { session, lifecycle }), body))
}

fn local<B: MessageBody + 'static>(res: ServiceResponse<B>) -> ServiceResponse<BoxBody> {
    res.map_into_boxed_body()
}

fn refuse(req: ServiceRequest, err: &ApiError) -> ServiceResponse<BoxBody> {
    let res = actix_web::ResponseError::error_response(err);
    req.into_response(res)
}

fn moving(req: ServiceRequest, session: &str, tick: Duration) -> ServiceResponse<BoxBody> {
    let mut res = actix_web::ResponseError::error_response(&ApiError::session_moving(session));
    retry_after(&mut res, tick);
    req.into_response(res)
}

/// `Retry-After`: two lease-loop rounds (one to hand the session over and claim it, one
/// for every worker's routing snapshot to see the new owner), plus a second to connect.
fn retry_after(res: &mut HttpResponse, tick: Duration) {
    let secs = (tick * 2).as_secs_f64().ceil() as u64 + 1;
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// The middleware: see the module docs.
///
/// # Errors
/// Only what the inner services return; refusals are WAHA-style responses.
pub async fn forward(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(local);
    };
    let manager = &state.manager;
    let Some(cred) = manager.peer_credential().cloned() else {
        return next.call(req).await.map(local);
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    let from_peer = match req.headers().get(peer::HEADER) {
        None => false,
        Some(value) => {
            let checked = value
                .to_str()
                .map_err(|_| peer::PeerAuthError::Malformed)
                .and_then(|v| cred.verify(v, req.method().as_str(), &path_and_query));
            match checked {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, path = req.path(), "refused a cluster credential");
                    return Ok(refuse(req, &ApiError::Unauthorized));
                }
            }
        }
    };
    if from_peer {
        req.extensions_mut().insert(FromPeer);
        crate::cluster::view::from_peer();
    }
    if !from_peer && req.method() == Method::GET && req.path() == "/api/sessions" {
        return list_sessions(req, next, &state).await;
    }
    let (named, body) = match named_session(&mut req).await {
        Ok(n) => n,
        Err(e) => return Ok(refuse(req, &e)),
    };
    let Some(Named { session, lifecycle }) = named else {
        return next.call(req).await.map(local);
    };
    let tick = manager.cluster_tick().unwrap_or(Duration::from_secs(2));
    let mut route = manager.route(&session);
    // In transit, or not running anywhere by the snapshot (it may have been started a
    // moment ago elsewhere): one read of its lease. Only sessions not running here and
    // not held by a live peer pay it — requests that fail or wait anyway.
    if matches!(route, Route::Moving | Route::Idle) && !from_peer {
        route = manager.route_fresh(&session).await;
    }
    match route {
        Route::Local => {
            if !lifecycle {
                manager.settle(&session, SETTLE_MAX).await;
            }
            next.call(req).await.map(local)
        }
        Route::Idle => next.call(req).await.map(local),
        // In transit; or a peer sent it here while this worker sees another owner (the
        // loop guard: never forwarded twice). Lifecycle and status routes are answered
        // from the database here; the rest waits for the session to land.
        Route::Moving if lifecycle => next.call(req).await.map(local),
        Route::Remote { .. } if from_peer && lifecycle => next.call(req).await.map(local),
        Route::Moving => Ok(moving(req, &session, tick)),
        Route::Remote { .. } if from_peer => Ok(moving(req, &session, tick)),
        Route::Remote { worker, url } => {
            let body = match body {
                Some(b) => b,
                None => match buffer_body(&mut req).await {
                    Ok(b) => b,
                    Err(e) => return Ok(refuse(req, &e)),
                },
            };
            let sent = tokio::select! {
                r = send(&req, &cred, &url, &path_and_query, body.clone()) => r,
                () = owner_lost(manager, &session, &worker, tick) => Err(Failure::Abandoned),
            };
            match sent {
                Ok(res) => {
                    crate::cluster::view::forwarded();
                    Ok(req.into_response(res))
                }
                Err(Failure::NotSent(e)) => {
                    tracing::info!(session, worker, error = %e, "owner unreachable; re-reading its lease");
                    // Never reached the owner, so it is safe to send elsewhere once.
                    match manager.route_fresh(&session).await {
                        Route::Remote { url: again, .. } if again != url => {
                            match send(&req, &cred, &again, &path_and_query, body).await {
                                Ok(res) => {
                                    crate::cluster::view::forwarded();
                                    Ok(req.into_response(res))
                                }
                                Err(_) => Ok(moving(req, &session, tick)),
                            }
                        }
                        Route::Local | Route::Idle => next.call(req).await.map(local),
                        Route::Remote { .. } | Route::Moving => Ok(moving(req, &session, tick)),
                    }
                }
                Err(Failure::Abandoned) => {
                    tracing::warn!(
                        session,
                        worker,
                        "the owner lost the session while a forwarded request waited"
                    );
                    let mut res = refuse(req, &ApiError::owner_failed(&session));
                    retry_after(res.response_mut(), tick);
                    Ok(res)
                }
                Err(Failure::Sent(e)) => {
                    tracing::warn!(session, worker, error = %e, "forwarded request failed");
                    let mut res = refuse(req, &ApiError::owner_failed(&session));
                    // Most often the owner is going away: the session will have moved.
                    retry_after(res.response_mut(), tick);
                    Ok(res)
                }
            }
        }
    }
}

/// Resolves once `worker` no longer holds `session` by the routing snapshot (its lease
/// ran out, it died): a frozen or cut-off owner would otherwise hold the request for the
/// whole [`FORWARD_TIMEOUT`]. Checked every lease-loop tick.
async fn owner_lost(
    manager: &crate::sessions::SessionManager,
    session: &str,
    worker: &str,
    tick: Duration,
) {
    loop {
        tokio::time::sleep(tick).await;
        match manager.route(session) {
            Route::Remote { worker: w, .. } if w == worker => {}
            Route::Local | Route::Remote { .. } | Route::Moving | Route::Idle => return,
        }
    }
}

/// Why a forwarded request has no answer.
enum Failure {
    /// The owner lost the session while the request waited for its answer.
    Abandoned,
    /// It never reached the peer (connection refused, connect timeout).
    NotSent(reqwest::Error),
    /// It may have been handled (timeout, broken connection).
    Sent(reqwest::Error),
}

/// Sends `req` to the peer at `base` and converts its answer.
async fn send(
    req: &ServiceRequest,
    cred: &peer::PeerCredential,
    base: &str,
    path_and_query: &str,
    body: web::Bytes,
) -> Result<HttpResponse, Failure> {
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut out = CLIENT.request(method, format!("{base}{path_and_query}"));
    for (name, value) in req.headers() {
        if !hop_by_hop(name.as_str()) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    out = out.header(
        peer::HEADER,
        cred.sign(req.method().as_str(), path_and_query),
    );
    if !body.is_empty() {
        out = out.body(body);
    }
    let res = out.send().await.map_err(|e| {
        if e.is_connect() {
            Failure::NotSent(e)
        } else {
            Failure::Sent(e)
        }
    })?;
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    let mut answer = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if !hop_by_hop(name.as_str()) {
            answer.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let bytes = res.bytes().await.map_err(Failure::Sent)?;
    Ok(answer.body(bytes))
}

/// `GET /api/sessions`: this worker's list (all sessions, as its handler answers with
/// `all=true`), in which each session that runs on another worker is replaced by the
/// entry of that worker's own list; wanted sessions not running anywhere yet show
/// `STARTING`. Without `all`, `STOPPED` ones are then left out, as the handler does.
async fn list_sessions(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: &AppState,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let pairs: Vec<(String, String)> =
        web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default();
    let all = match pairs.iter().rev().find(|(k, _)| k == "all") {
        None => false,
        Some((_, v)) if v == "true" => true,
        Some((_, v)) if v == "false" => false,
        // Let the handler answer its 400.
        Some(_) => return next.call(req).await.map(local),
    };
    // Judged on the leases as they are now, not as the last lease-loop tick saw them.
    state.manager.refresh_routes().await;
    let peers = state.manager.peers();
    // Ask the peers first (their running sessions), concurrently.
    let peer_lists = futures_util::future::join_all(peers.iter().map(|(id, url)| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(k, _)| k != "all") {
            query.append_pair(k, v);
        }
        let pq = format!("/api/sessions?{}", query.finish());
        let cred = state.manager.peer_credential().cloned();
        let mut out = CLIENT.get(format!("{url}{pq}")).timeout(LIST_TIMEOUT);
        for (name, value) in req.headers() {
            if !hop_by_hop(name.as_str()) {
                out = out.header(name.as_str(), value.as_bytes());
            }
        }
        if let Some(cred) = cred {
            out = out.header(peer::HEADER, cred.sign("GET", &pq));
        }
        async move {
            let res = out.send().await.ok()?;
            if !res.status().is_success() {
                return None;
            }
            let list: Vec<serde_json::Value> = res.json().await.ok()?;
            Some((id.clone(), list))
        }
    }))
    .await;
    // This worker's answer with every session.
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "all") {
        query.append_pair(k, v);
    }
    query.append_pair("all", "true");
    let pq = format!("{}?{}", req.path(), query.finish());
    if let Ok(uri) = pq.parse::<actix_web::http::Uri>() {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
    let res = next.call(req).await?;
    if !res.status().is_success() {
        return Ok(local(res));
    }
    let (request, response) = res.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(response.into_body()).await else {
        return Ok(ServiceResponse::new(
            request,
            actix_web::ResponseError::error_response(&ApiError::Internal(
                "cannot read the sessions list".into(),
            )),
        ));
    };
    let mut mine: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap_or_default();
    for entry in &mut mine {
        let Some(name) = entry
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string)
        else {
            continue;
        };
        match state.manager.route(&name) {
            Route::Remote { worker, .. } => {
                let theirs = peer_lists
                    .iter()
                    .flatten()
                    .filter(|(id, _)| *id == worker)
                    .flat_map(|(_, list)| list.iter())
                    .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name.as_str()));
                match theirs {
                    Some(theirs) => *entry = theirs.clone(),
                    None => entry["status"] = "STARTING".into(),
                }
            }
            Route::Moving => entry["status"] = "STARTING".into(),
            Route::Local | Route::Idle => {}
        }
    }
    if !all {
        mine.retain(|e| e.get("status").and_then(|s| s.as_str()) != Some("STOPPED"));
    }
    let response = HttpResponse::Ok().json(mine);
    Ok(ServiceResponse::new(request, response))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_session_is_read_from_the_body_as_the_handlers_read_it() {
        let json = TestRequest::default()
            .insert_header(("content-type", "application/json"))
            .to_srv_request();
        let s = |body: &str, field| body_session(&json, body.as_bytes(), field);
        assert_eq!(
            s(r#"{"session":"a","text":"x"}"#, "session").as_deref(),
            Some("a")
        );
        assert_eq!(s(r#"{"text":"x"}"#, "session").as_deref(), Some("default"));
        assert_eq!(
            s(r#"{"session":""}"#, "session").as_deref(),
            Some("default")
        );
        assert_eq!(
            s(r#"{"name":"n","session":"a"}"#, "name").as_deref(),
            Some("n")
        );
        // Not a string, not JSON: the handler answers (here, no forwarding).
        assert_eq!(s(r#"{"session":1}"#, "session"), None);
        assert_eq!(s("{", "session"), None);
        // Another content type: the handlers see `{}`.
        let text = TestRequest::default()
            .insert_header(("content-type", "text/plain"))
            .to_srv_request();
        assert_eq!(
            body_session(&text, br#"{"session":"a"}"#, "session").as_deref(),
            Some("default")
        );
        assert_eq!(
            crate::api::auth::query_session("a=1&session=x&session="),
            "x"
        );
        assert_eq!(crate::api::auth::query_session(""), "default");
    }

    #[test]
    fn hop_by_hop_and_the_peer_header_are_not_forwarded() {
        for h in [
            "connection",
            "transfer-encoding",
            "host",
            "content-length",
            peer::HEADER,
        ] {
            assert!(hop_by_hop(h), "{h}");
        }
        for h in ["x-api-key", "authorization", "content-type", "accept"] {
            assert!(!hop_by_hop(h), "{h}");
        }
        assert!(is_lifecycle("/api/sessions/{session}/stop"));
        assert!(!is_lifecycle("/api/{session}/auth/qr"));
    }
}
