//! `👤 Contacts`: `GET /api/contacts/check-exists` (waha.md §4.5).

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, HasSession, WorkingQuery};

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
    let chat_id = state.manager.check_exists(&working.engine, &phone).await?;
    Ok(HttpResponse::Ok().json(WANumberExistResult {
        number_exists: chat_id.is_some(),
        chat_id,
    }))
}

/// Registers this tag's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(check_exists);
}
