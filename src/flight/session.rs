//! Session options: SetSessionOptions, GetSessionOptions and CloseSession
//! (Flight actions), with `catalog` and `schema`, the defaults a
//! statement's unqualified table names resolve in. JDBC's `catalog=` URL
//! option and ADBC's `adbc.connection.catalog` / `adbc_current_catalog`
//! go through them.
//!
//! The session lives in its cookie, not in this server's memory: the
//! cookie holds the options themselves, so any instance of a fleet reads
//! the same session, a restart loses none, and there is nothing to expire.
//! A statement takes its session's options into its ticket, so its DoGet
//! needs no cookie. The cost: a client that does not keep cookies (ADBC
//! unless `adbc.flight.sql.rpc.with_cookie_middleware` is `true`) sets
//! options that its next call does not carry.

use std::collections::HashMap;

use arrow_flight::{Action, Result as ActionResult};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::stream;
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use crate::flight::sql_service::{BoxedStream, SqlService};
use crate::flight::status::cap_message;
use crate::flight::ticket::proto::{
    CloseSessionResult, GetSessionOptionsResult, Session, SessionOptionValue,
    SetSessionOptionsRequest, SetSessionOptionsResult, close_session_result,
    session_option_value::OptionValue, set_session_options_result,
};
use crate::query::NameDefaults;
use crate::query::engine::CATALOG;
use crate::table::schema::TABLE_SCHEMA;

/// The Flight actions of this file.
pub const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
/// See [`SET_SESSION_OPTIONS`].
pub const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
/// See [`SET_SESSION_OPTIONS`].
pub const CLOSE_SESSION: &str = "CloseSession";

/// The cookie the protocol suggests for a session.
const SESSION_COOKIE: &str = "arrow_flight_session_id";
const CATALOG_OPTION: &str = "catalog";
const SCHEMA_OPTION: &str = "schema";

type ErrorValue = set_session_options_result::ErrorValue;

impl Session {
    /// The session a request's cookie carries; none: the default session.
    /// A cookie of ours that does not decode is INVALID_ARGUMENT.
    pub(super) fn of_request(metadata: &MetadataMap) -> Result<Session, Status> {
        let ours = metadata
            .get_all("cookie")
            .iter()
            .filter_map(|header| header.to_str().ok())
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value)
            // The last one a client sent wins.
            .next_back();
        let Some(value) = ours else {
            return Ok(Session::default());
        };
        if value.is_empty() {
            return Ok(Session::default());
        }
        URL_SAFE_NO_PAD
            .decode(value)
            .ok()
            .and_then(|bytes| Session::decode(bytes.as_slice()).ok())
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "the {SESSION_COOKIE} cookie is not one this server set: start a new session (CloseSession, or drop the cookie)"
                ))
            })
    }

    /// The names a statement of this session resolves in.
    pub(super) fn name_defaults(&self) -> NameDefaults {
        let set = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        NameDefaults {
            catalog: set(&self.catalog),
            schema: set(&self.schema),
        }
    }

    /// The options as GetSessionOptions answers them: every option, set or
    /// default.
    fn options(&self) -> HashMap<String, SessionOptionValue> {
        let string = |value: &str, default: &str| SessionOptionValue {
            option_value: Some(OptionValue::StringValue(
                if value.is_empty() { default } else { value }.to_owned(),
            )),
        };
        HashMap::from([
            (CATALOG_OPTION.to_owned(), string(&self.catalog, CATALOG)),
            (SCHEMA_OPTION.to_owned(), string(&self.schema, TABLE_SCHEMA)),
        ])
    }

    fn set_cookie(&self) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
        let value = URL_SAFE_NO_PAD.encode(self.encode_to_vec());
        MetadataValue::try_from(format!("{SESSION_COOKIE}={value}; Path=/"))
            .map_err(|e| Status::internal(format!("encoding the session cookie failed: {e}")))
    }
}

/// A string option's value (JDBC passes every option as a string); `None`:
/// unset it; an error: not a string.
fn string_value(value: &SessionOptionValue) -> Result<Option<&str>, ErrorValue> {
    match &value.option_value {
        None => Ok(None),
        Some(OptionValue::StringValue(text)) => Ok(Some(text)),
        Some(_) => Err(ErrorValue::InvalidValue),
    }
}

fn one_result(body: Vec<u8>) -> BoxedStream<ActionResult> {
    Box::pin(stream::iter([Ok(ActionResult { body: body.into() })]))
}

impl SqlService {
    /// SetSessionOptions: each option set, or its error (an unknown name,
    /// a value that is not a string or names no catalog or schema here);
    /// the new session in the response's cookie.
    pub(super) fn set_session_options(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxedStream<ActionResult>>, Status> {
        let mut session = Session::of_request(request.metadata())?;
        let asked =
            SetSessionOptionsRequest::decode(request.get_ref().body.as_ref()).map_err(|e| {
                Status::invalid_argument(cap_message(format!(
                    "malformed SetSessionOptionsRequest: {e}"
                )))
            })?;
        let mut errors = HashMap::new();
        // The catalog first: a schema is checked in the catalog it sets.
        let mut names: Vec<_> = asked.session_options.iter().collect();
        names.sort_by_key(|(name, _)| name.as_str() != CATALOG_OPTION);
        for (name, value) in names {
            let applied = match name.as_str() {
                CATALOG_OPTION => string_value(value).and_then(|catalog| {
                    let catalog = catalog.unwrap_or_default();
                    if catalog.is_empty() || self.engine.has_catalog(catalog) {
                        session.catalog = catalog.to_owned();
                        Ok(())
                    } else {
                        Err(ErrorValue::InvalidValue)
                    }
                }),
                SCHEMA_OPTION => string_value(value).and_then(|schema| {
                    let schema = schema.unwrap_or_default();
                    let catalog = session.name_defaults().catalog;
                    let catalog = catalog.as_deref().unwrap_or(CATALOG);
                    if schema.is_empty() || self.engine.has_schema(catalog, schema) {
                        session.schema = schema.to_owned();
                        Ok(())
                    } else {
                        Err(ErrorValue::InvalidValue)
                    }
                }),
                _ => Err(ErrorValue::InvalidName),
            };
            if let Err(error) = applied {
                tracing::debug!(option = %name, ?error, "session option refused");
                errors.insert(
                    name.clone(),
                    set_session_options_result::Error {
                        value: error as i32,
                    },
                );
            }
        }
        let result = SetSessionOptionsResult { errors };
        let mut response = Response::new(one_result(result.encode_to_vec()));
        response
            .metadata_mut()
            .insert("set-cookie", session.set_cookie()?);
        Ok(response)
    }

    /// GetSessionOptions: every option of the request's session, set or
    /// default.
    pub(super) fn get_session_options(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxedStream<ActionResult>>, Status> {
        let session = Session::of_request(request.metadata())?;
        let result = GetSessionOptionsResult {
            session_options: session.options(),
        };
        Ok(Response::new(one_result(result.encode_to_vec())))
    }

    /// CloseSession: the cookie is cleared; the next call starts from the
    /// defaults.
    pub(super) fn close_session(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxedStream<ActionResult>>, Status> {
        // A cookie we cannot read is closed all the same.
        let _ = Session::of_request(request.metadata());
        let result = CloseSessionResult {
            status: close_session_result::Status::Closed as i32,
        };
        let mut response = Response::new(one_result(result.encode_to_vec()));
        let expired = MetadataValue::try_from(format!("{SESSION_COOKIE}=; Path=/; Max-Age=0"))
            .map_err(|e| Status::internal(format!("encoding the session cookie failed: {e}")))?;
        response.metadata_mut().insert("set-cookie", expired);
        Ok(response)
    }
}
