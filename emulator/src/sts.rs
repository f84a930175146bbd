//! STS in the AWS query protocol, as `aws-sdk-sts` and
//! `aws_config::sts::AssumeRoleProvider` call it: `POST /` with a
//! form-urlencoded body `Action=...&Version=2011-06-15&...`, XML back
//! (`<ActionResponse><ActionResult>...</ActionResult><ResponseMetadata>
//! ...`), errors as [`ApiError::into_xml_response`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{ApiError, xml_escape, xml_response};
use super::form;
use super::paging::fnv;
use super::tenancy::{Caller, RoleSession, Tenancy};
use super::validate::Problems;

/// How long issued credentials last unless `DurationSeconds` says
/// otherwise (AWS's default).
const DEFAULT_SESSION: Duration = Duration::from_secs(3600);

/// Answers one STS call of `caller`; `now` is the wall-clock time.
pub(crate) fn answer(tenancy: &Tenancy, caller: &Caller, body: &[u8], now: SystemTime) -> Response {
    let request_id = request_id();
    let params = match form::decode(body) {
        Ok(params) => params,
        Err(e) => {
            return ApiError::new(400, "MalformedQueryString", e).into_xml_response(&request_id);
        }
    };
    let action = form::value(&params, "Action").unwrap_or_default();
    let result = match action {
        "AssumeRole" => {
            tenancy.count_call(action);
            assume_role(tenancy, caller, &params, now)
        }
        "GetCallerIdentity" => {
            tenancy.count_call(action);
            Ok(caller_identity(caller))
        }
        _ => Err(ApiError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version 2011-06-15"),
        )),
    };
    match result {
        Ok(inner) => {
            let body = format!(
                "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <{action}Result>\n{inner}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n"
            );
            xml_response(StatusCode::OK, body, &request_id)
        }
        Err(e) => {
            tracing::debug!(action, code = e.code, "{}", e.message);
            e.into_xml_response(&request_id)
        }
    }
}

/// `AssumeRole`: credentials acting in the role's account, if the role is
/// configured and the external id is the one it requires.
fn assume_role(
    tenancy: &Tenancy,
    caller: &Caller,
    params: &[(String, String)],
    now: SystemTime,
) -> Result<String, ApiError> {
    let role_arn = form::value(params, "RoleArn");
    let session_name = form::value(params, "RoleSessionName");
    let external_id = form::value(params, "ExternalId");
    let mut p = Problems::new();
    if p.require("roleArn", &role_arn) {
        p.length("roleArn", role_arn.unwrap_or_default(), 20, 2048);
    }
    if p.require("roleSessionName", &session_name) {
        let name = session_name.unwrap_or_default();
        if p.length("roleSessionName", name, 2, 64) {
            p.pattern(
                "roleSessionName",
                name,
                is_sts_text(name, ""),
                "[\\w+=,.@-]*",
            );
        }
    }
    if let Some(id) = external_id
        && p.length("externalId", id, 2, 1224)
    {
        p.pattern("externalId", id, is_sts_text(id, ":/"), "[\\w+=,.@:\\/-]*");
    }
    let duration = match form::value(params, "DurationSeconds") {
        None => DEFAULT_SESSION,
        Some(text) => match text.parse::<i64>() {
            Ok(secs) => {
                p.range("durationSeconds", secs, 900, 43_200);
                Duration::from_secs(secs.clamp(900, 43_200).unsigned_abs())
            }
            Err(_) => {
                p.other(format!(
                    "Value '{text}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer"
                ));
                DEFAULT_SESSION
            }
        },
    };
    // STS names its validation error `ValidationError`, not SageMaker's
    // `ValidationException`.
    p.finish().map_err(|e| ApiError {
        code: "ValidationError",
        ..e
    })?;
    let role_arn = role_arn.unwrap_or_default();
    let granted_account = tenancy
        .role(role_arn)
        .filter(|role| {
            role.external_id
                .as_deref()
                .is_none_or(|required| external_id == Some(required))
        })
        .and_then(|role| role.account_id());
    let Some(account) = granted_account else {
        tenancy.count_denied();
        return Err(ApiError::new(
            403,
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.arn()
            ),
        ));
    };
    tenancy.count_assumed(role_arn);
    let session = RoleSession {
        role_arn: role_arn.to_string(),
        session_name: session_name.unwrap_or_default().to_string(),
    };
    let expiration = iso8601(now + duration)?;
    let secret: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(40)
        .collect();
    Ok(format!(
        "    <Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{expiration}</Expiration>\n    </Credentials>\n    <AssumedRoleUser>\n      <AssumedRoleId>{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n",
        tenancy.issue_key(account),
        session.token(),
        xml_escape(&session.assumed_role_id()),
        xml_escape(&session.assumed_role_arn()),
    ))
}

/// `GetCallerIdentity`: the account, ARN and id of the signing principal.
fn caller_identity(caller: &Caller) -> String {
    let user_id = match &caller.session {
        Some(session) => session.assumed_role_id(),
        None => format!("AIDA{:016X}", fnv(caller.account.as_bytes())),
    };
    format!(
        "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
        xml_escape(&caller.arn()),
        xml_escape(&user_id),
        xml_escape(&caller.account),
    )
}

/// `2026-11-29T21:00:00Z`, whole seconds, as STS writes expirations.
fn iso8601(t: SystemTime) -> Result<String, ApiError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .map_err(|e| ApiError::new(500, "InternalFailure", e.to_string()))
}

/// Letters, digits, `_` and `+=,.@-`, plus the `extra` characters: the
/// patterns of STS's session names and external ids.
fn is_sts_text(text: &str, extra: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) || extra.contains(c))
}

/// A random request id in UUID form, as AWS sends them.
fn request_id() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(0x8000..0xC000),
        fastrand::u64(..1 << 48),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_are_whole_utc_seconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(iso8601(t).expect("formats"), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn session_names_and_external_ids_follow_the_model() {
        assert!(is_sts_text("session-1_a+b=c,d.e@f", ""));
        assert!(!is_sts_text("a/b", ""));
        assert!(is_sts_text("ext:1/2", ":/"));
        assert!(!is_sts_text("a b", ":/"));
    }
}
