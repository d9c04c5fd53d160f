//! Request extractors: every way a handler's input can be refused, rendered as WAHA's
//! bodies through [`ApiError`].
//!
//! Owns: [`Body<T>`] (JSON, NestJS `ValidationPipe` wording), [`Query<T>`] (the query
//! string into the same `IntoParams` struct the OpenAPI document describes), the WORKING
//! gate [`Working`] / [`WorkingBody<T>`] (which yields the live `engine::Session`), and
//! [`SessionPath`] (the documented `{session}` path parameter). Used by the handlers of
//! every `api/` file, once per request; stateless.
//!
//! # Which error comes first
//! actix polls a handler's extractors together and answers with the first error it sees,
//! so two fallible extractors on one handler race. The gate is therefore combined with
//! what it depends on, in one extractor with a fixed order:
//! - [`Working`]: the session from the path (or the query), nothing else to parse;
//! - [`WorkingQuery<T>`]: a `{session}` path is gated *first*, then the query is parsed
//!   (WAHA's `WorkingSessionParam` pipe runs before the query DTO's); with no `{session}`
//!   in the path the query is parsed first and names the session;
//! - [`WorkingBody<T>`]: the body is parsed first (its 400s win), then the session it
//!   names — or the path's — is gated.
//!
//! A handler takes at most one of them and no other fallible extractor.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use futures_util::StreamExt;
use serde::de::{self, DeserializeOwned, IntoDeserializer, value::MapDeserializer};

mod spool;
mod strict;

use super::{ApiError, AppState, BODY_LIMIT, auth::BodyScope};
use crate::{engine, sessions};

/// A JSON request body, parsed like Express's body-parser and NestJS's `ValidationPipe`:
/// - only `application/json` (`+json`) bodies are read — any other content type (or none)
///   is `{}`, as body-parser leaves `req.body` empty for types it does not parse;
/// - strict JSON: the top level must be an object or an array (`null` is body-parser's
///   syntax error); an array is class-validator's "unknown value";
/// - syntax errors are a 400 with a string message, shape errors a 400 with a `message`
///   array, bodies over 50 MB a 413, and so are bodies with more than
///   [`strict::MAX_NODES`] JSON values (wharf's addition: they would cost gigabytes);
/// - a DTO field takes only an object (`"config": []` is refused; see [`strict`]);
/// - on a route whose session is named by the body (`api::scopes`, `Source::Body`), a
///   session key's scope is checked against the parsed body before the DTO is (403).
///
/// Bodies over 256 KiB are parsed on the blocking pool so the HTTP workers keep answering.
pub struct Body<T>(pub T);

/// Bodies larger than this are parsed off the HTTP worker.
const PARSE_INLINE_MAX: usize = 256 * 1024;

impl<T: DeserializeOwned + Send + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
        let mut payload = payload.take();
        // The scope check of a route whose session is named in the body (`api::auth`).
        let scope = req.extensions().get::<BodyScope>().cloned();
        Box::pin(async move {
            // Large base64 file contents go to disk as they arrive (`spool`).
            let mut body = spool::BodySpooler::new();
            let mut read = 0usize;
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::bad_request(e.to_string()))?;
                read += chunk.len();
                if read > BODY_LIMIT {
                    return Err(ApiError::payload_too_large());
                }
                if is_json {
                    body.feed(&chunk);
                }
            }
            let (buf, files) = body
                .finish()
                .map_err(|e| ApiError::Internal(format!("spooling the request body: {e}")))?;
            let parse =
                move || crate::media::spool::with_files(files, || parse_body(&buf, scope.as_ref()));
            if read > PARSE_INLINE_MAX {
                web::block(parse)
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?
                    .map(Body)
            } else {
                parse().map(Body)
            }
        })
    }
}

/// Bytes of a JSON body (empty = none sent) into `T`; see [`Body`]. `scope`: the session
/// the body names must pass it (before the DTO is checked, so a foreign session's request
/// learns nothing from validation errors).
fn parse_body<T: DeserializeOwned>(buf: &[u8], scope: Option<&BodyScope>) -> Result<T, ApiError> {
    let first = buf.iter().find(|b| !b.is_ascii_whitespace());
    let value = match first {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(&c) if c != b'{' && c != b'[' => {
            // body-parser's strict mode, worded as Node's JSON.parse words it.
            let text = String::from_utf8_lossy(&buf[..buf.len().min(32)])
                .trim()
                .to_string();
            return Err(ApiError::bad_request(format!(
                "Unexpected token '{}', \"{text}\" is not valid JSON",
                char::from(c)
            )));
        }
        Some(_) => {
            if !strict::within_node_budget(buf) {
                return Err(ApiError::payload_too_large());
            }
            serde_json::from_slice(buf)
                .map_err(|e| ApiError::bad_request(format!("Unexpected token in JSON: {e}")))?
        }
    };
    if let Some(scope) = scope {
        scope.check(&value)?;
    }
    if value.is_array() {
        return Err(ApiError::Validation(vec![
            "an unknown value was passed to the validate function".into(),
        ]));
    }
    parse_value(value)
}

/// Deserializes a JSON value into `T`, turning serde's error into class-validator's wording.
///
/// # Errors
/// [`ApiError::Validation`] naming the offending property.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::Validation(vec!["body must be an object".into()]));
    }
    serde_path_to_error::deserialize(strict::Strict(value)).map_err(validation_error)
}

fn validation_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    // class-validator writes `config.webhooks.0.url`, serde `config.webhooks[0].url`.
    let path = e.path().to_string().replace('[', ".").replace(']', "");
    let inner = e.into_inner().to_string();
    ApiError::Validation(vec![validation_message(&path, &inner)])
}

/// class-validator-style phrasing for the common serde failures (`name must be a string`).
fn validation_message(path: &str, serde_msg: &str) -> String {
    if let Some(field) = serde_msg
        .strip_prefix("missing field `")
        .and_then(|s| s.split('`').next())
    {
        let full = if path == "." || path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return format!("{full} should not be empty");
    }
    let expected = serde_msg.split("expected ").nth(1).unwrap_or("");
    let kind = if expected.starts_with("a string") {
        "must be a string"
    } else if expected.starts_with("a boolean") {
        "must be a boolean value"
    } else if expected.starts_with("a sequence") {
        "must be an array"
    } else if expected.contains("number")
        || expected.contains("integer")
        || expected.starts_with("f64")
        || expected.starts_with("u")
        || expected.starts_with("i")
    {
        "must be a number conforming to the specified constraints"
    } else if expected.starts_with("struct") || expected.starts_with("a map") {
        "must be an object"
    } else if serde_msg.starts_with("unknown variant") {
        let values: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return format!(
            "{path} must be one of the following values: {}",
            values.join(", ")
        );
    } else {
        return format!("{path}: {serde_msg}");
    };
    format!("{path} {kind}")
}

/// A query string deserialized into `T` — the same `#[derive(Deserialize, IntoParams)]`
/// struct the handler lists in `params(..)`, so the document and the parser cannot drift.
///
/// Parsed like NestJS's `qs` + class-transformer: a repeated scalar takes its last value;
/// an empty value is absent; arrays accept `ids=a&ids=b`, `ids[]=a` and `ids=a,b`;
/// booleans are `true`/`false`/`1`/`0`; numbers are finite decimals. Failures are 400s in
/// class-validator's wording (`limit must be a number conforming to the specified
/// constraints`, `all must be a boolean value`, `sortOrder must be one of the following
/// values: desc, asc`).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// The raw pairs of a query string, or NestJS's 400 for an undecodable one.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Deserializes a raw query string into `T` (see [`Query`]).
///
/// # Errors
/// [`ApiError::Validation`] naming the offending parameter; a 400 for undecodable input.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut fields: Vec<(String, Values)> = Vec::new();
    for (key, value) in query_pairs(query)? {
        let key = key.strip_suffix("[]").unwrap_or(&key).to_string();
        if value.is_empty() {
            continue;
        }
        match fields.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.0.push(value),
            None => fields.push((key, Values(vec![value]))),
        }
    }
    let map = MapDeserializer::<_, de::value::Error>::new(fields.into_iter());
    serde_path_to_error::deserialize(map).map_err(validation_error)
}

/// Every (non-empty) value one query key was given, as a serde deserializer.
struct Values(Vec<String>);

impl Values {
    /// The value a scalar takes: the last one (`qs`).
    fn last(&self) -> &str {
        self.0.last().map_or("", String::as_str)
    }
}

impl<'de> IntoDeserializer<'de, de::value::Error> for Values {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// Numbers: whatever parses as the field's type (floats must also be finite), else the
/// type error class-validator words as "must be a number…".
macro_rules! parse_number {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self.last().trim().parse::<$ty>() {
                Ok(n) if is_finite(n) => visitor.$visit(n),
                Ok(_) | Err(_) => Err(de::Error::invalid_type(
                    de::Unexpected::Str(self.last()),
                    &visitor,
                )),
            }
        }
    )*};
}

/// `NaN`/`inf` parse as floats but are no numbers to class-validator.
trait Finite: Copy {
    fn finite(self) -> bool;
}
macro_rules! finite_ints {
    ($($ty:ty),*) => {$(impl Finite for $ty { fn finite(self) -> bool { true } })*};
}
finite_ints!(i8, i16, i32, i64, u8, u16, u32, u64);
impl Finite for f32 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}
impl Finite for f64 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}
fn is_finite<N: Finite>(n: N) -> bool {
    n.finite()
}

impl<'de> de::Deserializer<'de> for Values {
    type Error = de::value::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let last = self.last().to_string();
        visitor.visit_string(last)
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_bool<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.last() {
            "true" | "1" => visitor.visit_bool(true),
            "false" | "0" => visitor.visit_bool(false),
            other => Err(de::Error::invalid_type(
                de::Unexpected::Str(other),
                &visitor,
            )),
        }
    }

    parse_number! {
        deserialize_f64 => visit_f64: f64,
        deserialize_f32 => visit_f32: f32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i32 => visit_i32: i32,
        deserialize_i16 => visit_i16: i16,
        deserialize_i8 => visit_i8: i8,
        deserialize_u64 => visit_u64: u64,
        deserialize_u32 => visit_u32: u32,
        deserialize_u16 => visit_u16: u16,
        deserialize_u8 => visit_u8: u8,
    }

    fn deserialize_seq<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let items: Vec<Values> = self
            .0
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| Values(vec![v.to_string()]))
            .collect();
        visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let last = self.last().to_string();
        visitor.visit_enum(IntoDeserializer::<de::value::Error>::into_deserializer(
            last,
        ))
    }

    fn deserialize_ignored_any<V: de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct map struct identifier
    }
}

/// The WORKING gate, passed: the session's name and its live engine handle.
///
/// The name comes from the path (`{session}`), else the query (`?session=`), else
/// `"default"`; for a name inside a JSON body use [`WorkingBody`], for a typed query
/// [`WorkingQuery`]. A session that does not
/// exist is WAHA's 422 `Session "x" does not exist`; one that is not WORKING, the 422
/// status body with `expected: ["WORKING"]`.
///
/// This is the one place a request reaches a session's engine (the multi-instance
/// ownership check belongs here too). The scoped API-key check has already run: the auth
/// middleware (`api::auth`) applies the route's rule from `api::scopes` to the session
/// named by the path or the query, and [`Body`] applies it to a session named by the body.
pub struct Working {
    /// Session name.
    pub name: String,
    /// The live engine (stale — calls answer "not running" — once the connection ends).
    pub engine: engine::Session,
}

impl Working {
    /// Runs the gate for `name`.
    ///
    /// # Errors
    /// WAHA's 422 bodies; a store failure.
    pub async fn gate(state: &AppState, name: &str) -> Result<Self, ApiError> {
        match state.manager.engine(name).await {
            Ok(engine) => Ok(Self {
                name: name.to_string(),
                engine,
            }),
            Err(sessions::Error::NotFound(_)) => Err(ApiError::SessionNotExist(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("AppState is not registered".into()))
}

/// The session named by the path, else by the query's `session`, else `"default"`.
fn name_of(req: &HttpRequest) -> Result<String, ApiError> {
    if let Some(name) = path_name(req) {
        return Ok(name);
    }
    Ok(query_pairs(req.query_string())?
        .into_iter()
        .rev()
        .find(|(k, v)| k == "session" && !v.is_empty())
        .map_or_else(|| "default".to_string(), |(_, v)| v))
}

fn path_name(req: &HttpRequest) -> Option<String> {
    req.match_info().get("session").map(str::to_string)
}

impl FromRequest for Working {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let name = name_of(req);
        let state = app_state(req);
        Box::pin(async move { Self::gate(&*state?, &name?).await })
    }
}

/// A request body or query that may name its session (WAHA's chatting bodies:
/// `"session": "default"`). The default — no name — leaves it to the path.
pub trait HasSession {
    /// The session the request is for, when it says.
    fn session(&self) -> Option<&str> {
        None
    }
}

/// A JSON body ([`Body`] rules: its 400s come first), then the WORKING gate for the session
/// it names (else the path's, else `"default"`).
pub struct WorkingBody<T> {
    /// The passed gate.
    pub working: Working,
    /// The parsed body.
    pub body: T,
}

impl<T: DeserializeOwned + HasSession + Send + 'static> FromRequest for WorkingBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Body::<T>::from_request(req, payload);
        let fallback = path_name(req).unwrap_or_else(|| "default".to_string());
        let state = app_state(req);
        Box::pin(async move {
            let Body(body) = body.await?;
            let name = body.session().map_or(fallback, str::to_string);
            let working = Working::gate(&*state?, &name).await?;
            Ok(Self { working, body })
        })
    }
}

/// A typed query ([`Query`] rules) with the WORKING gate: a `{session}` path is gated
/// first, then the query parsed; without one the query is parsed first and names the
/// session (else `"default"`).
pub struct WorkingQuery<T> {
    /// The passed gate.
    pub working: Working,
    /// The parsed query.
    pub query: T,
}

impl<T: DeserializeOwned + HasSession + 'static> FromRequest for WorkingQuery<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let path = path_name(req);
        let raw = req.query_string().to_string();
        let state = app_state(req);
        Box::pin(async move {
            let state = state?;
            match path {
                Some(name) => {
                    let working = Working::gate(&state, &name).await?;
                    let query = parse_query(&raw)?;
                    Ok(Self { working, query })
                }
                None => {
                    let query: T = parse_query(&raw)?;
                    let name = query.session().unwrap_or("default").to_string();
                    let working = Working::gate(&state, &name).await?;
                    Ok(Self { working, query })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
