//! Every error body wharf answers with, in WAHA's exact wording and shape.
//!
//! Owns: [`ApiError`] (one variant per WAHA body *shape*), the conversions from each
//! layer's error enum, and the rendering used by extractors, the default 404, the auth
//! middleware and the 500 rewriter. No other file knows WAHA's strings
//! (`../shared/reference/waha.md` §3.1). Pinned byte-for-byte by `tests/e2e/errors.rs`.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

use crate::{model::session::SessionStatus, sessions};

/// WAHA's error bodies.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `{"message":"Unauthorized","statusCode":401}`.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403 `{"message":"Forbidden","statusCode":403}`.
    #[error("Forbidden")]
    Forbidden,
    /// NestJS `HttpException`: `{"message","error","statusCode"}`.
    #[error("{message}")]
    Http {
        /// Status code.
        status: StatusCode,
        /// `message`.
        message: String,
    },
    /// 400 class-validator failure: `message` is an array.
    #[error("validation failed: {0:?}")]
    Validation(Vec<String>),
    /// 422 `{"error":"Session status is not as expected…","session","status","expected"}`.
    #[error("Session status is not as expected. Try again later or restart the session")]
    SessionStatus {
        /// Session name.
        session: String,
        /// Its status.
        status: SessionStatus,
        /// What the route needs.
        expected: Vec<SessionStatus>,
    },
    /// 422 `{"error":"Session \"x\" does not exist","session":"x"}` (QR route, unknown session).
    #[error("Session {0:?} does not exist")]
    SessionNotExist(String),
    /// 404 `{"error":{"code":404,"key":"FILE_NOT_FOUND",…}}`: a media file that is gone
    /// (WAHA's `ENOENT` filter, waha.md §3.1).
    #[error("File not found")]
    FileNotFound,
    /// 500; details are logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// 404 `Session not found`.
    pub fn session_not_found() -> Self {
        Self::Http {
            status: StatusCode::NOT_FOUND,
            message: "Session not found".into(),
        }
    }
    /// Nest's default 404 for unknown routes: `Cannot GET /path`.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::Http {
            status: StatusCode::NOT_FOUND,
            message: format!("Cannot {method} {path}"),
        }
    }
    /// 503 for a session moving between cluster workers (`api::forward` adds
    /// `Retry-After`): wharf's, WAHA has no cluster.
    pub fn session_moving(session: &str) -> Self {
        Self::Http {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "Session \"{session}\" is moving to another worker. Try again shortly"
            ),
        }
    }
    /// 502 when the cluster worker running the session failed to answer a forwarded
    /// request (it was sent; it may or may not have been done).
    pub fn owner_failed(session: &str) -> Self {
        Self::Http {
            status: StatusCode::BAD_GATEWAY,
            message: format!("The worker running session \"{session}\" did not answer"),
        }
    }
    /// 400 with a single string message (malformed JSON, like body-parser's).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Http {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    /// class-validator's `@IsNotEmpty()` on a string field (blank counts as empty):
    /// `Err(400 ["<field> should not be empty"])`.
    ///
    /// # Errors
    /// When `value` is blank.
    pub fn require_text(field: &str, value: &str) -> Result<(), Self> {
        if value.trim().is_empty() {
            Err(Self::Validation(vec![format!(
                "{field} should not be empty"
            )]))
        } else {
            Ok(())
        }
    }
    /// 404 for a contact the session knows nothing of.
    pub fn contact_not_found() -> Self {
        Self::Http {
            status: StatusCode::NOT_FOUND,
            message: "Contact not found".into(),
        }
    }
    /// 413 from body-parser.
    pub fn payload_too_large() -> Self {
        Self::Http {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "request entity too large".into(),
        }
    }
    /// WhatsApp refused a request (an IQ error): the same 4xx with a message that says
    /// what it usually means; a server-side failure on WhatsApp's end is a 502, never a
    /// 500 (nothing failed in wharf).
    pub fn refused(code: u16, text: &str) -> Self {
        let (status, message) = match code {
            401 | 403 => (
                StatusCode::FORBIDDEN,
                format!(
                    "WhatsApp refused: not allowed ({code} {text}) - the session is not an admin of the group, or not a member"
                ),
            ),
            404 => (
                StatusCode::NOT_FOUND,
                format!(
                    "WhatsApp: not found ({code} {text}) - unknown group, or an invalid or revoked invite code"
                ),
            ),
            409 => (
                StatusCode::CONFLICT,
                format!("WhatsApp refused: conflict ({code} {text})"),
            ),
            400..=499 => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                format!("WhatsApp refused the request ({code} {text})"),
            ),
            _ => (
                StatusCode::BAD_GATEWAY,
                format!("WhatsApp could not do it ({code} {text})"),
            ),
        };
        Self::Http { status, message }
    }

    /// 422 `The method is not implemented by the engine.` (WAHA's
    /// `NotImplementedByEngineError`).
    pub fn not_implemented() -> Self {
        Self::unprocessable("The method is not implemented by the engine.")
    }
    /// 422 with a message.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::Http {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct BareBody<'a> {
    message: &'a str,
    #[serde(rename = "statusCode")]
    status_code: u16,
}

#[derive(Serialize)]
struct HttpBody<'a, M: Serialize> {
    message: M,
    error: &'a str,
    #[serde(rename = "statusCode")]
    status_code: u16,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    error: &'a str,
    session: &'a str,
    status: SessionStatus,
    expected: &'a [SessionStatus],
}

/// Marker the 500 rewriter (`api::internal_error_body`) looks for.
pub(crate) const INTERNAL_MARKER: &str = "x-wharf-internal-error";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Http { status, .. } => *status,
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::SessionStatus { .. } | Self::SessionNotExist(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::FileNotFound => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let reason = status.canonical_reason().unwrap_or("Error");
        let mut res = HttpResponse::build(status);
        match self {
            Self::Unauthorized | Self::Forbidden => res.json(BareBody {
                message: reason,
                status_code: status.as_u16(),
            }),
            Self::Http { message, .. } => res.json(HttpBody {
                message: message.as_str(),
                error: reason,
                status_code: status.as_u16(),
            }),
            Self::Validation(messages) => res.json(HttpBody {
                message: messages,
                error: reason,
                status_code: status.as_u16(),
            }),
            Self::SessionStatus {
                session,
                status,
                expected,
            } => res.json(StatusBody {
                error: "Session status is not as expected. Try again later or restart the session",
                session,
                status: *status,
                expected,
            }),
            Self::SessionNotExist(session) => res.json(serde_json::json!({
                "error": format!("Session \"{session}\" does not exist"),
                "session": session,
            })),
            Self::FileNotFound => res.json(serde_json::json!({
                "error": {
                    "code": 404,
                    "key": "FILE_NOT_FOUND",
                    "message": "File not found",
                    "details": "File not found or no longer available",
                }
            })),
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                // The body is rebuilt with the request's path/method/query by the
                // middleware in `api::mod`, which can see the request.
                res.insert_header((INTERNAL_MARKER, "1"));
                res.finish()
            }
        }
    }
}

/// WAHA's 500 body, minus the internals WAHA leaks (stack, request body).
pub(crate) fn internal_body(
    path: &str,
    method: &str,
    query: serde_json::Value,
    version: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "statusCode": 500,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "exception": { "message": "Internal server error", "name": "Error" },
        "request": { "path": path, "method": method, "query": query },
        "version": version,
    })
}

impl From<crate::media::Error> for ApiError {
    fn from(e: crate::media::Error) -> Self {
        match e {
            crate::media::Error::Io(_) | crate::media::Error::S3(_) => {
                Self::Internal(e.to_string())
            }
        }
    }
}

impl From<sessions::Error> for ApiError {
    fn from(e: sessions::Error) -> Self {
        match e {
            sessions::Error::NotFound(_) => Self::session_not_found(),
            sessions::Error::AlreadyExists(name) => Self::unprocessable(format!(
                "Session '{name}' already exists. Use PUT to update it."
            )),
            sessions::Error::AlreadyStarted(name) => {
                Self::unprocessable(format!("Session '{name}' is already started."))
            }
            sessions::Error::WrongStatus {
                session,
                status,
                expected,
            } => Self::SessionStatus {
                session,
                status,
                expected,
            },
            sessions::Error::NotRunning(name) => Self::Http {
                status: StatusCode::NOT_FOUND,
                message: format!(
                    "We didn't find a session with name '{name}'.\nPlease start it first by using POST /api/sessions/{name}/start request"
                ),
            },
            sessions::Error::BadMessageId(id) => Self::Validation(vec![format!(
                "messageId must look like false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA, got {id:?}"
            )]),
            sessions::Error::MessageNotFound(_) => Self::Http {
                status: StatusCode::NOT_FOUND,
                message: "Message not found".into(),
            },
            sessions::Error::CodeWrongStatus { status } => Self::unprocessable(format!(
                "Can request code only in SCAN_QR_CODE status. The current status is {}",
                status.as_str()
            )),
            sessions::Error::Engine(e) => match e {
                crate::engine::Error::PairCode(msg) => Self::unprocessable(msg),
                crate::engine::Error::BadRequest(msg) => Self::Validation(vec![msg]),
                crate::engine::Error::Unprocessable(msg) => Self::unprocessable(msg),
                crate::engine::Error::Send(_) => Self::Internal(e.to_string()),
                crate::engine::Error::Refused { code, text } => Self::refused(code, &text),
                crate::engine::Error::NotRunning => {
                    Self::unprocessable("The session is not running.")
                }
                crate::engine::Error::Download(_) | crate::engine::Error::PollVote(_) => {
                    Self::Internal(e.to_string())
                }
                crate::engine::Error::Store(_)
                | crate::engine::Error::Damaged(_)
                | crate::engine::Error::Build(_)
                | crate::engine::Error::MockNetworkWithoutUrl
                | crate::engine::Error::ConnectTimeout(_) => Self::Internal(e.to_string()),
            },
            sessions::Error::Store(e) => Self::from(e),
            sessions::Error::Media(e) => Self::from(e),
        }
    }
}

impl From<sessions::sending::MediaError> for ApiError {
    fn from(e: sessions::sending::MediaError) -> Self {
        use crate::model::send::FileProblem;
        use sessions::sending::MediaError;
        // class-validator's phrasing for the DTO-level problems (WAHA validates `file`
        // there); a 400 with a plain message for what only fetching reveals.
        match e {
            MediaError::File(FileProblem::MissingMimetype) => {
                Self::Validation(vec!["file.mimetype should not be empty".into()])
            }
            MediaError::File(FileProblem::BothUrlAndData) => Self::Validation(vec![
                "file must contain either url or data, not both".into(),
            ]),
            MediaError::File(FileProblem::NeitherUrlNorData) => {
                Self::Validation(vec!["file must contain either url or data".into()])
            }
            MediaError::InvalidBase64 => {
                Self::Validation(vec!["file.data must be base64 encoded".into()])
            }
            MediaError::NotHttpUrl(_) => {
                Self::Validation(vec!["file.url must be a URL address".into()])
            }
            MediaError::FetchFailed { url, reason } => Self::bad_request(format!(
                "Failed to download the file from '{url}': {reason}"
            )),
            MediaError::TooLarge { max_bytes } => Self::bad_request(format!(
                "The file is too large: the limit is {max_bytes} bytes"
            )),
            MediaError::NotImplemented => Self::not_implemented(),
            MediaError::FfmpegMissing => Self::Http {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "Media conversion needs ffmpeg, which is not installed on the server"
                    .into(),
            },
            MediaError::Unconvertible(reason) => {
                Self::bad_request(format!("Cannot convert the file with ffmpeg: {reason}"))
            }
            MediaError::NotForwardable(reason) => {
                Self::bad_request(format!("The message cannot be forwarded: {reason}"))
            }
            MediaError::Disk(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        match e {
            crate::store::Error::AlreadyExists(what) => {
                Self::unprocessable(format!("'{what}' already exists."))
            }
            crate::store::Error::Unavailable(_)
            | crate::store::Error::Corrupt(_)
            | crate::store::Error::Backend(_) => Self::Internal(e.to_string()),
        }
    }
}
