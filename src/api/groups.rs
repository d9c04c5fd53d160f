//! `👥 Groups`: `/api/{session}/groups…` (waha.md §4.6), thin handlers over
//! `sessions::groups`.
//!
//! Every route first requires a `WORKING` session (WAHA's 422 bodies), then valid input
//! (400 in class-validator's wording: a group id that is not `…@g.us`, an empty or
//! malformed participant list), then calls the domain. Reads (`GET /groups`, `count`, one
//! group, its participants and settings) answer from the session's group cache; changes
//! go to WhatsApp, and WhatsApp's refusals come back as clear 4xx (`api/error.rs`). Like
//! NestJS, every POST answers 201 and a handler without a result answers an empty body.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    ApiError, AppState, HasSession, Working, WorkingBody, WorkingQuery,
    chats::{SortOrderParam, count},
};
use crate::{
    engine::groups::{ParticipantAction, Setting},
    model::groups::{
        ChatPictureResponse, CountResponse, CreateGroupRequest, DescriptionRequest, GroupInfo,
        GroupJoinRequest, GroupJoinRequestResult, GroupParticipant, GroupSortBy, JoinGroupRequest,
        JoinGroupResponse, Participant, ParticipantsRequest, ProfilePictureRequest, ResultResponse,
        SettingsMemberAddMode, SettingsMemberShareHistoryMode, SettingsMembershipApproval,
        SettingsSecurityChangeInfo, SubjectRequest, is_group_id, is_member_id,
    },
    store::{GroupQuery, GroupSortBy as StoreSortBy, SortOrder},
};

/// The `{session}` and `{id}` of a group route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    /// Session name
    pub session: String,
    /// Group ID
    #[param(example = "123123123@g.us")]
    pub id: String,
}

/// Query of `GET /api/{session}/groups`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct GetGroupsQuery {
    /// Sort by field
    #[param(inline)]
    pub sortBy: Option<GroupSortBy>,
    /// Sort order - <b>desc</b>ending (Z => A, New first) or <b>asc</b>ending (A => Z, Old first)
    #[param(inline)]
    pub sortOrder: Option<SortOrderParam>,
    /// Page size.
    pub limit: Option<f64>,
    /// Skip this many.
    pub offset: Option<f64>,
    /// Exclude fields: `participants`
    pub exclude: Option<Vec<String>>,
}

/// Query of `GET /api/{session}/groups/join-info`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JoinInfoQuery {
    /// Group code (123) or url (https://chat.whatsapp.com/123)
    #[param(example = "https://chat.whatsapp.com/1234567890abcdef")]
    pub code: String,
}

/// Query of `GET /api/{session}/groups/{id}/picture`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PictureQuery {
    /// Refresh the picture from the server (24h cache by default). Wharf always asks
    /// WhatsApp.
    #[param(default = false, example = false)]
    pub refresh: Option<bool>,
}

impl HasSession for GetGroupsQuery {}
impl HasSession for JoinInfoQuery {}
impl HasSession for PictureQuery {}
impl HasSession for CreateGroupRequest {}
impl HasSession for ParticipantsRequest {}
impl HasSession for JoinGroupRequest {}
impl HasSession for DescriptionRequest {}
impl HasSession for SubjectRequest {}
impl HasSession for SettingsSecurityChangeInfo {}
impl HasSession for MessagesAdminOnly {}
impl HasSession for SettingsMemberAddMode {}
impl HasSession for SettingsMemberShareHistoryMode {}
impl HasSession for SettingsMembershipApproval {}
impl HasSession for ProfilePictureRequest {}

/// The group id from the path, or class-validator's 400.
fn group_id(raw: &str) -> Result<&str, ApiError> {
    if is_group_id(raw) {
        Ok(raw)
    } else {
        Err(ApiError::Validation(vec![format!(
            "id must be a group id like 123123123@g.us, got {raw:?}"
        )]))
    }
}

/// The member ids of a request, or class-validator's 400 (empty list, malformed id).
fn member_ids(participants: &[Participant]) -> Result<Vec<String>, ApiError> {
    if participants.is_empty() {
        return Err(ApiError::Validation(vec![
            "participants should not be empty".into(),
        ]));
    }
    let bad: Vec<String> = participants
        .iter()
        .enumerate()
        .filter(|(_, p)| !is_member_id(p.id.trim()))
        .map(|(i, p)| {
            format!(
                "participants.{i}.id must be a WhatsApp user id like 123456789@c.us, got {:?}",
                p.id
            )
        })
        .collect();
    if bad.is_empty() {
        Ok(participants
            .iter()
            .map(|p| p.id.trim().to_string())
            .collect())
    } else {
        Err(ApiError::Validation(bad))
    }
}

/// Nest sends a returned string as is (`text/html`), not as a JSON string.
fn text(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// Create a new group.
#[utoipa::path(
    operation_id = "GroupsController_createGroup",
    tag = "👥 Groups",
    params(("session" = String, Path, description = "Session name")),
    request_body = CreateGroupRequest,
    responses((status = 201, description = "", body = GroupInfo)),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups")]
pub async fn create_group(
    state: web::Data<AppState>,
    req: WorkingBody<CreateGroupRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    ApiError::require_text("name", &body.name)?;
    let members = member_ids(&body.participants)?;
    let group = state
        .manager
        .create_group(&working.engine, &body.name, &members)
        .await?;
    Ok(HttpResponse::Created().json(group.info()))
}

/// Get all groups (from the session's group cache; `POST …/groups/refresh` re-reads
/// WhatsApp).
#[utoipa::path(
    operation_id = "GroupsController_getGroups",
    tag = "👥 Groups",
    params(("session" = String, Path, description = "Session name"), GetGroupsQuery),
    responses((status = 200, description = "", body = Vec<GroupInfo>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups")]
pub async fn get_groups(
    state: web::Data<AppState>,
    req: WorkingQuery<GetGroupsQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: p } = req;
    let mut without_participants = false;
    for field in p.exclude.unwrap_or_default() {
        match field.as_str() {
            "participants" => without_participants = true,
            "" => {}
            _ => {
                return Err(ApiError::Validation(vec![
                    "each value in exclude must be one of the following values: , participants"
                        .into(),
                ]));
            }
        }
    }
    let q = GroupQuery {
        limit: count("limit", p.limit)?,
        offset: count("offset", p.offset)?.unwrap_or(0),
        sort_by: match p.sortBy {
            Some(GroupSortBy::Subject) => StoreSortBy::Subject,
            Some(GroupSortBy::Id) | None => StoreSortBy::Id,
        },
        sort_order: match p.sortOrder {
            Some(SortOrderParam::Desc) => SortOrder::Desc,
            Some(SortOrderParam::Asc) | None => SortOrder::Asc,
        },
    };
    let groups = state.manager.list_groups(&working.name, &q).await?;
    let body: Vec<GroupInfo> = groups
        .iter()
        .map(|g| {
            let mut info = g.info();
            if without_participants {
                info.participants = None;
            }
            info
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Get the number of groups (in the session's group cache).
#[utoipa::path(
    operation_id = "GroupsController_getGroupsCount",
    tag = "👥 Groups",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = CountResponse)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/count")]
pub async fn get_groups_count(
    state: web::Data<AppState>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let count = state.manager.count_groups(&working.name).await?;
    Ok(HttpResponse::Ok().json(CountResponse { count }))
}

/// Refresh groups from the server.
#[utoipa::path(
    operation_id = "GroupsController_refreshGroups",
    tag = "👥 Groups",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/refresh")]
pub async fn refresh_groups(
    state: web::Data<AppState>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    state.manager.refresh_groups(&working.engine).await?;
    Ok(HttpResponse::Created().json(ResultResponse { success: true }))
}

/// Get info about the group before joining.
#[utoipa::path(
    operation_id = "GroupsController_joinInfoGroup",
    tag = "👥 Groups",
    params(("session" = String, Path, description = "Session name"), JoinInfoQuery),
    responses((status = 200, description = "", body = GroupInfo)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/join-info")]
pub async fn join_info_group(
    state: web::Data<AppState>,
    req: WorkingQuery<JoinInfoQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query } = req;
    ApiError::require_text("code", &query.code)?;
    let group = state
        .manager
        .group_join_info(&working.engine, &query.code)
        .await?;
    Ok(HttpResponse::Ok().json(group.info()))
}

/// Join group via code
#[utoipa::path(
    operation_id = "GroupsController_joinGroup",
    tag = "👥 Groups",
    params(("session" = String, Path, description = "Session name")),
    request_body = JoinGroupRequest,
    responses((status = 200, description = "", body = JoinGroupResponse)),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/join")]
pub async fn join_group(
    state: web::Data<AppState>,
    req: WorkingBody<JoinGroupRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    ApiError::require_text("code", &body.code)?;
    let id = state
        .manager
        .join_group(&working.engine, &body.code)
        .await?;
    Ok(HttpResponse::Created().json(JoinGroupResponse { id }))
}

/// Get the group.
#[utoipa::path(
    operation_id = "GroupsController_getGroup",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = GroupInfo)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}")]
pub async fn get_group(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    let group = state.manager.group(&working.engine, id).await?;
    Ok(HttpResponse::Ok().json(group.info()))
}

/// Delete the group: removes every other member, then leaves (WhatsApp ends a group with
/// its last member; there is no "delete for everyone"). Admins only.
#[utoipa::path(
    operation_id = "GroupsController_deleteGroup",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/{session}/groups/{id}")]
pub async fn delete_group(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    state.manager.delete_group(&working.engine, id).await?;
    Ok(HttpResponse::Ok().finish())
}

/// Leave the group.
#[utoipa::path(
    operation_id = "GroupsController_leaveGroup",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/leave")]
pub async fn leave_group(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    state.manager.leave_group(&working.engine, id).await?;
    Ok(HttpResponse::Created().finish())
}

/// Get group picture
#[utoipa::path(
    operation_id = "GroupsController_getChatPicture",
    tag = "👥 Groups",
    params(GroupPath, PictureQuery),
    responses((status = 200, description = "", body = ChatPictureResponse)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/picture")]
pub async fn get_chat_picture(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingQuery<PictureQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    let url = state.manager.group_picture(&req.working.engine, id).await?;
    Ok(HttpResponse::Ok().json(ChatPictureResponse { url }))
}

/// Set group picture
#[utoipa::path(
    operation_id = "GroupsController_setPicture",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = ProfilePictureRequest,
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/picture")]
pub async fn set_picture(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<ProfilePictureRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = group_id(&path.id)?;
    state
        .manager
        .set_group_picture(&working.engine, id, body.file)
        .await?;
    Ok(HttpResponse::Ok().json(ResultResponse { success: true }))
}

/// Delete group picture
#[utoipa::path(
    operation_id = "GroupsController_deletePicture",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = ResultResponse)),
    security(("api_key" = []))
)]
#[delete("/api/{session}/groups/{id}/picture")]
pub async fn delete_picture(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    state
        .manager
        .delete_group_picture(&working.engine, id)
        .await?;
    Ok(HttpResponse::Ok().json(ResultResponse { success: true }))
}

/// Updates the group description.
#[utoipa::path(
    operation_id = "GroupsController_setDescription",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = DescriptionRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/description")]
pub async fn set_description(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<DescriptionRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = group_id(&path.id)?;
    state
        .manager
        .set_group_description(&working.engine, id, &body.description)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

/// Updates the group subject
#[utoipa::path(
    operation_id = "GroupsController_setSubject",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = SubjectRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/subject")]
pub async fn set_subject(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<SubjectRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = group_id(&path.id)?;
    ApiError::require_text("subject", &body.subject)?;
    state
        .manager
        .set_group_subject(&working.engine, id, &body.subject)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

/// The body of one `settings/security/*` route, in terms of "only admins may".
trait SettingBody: Sized + serde::Serialize {
    /// Which setting the route is about.
    const SETTING: Setting;
    /// The body for "only admins" = `admins_only`.
    fn from_admins_only(admins_only: bool) -> Self;
    /// Whether the body means "only admins".
    fn admins_only(&self) -> bool;
}

macro_rules! setting_body {
    ($($ty:ident => $setting:ident, |$b:ident| $get:expr, |$a:ident| $make:expr;)*) => {$(
        impl SettingBody for $ty {
            const SETTING: Setting = Setting::$setting;
            fn from_admins_only($a: bool) -> Self {
                $make
            }
            fn admins_only(&self) -> bool {
                let $b = self;
                $get
            }
        }
    )*};
}

// WAHA's newer bodies say what members may (the inverse of "only admins"), or whether
// approval is required (admins approve).
setting_body! {
    SettingsSecurityChangeInfo => InfoAdminOnly, |b| b.admins_only, |a| Self { admins_only: a };
    SettingsMemberAddMode => MemberAddAdminOnly, |b| !b.members_can_add_new_member, |a| Self { members_can_add_new_member: !a };
    SettingsMemberShareHistoryMode => ShareHistoryAdminOnly, |b| !b.members_can_share_history, |a| Self { members_can_share_history: !a };
    SettingsMembershipApproval => MembershipApproval, |b| b.new_members_approval_required, |a| Self { new_members_approval_required: a };
}

/// `messages-admin-only` shares `SettingsSecurityChangeInfo` with `info-admin-only`.
#[derive(serde::Serialize, Deserialize)]
#[serde(transparent)]
struct MessagesAdminOnly(SettingsSecurityChangeInfo);

setting_body! {
    MessagesAdminOnly => MessagesAdminOnly, |b| b.0.admins_only, |a| Self(SettingsSecurityChangeInfo { admins_only: a });
}

async fn get_setting<T: SettingBody>(
    state: &AppState,
    id: &str,
    working: &Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(id)?;
    let admins_only = state
        .manager
        .group_setting(&working.engine, id, T::SETTING)
        .await?;
    Ok(HttpResponse::Ok().json(T::from_admins_only(admins_only)))
}

async fn set_setting<T: SettingBody>(
    state: &AppState,
    id: &str,
    req: WorkingBody<T>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = group_id(id)?;
    state
        .manager
        .set_group_setting(&working.engine, id, T::SETTING, body.admins_only())
        .await?;
    Ok(HttpResponse::Ok().finish())
}

/// Get the group's 'info admin only' settings.
#[utoipa::path(
    operation_id = "GroupsController_getInfoAdminOnly",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = SettingsSecurityChangeInfo)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/settings/security/info-admin-only")]
pub async fn get_info_admin_only(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    get_setting::<SettingsSecurityChangeInfo>(&state, &path.id, &working).await
}

/// Updates the group "info admin only" settings.
#[utoipa::path(
    operation_id = "GroupsController_setInfoAdminOnly",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = SettingsSecurityChangeInfo,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/settings/security/info-admin-only")]
pub async fn set_info_admin_only(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<SettingsSecurityChangeInfo>,
) -> Result<HttpResponse, ApiError> {
    set_setting(&state, &path.id, req).await
}

/// Get settings - who can send messages
#[utoipa::path(
    operation_id = "GroupsController_getMessagesAdminOnly",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = SettingsSecurityChangeInfo)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/settings/security/messages-admin-only")]
pub async fn get_messages_admin_only(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    get_setting::<MessagesAdminOnly>(&state, &path.id, &working).await
}

/// Update settings - who can send messages
#[utoipa::path(
    operation_id = "GroupsController_setMessagesAdminOnly",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = SettingsSecurityChangeInfo,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/settings/security/messages-admin-only")]
pub async fn set_messages_admin_only(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<MessagesAdminOnly>,
) -> Result<HttpResponse, ApiError> {
    set_setting(&state, &path.id, req).await
}

/// Get settings - who can add members (`adminsOnly`: only admins)
#[utoipa::path(
    operation_id = "GroupsController_getMemberAddMode",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = SettingsMemberAddMode)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/settings/security/member-add-mode")]
pub async fn get_member_add_mode(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    get_setting::<SettingsMemberAddMode>(&state, &path.id, &working).await
}

/// Update settings - who can add members
#[utoipa::path(
    operation_id = "GroupsController_setMemberAddMode",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = SettingsMemberAddMode,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/settings/security/member-add-mode")]
pub async fn set_member_add_mode(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<SettingsMemberAddMode>,
) -> Result<HttpResponse, ApiError> {
    set_setting(&state, &path.id, req).await
}

/// Get settings - who can share history with new members (`adminsOnly`: only admins)
#[utoipa::path(
    operation_id = "GroupsController_getMemberShareHistoryMode",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = SettingsMemberShareHistoryMode)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/settings/security/member-share-history-mode")]
pub async fn get_member_share_history_mode(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    get_setting::<SettingsMemberShareHistoryMode>(&state, &path.id, &working).await
}

/// Update settings - who can share history with new members
#[utoipa::path(
    operation_id = "GroupsController_setMemberShareHistoryMode",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = SettingsMemberShareHistoryMode,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/settings/security/member-share-history-mode")]
pub async fn set_member_share_history_mode(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<SettingsMemberShareHistoryMode>,
) -> Result<HttpResponse, ApiError> {
    set_setting(&state, &path.id, req).await
}

/// Get settings - whether admins approve new members (`adminsOnly`: approval required)
#[utoipa::path(
    operation_id = "GroupsController_getMembershipApproval",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = SettingsMembershipApproval)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/settings/security/membership-approval")]
pub async fn get_membership_approval(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    get_setting::<SettingsMembershipApproval>(&state, &path.id, &working).await
}

/// Update settings - whether admins approve new members
#[utoipa::path(
    operation_id = "GroupsController_setMembershipApproval",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = SettingsMembershipApproval,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/groups/{id}/settings/security/membership-approval")]
pub async fn set_membership_approval(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<SettingsMembershipApproval>,
) -> Result<HttpResponse, ApiError> {
    set_setting(&state, &path.id, req).await
}

/// Gets the invite code for the group.
#[utoipa::path(
    operation_id = "GroupsController_getInviteCode",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = String)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/invite-code")]
pub async fn get_invite_code(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    let url = state
        .manager
        .group_invite(&working.engine, id, false)
        .await?;
    Ok(text(actix_web::http::StatusCode::OK, url))
}

/// Invalidates the current group invite code and generates a new one.
#[utoipa::path(
    operation_id = "GroupsController_revokeInviteCode",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = String)),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/invite-code/revoke")]
pub async fn revoke_invite_code(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    let url = state
        .manager
        .group_invite(&working.engine, id, true)
        .await?;
    Ok(text(actix_web::http::StatusCode::CREATED, url))
}

async fn participants_of(
    state: &AppState,
    id: &str,
    working: &Working,
) -> Result<Vec<GroupParticipant>, ApiError> {
    let id = group_id(id)?;
    Ok(state.manager.group(&working.engine, id).await?.participants)
}

/// Get participants (wharf: the same `GroupParticipant` list as `participants/v2`).
#[utoipa::path(
    operation_id = "GroupsController_getParticipants",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = Vec<GroupParticipant>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/participants")]
pub async fn get_participants(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let body = participants_of(&state, &path.id, &working).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Get group participants.
#[utoipa::path(
    operation_id = "GroupsController_getGroupParticipants",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = Vec<GroupParticipant>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/participants/v2")]
pub async fn get_group_participants(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let body = participants_of(&state, &path.id, &working).await?;
    Ok(HttpResponse::Ok().json(body))
}

async fn change(
    state: &AppState,
    id: &str,
    req: WorkingBody<ParticipantsRequest>,
    action: ParticipantAction,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = group_id(id)?;
    let members = member_ids(&body.participants)?;
    let results = state
        .manager
        .change_participants(&working.engine, id, action, &members)
        .await?;
    Ok(HttpResponse::Created().json(results))
}

/// Add participants
#[utoipa::path(
    operation_id = "GroupsController_addParticipants",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = ParticipantsRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/participants/add")]
pub async fn add_participants(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<ParticipantsRequest>,
) -> Result<HttpResponse, ApiError> {
    change(&state, &path.id, req, ParticipantAction::Add).await
}

/// Remove participants
#[utoipa::path(
    operation_id = "GroupsController_removeParticipants",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = ParticipantsRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/participants/remove")]
pub async fn remove_participants(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<ParticipantsRequest>,
) -> Result<HttpResponse, ApiError> {
    change(&state, &path.id, req, ParticipantAction::Remove).await
}

/// Promote participants to admin users.
#[utoipa::path(
    operation_id = "GroupsController_promoteToAdmin",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = ParticipantsRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/admin/promote")]
pub async fn promote_to_admin(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<ParticipantsRequest>,
) -> Result<HttpResponse, ApiError> {
    change(&state, &path.id, req, ParticipantAction::Promote).await
}

/// Demotes participants to regular users.
#[utoipa::path(
    operation_id = "GroupsController_demoteToAdmin",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = ParticipantsRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/admin/demote")]
pub async fn demote_to_admin(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<ParticipantsRequest>,
) -> Result<HttpResponse, ApiError> {
    change(&state, &path.id, req, ParticipantAction::Demote).await
}

/// Get the pending requests to join the group.
#[utoipa::path(
    operation_id = "GroupsController_getJoinRequests",
    tag = "👥 Groups",
    params(GroupPath),
    responses((status = 200, description = "", body = Vec<GroupJoinRequest>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/groups/{id}/participants/join-requests")]
pub async fn get_join_requests(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.id)?;
    let requests = state
        .manager
        .group_join_requests(&working.engine, id)
        .await?;
    Ok(HttpResponse::Ok().json(requests))
}

async fn answer(
    state: &AppState,
    id: &str,
    req: WorkingBody<ParticipantsRequest>,
    approve: bool,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let id = group_id(id)?;
    let members = member_ids(&body.participants)?;
    let results: Vec<GroupJoinRequestResult> = state
        .manager
        .answer_join_requests(&working.engine, id, &members, approve)
        .await?
        .into_iter()
        .map(|r| GroupJoinRequestResult {
            success: r.error.is_none(),
            error: r.error.and_then(|e| e.parse().ok()),
            requester_id: r.id,
        })
        .collect();
    Ok(HttpResponse::Created().json(results))
}

/// Approve requests to join the group.
#[utoipa::path(
    operation_id = "GroupsController_approveJoinRequests",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = ParticipantsRequest,
    responses((status = 201, description = "", body = Vec<GroupJoinRequestResult>)),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/participants/join-requests/approve")]
pub async fn approve_join_requests(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<ParticipantsRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &path.id, req, true).await
}

/// Reject requests to join the group.
#[utoipa::path(
    operation_id = "GroupsController_rejectJoinRequests",
    tag = "👥 Groups",
    params(GroupPath),
    request_body = ParticipantsRequest,
    responses((status = 201, description = "", body = Vec<GroupJoinRequestResult>)),
    security(("api_key" = []))
)]
#[post("/api/{session}/groups/{id}/participants/join-requests/reject")]
pub async fn reject_join_requests(
    state: web::Data<AppState>,
    path: web::Path<GroupPath>,
    req: WorkingBody<ParticipantsRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &path.id, req, false).await
}

/// Registers this tag's routes: the literal `/groups/…` segments (`count`, `join-info`,
/// `join`, `refresh`) before `/groups/{id}`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_groups)
        .service(create_group)
        .service(get_groups_count)
        .service(refresh_groups)
        .service(join_info_group)
        .service(join_group)
        .service(get_group)
        .service(delete_group)
        .service(leave_group)
        .service(get_chat_picture)
        .service(set_picture)
        .service(delete_picture)
        .service(set_description)
        .service(set_subject)
        .service(get_info_admin_only)
        .service(set_info_admin_only)
        .service(get_messages_admin_only)
        .service(set_messages_admin_only)
        .service(get_member_add_mode)
        .service(set_member_add_mode)
        .service(get_member_share_history_mode)
        .service(set_member_share_history_mode)
        .service(get_membership_approval)
        .service(set_membership_approval)
        .service(get_invite_code)
        .service(revoke_invite_code)
        .service(get_participants)
        .service(get_group_participants)
        .service(add_participants)
        .service(remove_participants)
        .service(promote_to_admin)
        .service(demote_to_admin)
        .service(get_join_requests)
        .service(approve_join_requests)
        .service(reject_join_requests);
}
