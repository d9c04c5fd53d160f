//! `📢 Channels` search: `POST /api/{session}/channels/search/by-view` and `…/by-text`
//! (WhatsApp's channel directory, a page at a time), and the fixed lists
//! `GET …/channels/search/views`, `…/countries` and `…/categories` (waha.md §4).
//!
//! Thin: parse (WAHA's DTO defaults for absent fields), gate on WORKING, one call into
//! `engine::channel_search`, map the page into WAHA's `ChannelListResult`. The lists are
//! static, as in WAHA: they need no running session.

use actix_web::{HttpResponse, get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod lists;

use super::{ApiError, HasSession, WorkingBody};
use crate::engine::channel_search::{DirectoryChannel, DirectoryPage, DirectoryQuery};

/// `ChannelSearchByView`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSearchByView {
    /// The directory view (`GET …/search/views`).
    #[serde(default)]
    #[schema(value_type = String, default = "RECOMMENDED")]
    pub view: Option<String>,
    /// Country codes (`GET …/search/countries`).
    #[serde(default)]
    #[schema(value_type = Vec<String>, default = json!(["US"]))]
    pub countries: Option<Vec<String>>,
    /// Categories (`GET …/search/categories`).
    #[serde(default)]
    #[schema(value_type = Vec<String>, default = json!([]))]
    pub categories: Option<Vec<String>>,
    /// Page size.
    #[serde(default)]
    #[schema(value_type = f64, default = 50)]
    pub limit: Option<f64>,
    /// `page.endCursor` of the previous page; empty for the first page.
    #[serde(default)]
    #[schema(value_type = String, default = "")]
    pub start_cursor: Option<String>,
}

// The session is the path's.
impl HasSession for ChannelSearchByView {}
impl HasSession for ChannelSearchByText {}

/// `ChannelSearchByText`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSearchByText {
    /// Text the channel's name or description contains.
    #[serde(default)]
    #[schema(value_type = String, default = "Donald Trump")]
    pub text: Option<String>,
    /// Categories (`GET …/search/categories`).
    #[serde(default)]
    #[schema(value_type = Vec<String>, default = json!([]))]
    pub categories: Option<Vec<String>>,
    /// Page size.
    #[serde(default)]
    #[schema(value_type = f64, default = 50)]
    pub limit: Option<f64>,
    /// `page.endCursor` of the previous page; empty for the first page.
    #[serde(default)]
    #[schema(value_type = String, default = "")]
    pub start_cursor: Option<String>,
}

/// `ChannelPagination`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPagination {
    /// Cursor of the page's first channel.
    pub start_cursor: Option<String>,
    /// Cursor of the page's last channel: the next page's `startCursor`.
    pub end_cursor: Option<String>,
    /// More channels after this page.
    pub has_next_page: bool,
    /// Channels before this page.
    pub has_previous_page: bool,
}

/// `ChannelPublicInfo`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPublicInfo {
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
    #[schema(example = "https://mmg.whatsapp.net/m1/v/t24/An&_nc_cat=10")]
    pub preview: Option<String>,
    /// Channel's picture
    #[schema(example = "https://mmg.whatsapp.net/m1/v/t24/An&_nc_cat=10")]
    pub picture: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Verified.
    pub verified: bool,
    /// Followers.
    pub subscribers_count: u64,
}

impl From<DirectoryChannel> for ChannelPublicInfo {
    fn from(c: DirectoryChannel) -> Self {
        Self {
            id: c.id,
            name: c.name,
            invite: super::channels::invite_link(c.invite),
            preview: c.picture.clone(),
            picture: c.picture,
            description: c.description,
            verified: c.verified,
            subscribers_count: c.subscribers,
        }
    }
}

/// `ChannelListResult`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelListResult {
    /// Cursors.
    pub page: ChannelPagination,
    /// The page's channels.
    pub channels: Vec<ChannelPublicInfo>,
}

impl From<DirectoryPage> for ChannelListResult {
    fn from(p: DirectoryPage) -> Self {
        Self {
            page: ChannelPagination {
                start_cursor: p.start_cursor,
                end_cursor: p.end_cursor,
                has_next_page: p.has_next_page,
                has_previous_page: p.has_previous_page,
            },
            channels: p.channels.into_iter().map(Into::into).collect(),
        }
    }
}

/// `ChannelView`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    /// Value for `view`.
    pub value: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// `ChannelCountry`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelCountry {
    /// ISO 3166-1 alpha-2 code, for `countries`.
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// `ChannelCategory`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelCategory {
    /// Value for `categories`.
    pub value: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// `limit` as WhatsApp's page size: a positive number (a fraction is cut), at most 1000.
fn page_size(limit: Option<f64>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(50.0);
    if !limit.is_finite() || limit < 1.0 {
        return Err(ApiError::Validation(vec![
            "limit must not be less than 1".into(),
        ]));
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a finite number in 1..=1000"
    )]
    Ok(limit.min(1000.0) as u32)
}

fn cursor(c: Option<&str>) -> Option<&str> {
    c.filter(|c| !c.is_empty())
}

/// Search for channels (by view)
#[utoipa::path(
    operation_id = "ChannelsController_searchByView",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name")),
    request_body = ChannelSearchByView,
    responses((status = 200, description = "", body = ChannelListResult)),
    security(("api_key" = []))
)]
#[post("/api/{session}/channels/search/by-view")]
pub async fn search_by_view(
    req: WorkingBody<ChannelSearchByView>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let limit = page_size(body.limit)?;
    let query = DirectoryQuery::View {
        view: body.view.unwrap_or_else(|| "RECOMMENDED".into()),
        countries: body.countries.unwrap_or_else(|| vec!["US".into()]),
        categories: body.categories.unwrap_or_default(),
    };
    let page = working
        .engine
        .channel_directory(&query, limit, cursor(body.start_cursor.as_deref()))
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Ok().json(ChannelListResult::from(page)))
}

/// Search for channels (by text)
#[utoipa::path(
    operation_id = "ChannelsController_searchByText",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name")),
    request_body = ChannelSearchByText,
    responses((status = 200, description = "", body = ChannelListResult)),
    security(("api_key" = []))
)]
#[post("/api/{session}/channels/search/by-text")]
pub async fn search_by_text(
    req: WorkingBody<ChannelSearchByText>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let limit = page_size(body.limit)?;
    let query = DirectoryQuery::Text {
        text: body.text.unwrap_or_else(|| "Donald Trump".into()),
        categories: body.categories.unwrap_or_default(),
    };
    let page = working
        .engine
        .channel_directory(&query, limit, cursor(body.start_cursor.as_deref()))
        .await
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Ok().json(ChannelListResult::from(page)))
}

/// Get list of views for channel search
#[utoipa::path(
    operation_id = "ChannelsController_getSearchViews",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = Vec<ChannelView>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/channels/search/views")]
pub async fn views() -> HttpResponse {
    let list: Vec<ChannelView> = lists::VIEWS
        .iter()
        .map(|&(value, name)| ChannelView { value, name })
        .collect();
    HttpResponse::Ok().json(list)
}

/// Get list of countries for channel search
#[utoipa::path(
    operation_id = "ChannelsController_getSearchCountries",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = Vec<ChannelCountry>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/channels/search/countries")]
pub async fn countries() -> HttpResponse {
    let list: Vec<ChannelCountry> = lists::COUNTRIES
        .iter()
        .map(|&(code, name)| ChannelCountry { code, name })
        .collect();
    HttpResponse::Ok().json(list)
}

/// Get list of categories for channel search
#[utoipa::path(
    operation_id = "ChannelsController_getSearchCategories",
    tag = "📢 Channels",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = Vec<ChannelCategory>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/channels/search/categories")]
pub async fn categories() -> HttpResponse {
    let list: Vec<ChannelCategory> = lists::CATEGORIES
        .iter()
        .map(|&(value, name)| ChannelCategory { value, name })
        .collect();
    HttpResponse::Ok().json(list)
}

/// Registers this file's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(search_by_view)
        .service(search_by_text)
        .service(views)
        .service(countries)
        .service(categories);
}
