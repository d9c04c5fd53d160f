//! `👤 Contacts` — the LID map: `GET /api/{session}/lids` (paged), `lids/count`,
//! `lids/{lid}` and `lids/pn/{phoneNumber}` (waha.md §4.1). Thin handlers over
//! `sessions::contacts`; registered by [`super::contacts::routes`] (same tag), `count`
//! before `{lid}` so the literal wins.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, AppState, HasSession, WorkingQuery, chats::count};
use crate::model::{
    contacts::{LidToPhoneNumber, lid_id, phone_id},
    groups::CountResponse,
};

/// Paging of `GET /api/{session}/lids`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LidsQuery {
    #[param(default = 100)]
    pub limit: Option<f64>,
    #[param(default = 0)]
    pub offset: Option<f64>,
}

impl HasSession for LidsQuery {}

/// Path of `lids/{lid}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct LidPath {
    /// Session name
    pub session: String,
    pub lid: String,
}

/// Path of `lids/pn/{phoneNumber}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct PnPath {
    /// Session name
    pub session: String,
    pub phoneNumber: String,
}

/// Get all known lids to phone number mapping
#[utoipa::path(
    operation_id = "LidsController_getAll",
    tag = "👤 Contacts",
    params(("session" = String, Path, description = "Session name"), LidsQuery),
    responses((status = 200, description = "", body = Vec<LidToPhoneNumber>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/lids")]
pub async fn get_all(
    state: web::Data<AppState>,
    req: WorkingQuery<LidsQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: q } = req;
    let limit = count("limit", q.limit)?.unwrap_or(100);
    let offset = count("offset", q.offset)?.unwrap_or(0);
    let list = state
        .manager
        .list_lids(&working.name, Some(limit), offset)
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Get the number of known lids
#[utoipa::path(
    operation_id = "LidsController_getLidsCount",
    tag = "👤 Contacts",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = CountResponse)),
    security(("api_key" = []))
)]
#[get("/api/{session}/lids/count")]
pub async fn get_count(
    state: web::Data<AppState>,
    working: super::Working,
) -> Result<HttpResponse, ApiError> {
    let count = state.manager.count_lids(&working.name).await?;
    Ok(HttpResponse::Ok().json(CountResponse { count }))
}

/// Get phone number by lid
#[utoipa::path(
    operation_id = "LidsController_findPNByLid",
    tag = "👤 Contacts",
    params(LidPath),
    responses((status = 200, description = "", body = LidToPhoneNumber)),
    security(("api_key" = []))
)]
#[get("/api/{session}/lids/{lid}")]
pub async fn by_lid(
    state: web::Data<AppState>,
    path: web::Path<LidPath>,
    working: super::Working,
) -> Result<HttpResponse, ApiError> {
    let lid = lid_id(&path.lid).ok_or_else(|| {
        ApiError::Validation(vec![format!(
            "lid must be a LID like 1111111@lid, got {:?}",
            path.lid
        )])
    })?;
    let pair = state.manager.pn_of_lid(&working.name, &lid).await?;
    Ok(HttpResponse::Ok().json(pair))
}

/// Get lid by phone number (chat id)
#[utoipa::path(
    operation_id = "LidsController_findLIDByPhoneNumber",
    tag = "👤 Contacts",
    params(PnPath),
    responses((status = 200, description = "", body = LidToPhoneNumber)),
    security(("api_key" = []))
)]
#[get("/api/{session}/lids/pn/{phoneNumber}")]
pub async fn by_pn(
    state: web::Data<AppState>,
    path: web::Path<PnPath>,
    working: super::Working,
) -> Result<HttpResponse, ApiError> {
    let pn = phone_id(&path.phoneNumber).ok_or_else(|| {
        ApiError::Validation(vec![format!(
            "phoneNumber must be a phone number like 3333333 or 3333333@c.us, got {:?}",
            path.phoneNumber
        )])
    })?;
    let pair = state.manager.lid_of_pn(&working.name, &pn).await?;
    Ok(HttpResponse::Ok().json(pair))
}

/// Registers the LID routes (`count` and `pn/…` before `{lid}`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_all);
    cfg.service(get_count);
    cfg.service(by_pn);
    cfg.service(by_lid);
}
