//! `GET /api/files/{session}/{file}`: downloaded media, as WAHA serves its files folder
//! (a static route there, so not an operation of WAHA's OpenAPI document).
//!
//! Owns: the HTTP side only — the file is found and streamed by
//! [`crate::media::MediaService::open`] (local folder, or the S3 object when
//! `WAHA_S3_PROXY_FILES=true`). API-key protected like every route (the auth middleware);
//! a missing file answers WAHA's `FILE_NOT_FOUND` 404. Registered by `api::build_app`.

use actix_web::{HttpResponse, http::header, web};

use super::{AppState, error::ApiError};

/// Streams a stored media file.
pub async fn get_file(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (session, file) = path.into_inner();
    let Some(found) = state.media.open(&session, &file).await? else {
        return Err(ApiError::FileNotFound);
    };
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, found.mimetype));
    Ok(match found.len {
        Some(len) => res.body(actix_web::body::SizedStream::new(len, found.body)),
        None => res.streaming(found.body),
    })
}
