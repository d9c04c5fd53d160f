//! `📞 Calls`: `POST /api/{session}/calls/reject`, a thin handler over `sessions::calls`.
//! The call events (`call.received`, `call.accepted`, `call.rejected`) come from the
//! session's inbox, not from here.
//!
//! The route first requires a `WORKING` session (WAHA's 422 bodies), then valid input
//! (400 in class-validator's wording), and answers 201 with an empty body (NestJS).

use actix_web::{HttpResponse, post, web};

use super::{ApiError, AppState, HasSession, WorkingBody};
use crate::model::profile::RejectCallRequest;

impl HasSession for RejectCallRequest {}

/// Reject incoming call
#[utoipa::path(
    operation_id = "CallsController_rejectCall",
    tag = "📞 Calls",
    params(("session" = String, Path, description = "Session name")),
    request_body = RejectCallRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/calls/reject")]
pub async fn reject_call(
    state: web::Data<AppState>,
    req: WorkingBody<RejectCallRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    ApiError::require_text("from", &body.from)?;
    ApiError::require_text("id", &body.id)?;
    state
        .manager
        .reject_call(&working.engine, body.from.trim(), body.id.trim())
        .await?;
    Ok(HttpResponse::Created().finish())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(reject_call);
}
