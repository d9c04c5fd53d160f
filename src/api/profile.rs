//! `🆔 Profile`: `/api/{session}/profile…` (the session's own push name, "about" text and
//! picture), thin handlers over `sessions::profile`.
//!
//! Every route first requires a `WORKING` session (WAHA's 422 bodies), then valid input
//! (400 in class-validator's wording), then calls the domain. The PUT/DELETE routes
//! answer 200 `{"success": true}` as WAHA's spec says (`Result`).

use actix_web::{HttpResponse, delete, get, put, web};

use super::{ApiError, AppState, HasSession, Working, WorkingBody};
use crate::model::{
    groups::{ProfilePictureRequest, ResultResponse},
    profile::{MyProfile, ProfileNameRequest, ProfileStatusRequest},
};

impl HasSession for ProfileNameRequest {}
impl HasSession for ProfileStatusRequest {}

fn done() -> HttpResponse {
    HttpResponse::Ok().json(ResultResponse { success: true })
}

/// Get my profile
#[utoipa::path(
    operation_id = "ProfileController_getMyProfile",
    tag = "🆔 Profile",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = MyProfile)),
    security(("api_key" = []))
)]
#[get("/api/{session}/profile")]
pub async fn get_my_profile(
    state: web::Data<AppState>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let p = state.manager.own_profile(&working.engine).await?;
    Ok(HttpResponse::Ok().json(MyProfile {
        id: p.id,
        picture: p.picture,
        name: p.name,
    }))
}

/// Set my profile name
#[utoipa::path(
    operation_id = "ProfileController_setProfileName",
    tag = "🆔 Profile",
    params(("session" = String, Path, description = "Session name")),
    request_body = ProfileNameRequest,
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[put("/api/{session}/profile/name")]
pub async fn set_profile_name(
    state: web::Data<AppState>,
    req: WorkingBody<ProfileNameRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    ApiError::require_text("name", &body.name)?;
    state
        .manager
        .set_profile_name(&working.engine, &body.name)
        .await?;
    Ok(done())
}

/// Set profile status (About)
#[utoipa::path(
    operation_id = "ProfileController_setProfileStatus",
    tag = "🆔 Profile",
    params(("session" = String, Path, description = "Session name")),
    request_body = ProfileStatusRequest,
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[put("/api/{session}/profile/status")]
pub async fn set_profile_status(
    state: web::Data<AppState>,
    req: WorkingBody<ProfileStatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    state
        .manager
        .set_profile_status(&working.engine, &body.status)
        .await?;
    Ok(done())
}

/// Set profile picture
#[utoipa::path(
    operation_id = "ProfileController_setProfilePicture",
    tag = "🆔 Profile",
    params(("session" = String, Path, description = "Session name")),
    request_body = ProfilePictureRequest,
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[put("/api/{session}/profile/picture")]
pub async fn set_profile_picture(
    state: web::Data<AppState>,
    req: WorkingBody<ProfilePictureRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    state
        .manager
        .set_profile_picture(&working.engine, body.file)
        .await?;
    Ok(done())
}

/// Delete profile picture
#[utoipa::path(
    operation_id = "ProfileController_deleteProfilePicture",
    tag = "🆔 Profile",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[delete("/api/{session}/profile/picture")]
pub async fn delete_profile_picture(
    state: web::Data<AppState>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    state
        .manager
        .delete_profile_picture(&working.engine)
        .await?;
    Ok(done())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_my_profile)
        .service(set_profile_name)
        .service(set_profile_status)
        .service(set_profile_picture)
        .service(delete_profile_picture);
}
