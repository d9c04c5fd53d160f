//! `📢 Channels` (WhatsApp newsletters): `GET|POST /api/{session}/channels`,
//! `GET|DELETE /api/{session}/channels/{id}` and `POST …/{id}/follow|unfollow|mute|unmute`
//! (waha.md §4).
//!
//! Thin: parse, gate on WORKING, one call into the engine (`engine::channels`), map the
//! answer into WAHA's `Channel`. The search routes, the messages preview and posting to a
//! channel are not served yet (README, API coverage).

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Body, Query, Working};
use crate::{
    engine::channels::ChannelInfo,
    model::send::{FileDoc, FileInput},
};

/// `Channel`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// Newsletter id
    #[schema(example = "123123123123@newsletter")]
    pub id: String,
    /// Channel name
    #[schema(example = "Channel Name")]
    pub name: String,
    /// Invite link
    #[schema(example = "https://www.whatsapp.com/channel/111111111111111111111111")]
    pub invite: String,
    /// Preview for channel's picture
    pub preview: Option<String>,
    /// Channel's picture
    pub picture: Option<String>,
    /// Role of the session in the channel.
    #[schema(example = "OWNER")]
    pub role: String,
    /// Description.
    pub description: Option<String>,
    /// Verified.
    pub verified: bool,
    /// Followers.
    pub subscribers_count: u64,
}

/// WAHA's `invite`: the channel's link (`https://www.whatsapp.com/channel/<code>`).
pub(super) fn invite_link(code: Option<String>) -> String {
    format!(
        "https://www.whatsapp.com/channel/{}",
        code.unwrap_or_default()
    )
}

impl From<ChannelInfo> for Channel {
    fn from(c: ChannelInfo) -> Self {
        Self {
            id: c.id,
            name: c.name,
            invite: invite_link(c.invite),
            preview: c.preview,
            picture: c.picture,
            role: c.role.to_string(),
            description: c.description,
            verified: c.verified,
            subscribers_count: c.subscribers,
        }
    }
}

/// `CreateChannelRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateChannelRequest {
    /// Name.
    #[schema(example = "Channel Name")]
    pub name: String,
    /// Description.
    #[serde(default)]
    #[schema(example = "Channel Description")]
    pub description: Option<String>,
    /// Picture.
    #[serde(default)]
    #[schema(value_type = Option<FileDoc>, inline)]
    pub picture: Option<FileInput>,
}

/// `role` filter of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChannelRoleFilter {
    /// Created by the session.
    Owner,
    /// Administered.
    Admin,
    /// Followed.
    Subscriber,
}

/// Query of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListChannelsQuery {
    /// Only channels where the session has this role.
    #[param(value_type = Option<String>)]
    pub role: Option<ChannelRoleFilter>,
}

/// Get list of know channels
#[utoipa::path(
    operation_id = "ChannelsController_list",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ListChannelsQuery),
    responses((status = 200, description = "", body = Vec<Channel>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/channels")]
pub async fn list(
    working: Working,
    query: Query<ListChannelsQuery>,
) -> Result<HttpResponse, ApiError> {
    let all = working
        .engine
        .channel_list()
        .await
        .map_err(crate::sessions::Error::from)?;
    let role = query.0.role.map(|r| match r {
        ChannelRoleFilter::Owner => "OWNER",
        ChannelRoleFilter::Admin => "ADMIN",
        ChannelRoleFilter::Subscriber => "SUBSCRIBER",
    });
    let channels: Vec<Channel> = all
        .into_iter()
        .filter(|c| role.is_none_or(|r| c.role == r))
        .map(Channel::from)
        .collect();
    Ok(HttpResponse::Ok().json(channels))
}

/// Create a new channel.
#[utoipa::path(
    operation_id = "ChannelsController_create",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name")),
    request_body = CreateChannelRequest,
    responses((status = 201, description = "", body = Channel)),
    security(("api_key" = []))
)]
#[post("/api/{session}/channels")]
pub async fn create(
    path: web::Path<String>,
    state: web::Data<super::AppState>,
    body: Body<CreateChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = body;
    ApiError::require_text("name", &r.name)?;
    let working = Working::gate(&state, &path).await?;
    if r.picture.is_some() {
        // whatsapp-rust creates channels without a picture.
        return Err(ApiError::not_implemented());
    }
    let created = working
        .engine
        .channel_create(&r.name, r.description.as_deref())
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Created().json(Channel::from(created)))
}

/// Get the channel info
#[utoipa::path(
    operation_id = "ChannelsController_get",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ("id" = String, Path, description = "WhatsApp Channel ID")),
    responses((status = 200, description = "", body = Channel)),
    security(("api_key" = []))
)]
#[get("/api/{session}/channels/{id}")]
pub async fn get_one(
    working: Working,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let channel = working
        .engine
        .channel_get(&path.1)
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Ok().json(Channel::from(channel)))
}

/// Delete the channel.
#[utoipa::path(
    operation_id = "ChannelsController_delete",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ("id" = String, Path, description = "WhatsApp Channel ID")),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/{session}/channels/{id}")]
pub async fn delete_one(
    working: Working,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    working
        .engine
        .channel_delete(&path.1)
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Ok().finish())
}

/// Follow the channel.
#[utoipa::path(
    operation_id = "ChannelsController_follow",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ("id" = String, Path, description = "WhatsApp Channel ID")),
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/channels/{id}/follow")]
pub async fn follow(
    working: Working,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    working
        .engine
        .channel_follow(&path.1, true)
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Created().finish())
}

/// Unfollow the channel.
#[utoipa::path(
    operation_id = "ChannelsController_unfollow",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ("id" = String, Path, description = "WhatsApp Channel ID")),
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/channels/{id}/unfollow")]
pub async fn unfollow(
    working: Working,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    working
        .engine
        .channel_follow(&path.1, false)
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Created().finish())
}

/// Mute the channel.
#[utoipa::path(
    operation_id = "ChannelsController_mute",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ("id" = String, Path, description = "WhatsApp Channel ID")),
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/channels/{id}/mute")]
pub async fn mute(
    working: Working,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    working
        .engine
        .channel_mute(&path.1, true)
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Created().finish())
}

/// Unmute the channel.
#[utoipa::path(
    operation_id = "ChannelsController_unmute",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ("id" = String, Path, description = "WhatsApp Channel ID")),
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/channels/{id}/unmute")]
pub async fn unmute(
    working: Working,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    working
        .engine
        .channel_mute(&path.1, false)
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Created().finish())
}

/// Query of the messages preview.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PreviewChannelMessages {
    /// Download media (media posts are not previewed with files by wharf).
    #[serde(default)]
    #[param(value_type = bool)]
    pub download_media: Option<String>,
    /// How many posts.
    #[serde(default)]
    #[param(value_type = f64)]
    pub limit: Option<String>,
}

/// Preview channel messages
#[utoipa::path(
    operation_id = "ChannelsController_previewChannelMessages",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name"), ("id" = String, Path, description = "Channel id or invite code"), PreviewChannelMessages),
    responses((status = 200, description = "", body = [Object])),
    security(("api_key" = []))
)]
#[get("/api/{session}/channels/{id}/messages/preview")]
pub async fn preview(
    working: Working,
    path: web::Path<(String, String)>,
    query: Query<PreviewChannelMessages>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.0.limit.as_deref() {
        None | Some("") => 10.0,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|l| l.is_finite() && *l >= 0.0)
            .ok_or_else(|| {
                ApiError::Validation(vec![
                    "limit must be a number conforming to the specified constraints".into(),
                ])
            })?,
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small non-negative page size"
    )]
    let limit = limit.min(100.0) as u32;
    let (chat, posts) = working
        .engine
        .channel_posts(&path.1, limit)
        .await
        .map_err(crate::sessions::Error::from)?;
    let items: Vec<serde_json::Value> = posts
        .into_iter()
        .map(|p| {
            let reactions: serde_json::Map<String, serde_json::Value> = p
                .reactions
                .into_iter()
                .map(|(code, n)| (code, n.into()))
                .collect();
            serde_json::json!({
                "reactions": reactions,
                "message": {
                    "id": crate::model::message::message_id(p.from_me, &chat, &p.wa_id, None),
                    "timestamp": p.timestamp,
                    "from": chat,
                    "fromMe": p.from_me,
                    "source": "app",
                    "to": null,
                    "participant": null,
                    "author": null,
                    "body": p.body,
                    "hasMedia": p.has_media,
                    "media": null,
                    "mediaUrl": null,
                    "ack": null,
                    "ackName": null,
                    "location": null,
                    "vCards": [],
                    "replyTo": null,
                    "_data": {"engine": "whatsapp-rust"},
                },
                "viewCount": 0,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// Registers this tag's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(list)
        .service(create)
        .service(get_one)
        .service(delete_one)
        .service(follow)
        .service(unfollow)
        .service(mute)
        .service(unmute)
        .service(preview);
}
