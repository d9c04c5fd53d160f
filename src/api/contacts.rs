//! `👤 Contacts`: `GET /api/contacts/check-exists`, the contact reads and changes
//! (`/api/contacts/all|about|profile-picture|block|unblock`, `/api/contacts?contactId=`,
//! `/api/{session}/contacts/{id}`) and the LID map (`/api/{session}/lids…`), waha.md
//! §4.1 and §4.5. Thin handlers over `sessions::contacts`; the LID routes are in
//! [`super::lids`].

use actix_web::{HttpResponse, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, AppState, HasSession, Working, WorkingBody, WorkingQuery,
    chats::{SortOrderParam, count},
};
use crate::{
    model::{
        contacts::{
            ContactAbout, ContactProfilePicture, ContactRequest, ContactUpdateBody, contact_id,
        },
        groups::ResultResponse,
    },
    store::{ContactQuery, ContactSortBy, SortOrder},
};

/// Query of `check-exists`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckExistsQuery {
    /// The phone number to check
    pub phone: String,
    /// Session name.
    pub session: String,
}

impl HasSession for CheckExistsQuery {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

/// `WANumberExistResult`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WANumberExistResult {
    /// Chat id for the phone number (absent when it does not exist).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Whether the number has WhatsApp.
    pub number_exists: bool,
}

/// Check phone number is registered in WhatsApp.
#[utoipa::path(
    operation_id = "ContactsController_checkExists",
    tag = "👤 Contacts",
    params(CheckExistsQuery),
    responses((status = 200, description = "", body = WANumberExistResult)),
    security(("api_key" = []))
)]
#[get("/api/contacts/check-exists")]
pub async fn check_exists(
    state: web::Data<AppState>,
    req: WorkingQuery<CheckExistsQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: q } = req;
    let phone: String = q
        .phone
        .split('@')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if phone.len() < 5 {
        return Err(ApiError::Validation(vec![
            "phone must be a phone number in international format".into(),
        ]));
    }
    let chat_id = state.manager.lookup_phone(&working.engine, &phone).await?;
    Ok(HttpResponse::Ok().json(WANumberExistResult {
        number_exists: chat_id.is_some(),
        chat_id,
    }))
}

// ---------------------------------------------------------------------------------------
// Contacts (waha.md §4.5): reads answer from the session's contact store; `about` and the
// profile picture ask WhatsApp (the picture cached 24 h); block/unblock go to WhatsApp.

/// A user id from the API (bare digits → `@c.us`), else WAHA's 400.
fn user_id(field: &str, raw: &str) -> Result<String, ApiError> {
    contact_id(raw).ok_or_else(|| {
        ApiError::Validation(vec![format!(
            "{field} must be a WhatsApp user id like 11111111111@c.us (or the phone number), got {raw:?}"
        )])
    })
}

/// `sortBy` of `GET /api/contacts/all`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContactSortField {
    /// Contact id.
    Id,
    /// Contact name.
    Name,
}

/// Query of `GET /api/contacts/all`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct GetAllQuery {
    /// Session name.
    pub session: String,
    /// Sort by field
    #[param(inline)]
    pub sortBy: Option<ContactSortField>,
    /// Sort order - <b>desc</b>ending (Z => A, New first) or <b>asc</b>ending (A => Z, Old first)
    #[param(inline)]
    pub sortOrder: Option<SortOrderParam>,
    pub limit: Option<f64>,
    pub offset: Option<f64>,
}

impl HasSession for GetAllQuery {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

/// Query of `GET /api/contacts` and `/api/contacts/about`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct ContactQueryParams {
    #[param(example = "11111111111@c.us")]
    pub contactId: String,
    /// Session name.
    pub session: String,
}

impl HasSession for ContactQueryParams {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

/// Query of `GET /api/contacts/profile-picture`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct PictureQueryParams {
    #[param(example = "11111111111@c.us")]
    pub contactId: String,
    /// Refresh the picture from the server (24h cache by default). Do not refresh too often to avoid rate limit.
    #[param(default = false, example = false)]
    pub refresh: Option<bool>,
    /// Session name.
    pub session: String,
}

impl HasSession for PictureQueryParams {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

impl HasSession for ContactRequest {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

impl HasSession for ContactUpdateBody {}

/// Path of `/api/{session}/contacts/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ContactPath {
    /// Session name
    pub session: String,
    /// Contact ID
    #[param(example = "123456789@c.us")]
    pub id: String,
}

/// Path of `PUT /api/{session}/contacts/{chatId}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct ContactChatPath {
    /// Session name
    pub session: String,
    /// Chat ID
    #[param(example = "123456789@c.us")]
    pub chatId: String,
}

/// Get all contacts
#[utoipa::path(
    operation_id = "ContactsController_getAll",
    tag = "👤 Contacts",
    params(GetAllQuery),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/contacts/all")]
pub async fn get_all(
    state: web::Data<AppState>,
    req: WorkingQuery<GetAllQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: p } = req;
    let q = ContactQuery {
        limit: count("limit", p.limit)?,
        offset: count("offset", p.offset)?.unwrap_or(0),
        sort_by: match p.sortBy {
            Some(ContactSortField::Name) => ContactSortBy::Name,
            Some(ContactSortField::Id) | None => ContactSortBy::Id,
        },
        sort_order: match p.sortOrder {
            Some(SortOrderParam::Desc) => SortOrder::Desc,
            Some(SortOrderParam::Asc) | None => SortOrder::Asc,
        },
    };
    let list = state.manager.list_contacts(&working.name, &q).await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn one_contact(state: &AppState, session: &str, raw: &str) -> Result<HttpResponse, ApiError> {
    let id = user_id("contactId", raw)?;
    match state.manager.contact(session, &id).await? {
        Some(c) => Ok(HttpResponse::Ok().json(c)),
        None => Err(ApiError::contact_not_found()),
    }
}

/// Get contact basic info
#[utoipa::path(
    operation_id = "ContactsController_get",
    tag = "👤 Contacts",
    params(ContactQueryParams),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/contacts")]
pub async fn get_contact(
    state: web::Data<AppState>,
    req: WorkingQuery<ContactQueryParams>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: q } = req;
    one_contact(&state, &working.name, &q.contactId).await
}

/// Get contact basic info
#[utoipa::path(
    operation_id = "ContactsSessionController_get",
    tag = "👤 Contacts",
    params(ContactPath),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/{session}/contacts/{id}")]
pub async fn get_session_contact(
    state: web::Data<AppState>,
    path: web::Path<ContactPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    one_contact(&state, &working.name, &path.id).await
}

/// Create or update contact
///
/// The name is kept in the session's contact store (see README, "Differences from WAHA").
#[utoipa::path(
    operation_id = "ContactsSessionController_put",
    tag = "👤 Contacts",
    params(ContactChatPath),
    request_body = ContactUpdateBody,
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[put("/api/{session}/contacts/{chatId}")]
pub async fn put_contact(
    state: web::Data<AppState>,
    path: web::Path<ContactChatPath>,
    req: WorkingBody<ContactUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = user_id("chatId", &path.chatId)?;
    let name = format!("{} {}", body.first_name.trim(), body.last_name.trim());
    ApiError::require_text("firstName", name.trim())?;
    state
        .manager
        .save_contact_name(&working.engine, &id, (name.trim(), body.first_name.trim()))
        .await?;
    Ok(HttpResponse::Ok().json(ResultResponse { success: true }))
}

/// Gets the Contact's "about" info
#[utoipa::path(
    operation_id = "ContactsController_getAbout",
    tag = "👤 Contacts",
    params(ContactQueryParams),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/contacts/about")]
pub async fn get_about(
    state: web::Data<AppState>,
    req: WorkingQuery<ContactQueryParams>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: q } = req;
    let id = user_id("contactId", &q.contactId)?;
    let about = state.manager.contact_about(&working.engine, &id).await?;
    Ok(HttpResponse::Ok().json(ContactAbout { about }))
}

/// Get contact's profile picture URL
#[utoipa::path(
    operation_id = "ContactsController_getProfilePicture",
    tag = "👤 Contacts",
    params(PictureQueryParams),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/contacts/profile-picture")]
pub async fn get_profile_picture(
    state: web::Data<AppState>,
    req: WorkingQuery<PictureQueryParams>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: q } = req;
    let id = user_id("contactId", &q.contactId)?;
    let url = state
        .manager
        .contact_picture(&working.engine, &id, q.refresh.unwrap_or(false))
        .await?;
    Ok(HttpResponse::Ok().json(ContactProfilePicture {
        profile_picture_url: url,
    }))
}

async fn set_blocked(
    state: &AppState,
    req: WorkingBody<ContactRequest>,
    blocked: bool,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = user_id("contactId", &body.contact_id)?;
    state
        .manager
        .set_blocked(&working.engine, &id, blocked)
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Block contact
#[utoipa::path(
    operation_id = "ContactsController_block",
    tag = "👤 Contacts",
    request_body = ContactRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/contacts/block")]
pub async fn block(
    state: web::Data<AppState>,
    req: WorkingBody<ContactRequest>,
) -> Result<HttpResponse, ApiError> {
    set_blocked(&state, req, true).await
}

/// Unblock contact
#[utoipa::path(
    operation_id = "ContactsController_unblock",
    tag = "👤 Contacts",
    request_body = ContactRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/contacts/unblock")]
pub async fn unblock(
    state: web::Data<AppState>,
    req: WorkingBody<ContactRequest>,
) -> Result<HttpResponse, ApiError> {
    set_blocked(&state, req, false).await
}

/// Registers this tag's routes (the LID routes too: same tag).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(check_exists);
    cfg.service(get_all);
    cfg.service(get_about);
    cfg.service(get_profile_picture);
    cfg.service(get_contact);
    cfg.service(block);
    cfg.service(unblock);
    cfg.service(get_session_contact);
    cfg.service(put_contact);
    super::lids::routes(cfg);
}
