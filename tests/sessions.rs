//! Session options (SetSessionOptions, GetSessionOptions, CloseSession):
//! `catalog` and `schema`, answered per option, carried in the session's
//! cookie so that any instance reads it, and taken into each statement's
//! ticket so that its DoGet needs no cookie.

mod common;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, FlightDescriptor, FlightInfo};
use common::{TestServer, emulator_config};
use futures::TryStreamExt;
use prost::Message;
use sagemaker_flight::flight::ticket::proto::session_option_value::OptionValue;
use sagemaker_flight::flight::ticket::proto::set_session_options_result::ErrorValue;
use sagemaker_flight::flight::ticket::proto::{
    CloseSessionResult, GetSessionOptionsResult, SessionOptionValue, SetSessionOptionsRequest,
    SetSessionOptionsResult, close_session_result,
};
use tonic::Request;
use tonic::transport::Channel;

const JOBS: usize = 30;

/// A request with the session's cookie, if any.
fn with_cookie<T>(message: T, cookie: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(cookie) = cookie {
        request
            .metadata_mut()
            .insert("cookie", cookie.parse().expect("cookie header"));
    }
    request
}

/// Runs the action `kind`: its one result's body, and the cookie the
/// response sets (`name=value`, without attributes), if any.
async fn action(
    channel: &Channel,
    kind: &str,
    body: Vec<u8>,
    cookie: Option<&str>,
) -> Result<(Vec<u8>, Option<String>), tonic::Status> {
    let mut client = FlightServiceClient::new(channel.clone());
    let action = Action {
        r#type: kind.to_owned(),
        body: body.into(),
    };
    let response = client.do_action(with_cookie(action, cookie)).await?;
    let set_cookie = response
        .metadata()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().to_owned());
    let results: Vec<_> = response.into_inner().try_collect().await?;
    assert_eq!(results.len(), 1, "one result");
    Ok((results[0].body.to_vec(), set_cookie))
}

fn string(value: &str) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(OptionValue::StringValue(value.to_owned())),
    }
}

async fn set(
    channel: &Channel,
    options: Vec<(&str, SessionOptionValue)>,
    cookie: Option<&str>,
) -> (SetSessionOptionsResult, String) {
    let request = SetSessionOptionsRequest {
        session_options: options
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    };
    let (body, set_cookie) = action(
        channel,
        "SetSessionOptions",
        request.encode_to_vec(),
        cookie,
    )
    .await
    .expect("SetSessionOptions");
    let result = SetSessionOptionsResult::decode(body.as_slice()).expect("result");
    (result, set_cookie.expect("a session cookie"))
}

/// The session's options as (name, string value) pairs, sorted.
async fn get(channel: &Channel, cookie: Option<&str>) -> Vec<(String, String)> {
    let (body, _) = action(channel, "GetSessionOptions", Vec::new(), cookie)
        .await
        .expect("GetSessionOptions");
    let result = GetSessionOptionsResult::decode(body.as_slice()).expect("result");
    let mut options: Vec<_> = result
        .session_options
        .into_iter()
        .map(|(name, value)| match value.option_value {
            Some(OptionValue::StringValue(text)) => (name, text),
            other => panic!("{name}: not a string: {other:?}"),
        })
        .collect();
    options.sort();
    options
}

fn options(catalog: &str, schema: &str) -> Vec<(String, String)> {
    vec![
        ("catalog".to_owned(), catalog.to_owned()),
        ("schema".to_owned(), schema.to_owned()),
    ]
}

/// GetFlightInfo of SQL text (a plain Flight CMD descriptor) in `cookie`'s session.
async fn flight_info(
    channel: &Channel,
    sql: &str,
    cookie: Option<&str>,
) -> Result<FlightInfo, tonic::Status> {
    let mut client = FlightServiceClient::new(channel.clone());
    let descriptor = FlightDescriptor::new_cmd(sql.to_owned());
    Ok(client
        .get_flight_info(with_cookie(descriptor, cookie))
        .await?
        .into_inner())
}

/// Rows of the first endpoint of `info`, read with no cookie.
async fn rows_of(server: &TestServer, info: FlightInfo) -> usize {
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<_> = server
        .client()
        .await
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("batches");
    batches.iter().map(|batch| batch.num_rows()).sum()
}

#[tokio::test]
async fn a_session_lives_in_its_cookie_so_any_instance_reads_it() {
    let first = TestServer::builder(emulator_config(JOBS)).start().await;
    let second = TestServer::builder(emulator_config(JOBS)).start().await;
    let (a, b) = (first.channel().await, second.channel().await);

    assert_eq!(get(&a, None).await, options("sagemaker", "aws"));
    let (result, cookie) = set(&a, vec![("schema", string("information_schema"))], None).await;
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert!(cookie.starts_with("arrow_flight_session_id="), "{cookie}");

    // Another instance, which never saw the session, reads it.
    assert_eq!(
        get(&b, Some(&cookie)).await,
        options("sagemaker", "information_schema")
    );
    // `tables` resolves in the session's schema, on either instance...
    let sql = "SELECT table_name FROM tables WHERE table_schema = 'aws'";
    let info = flight_info(&b, sql, Some(&cookie))
        .await
        .expect("in the session");
    // ...and the ticket carries it: read without the cookie.
    assert!(rows_of(&second, info).await >= 1);
    let outside = flight_info(&b, sql, None)
        .await
        .expect_err("no such table in aws");
    assert_eq!(outside.code(), tonic::Code::NotFound, "{outside}");

    // Back to the default schema: the table resolves unqualified again.
    let (result, cookie) = set(&a, vec![("schema", string("aws"))], Some(&cookie)).await;
    assert!(result.errors.is_empty());
    let info = flight_info(&a, "SELECT * FROM sagemaker_compilation_job", Some(&cookie))
        .await
        .expect("the table");
    assert_eq!(rows_of(&first, info).await, JOBS);
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn unknown_names_and_bad_values_are_refused_per_option() {
    let server = TestServer::builder(emulator_config(JOBS)).start().await;
    let channel = server.channel().await;
    let (result, cookie) = set(
        &channel,
        vec![
            ("catalog", string("no_such_catalog")),
            ("schema", string("information_schema")),
            ("colour", string("blue")),
        ],
        None,
    )
    .await;
    let mut errors: Vec<_> = result
        .errors
        .iter()
        .map(|(name, error)| (name.as_str(), error.value))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        vec![
            ("catalog", ErrorValue::InvalidValue as i32),
            ("colour", ErrorValue::InvalidName as i32),
        ]
    );
    // What was valid is set; what was not left as it was.
    assert_eq!(
        get(&channel, Some(&cookie)).await,
        options("sagemaker", "information_schema")
    );
    let not_a_string = SessionOptionValue {
        option_value: Some(OptionValue::BoolValue(true)),
    };
    let missing_schema = string("no_such_schema");
    for value in [not_a_string, missing_schema] {
        let (result, _) = set(&channel, vec![("schema", value)], Some(&cookie)).await;
        assert_eq!(
            result.errors["schema"].value,
            ErrorValue::InvalidValue as i32
        );
    }
    // A valueless option is unset: back to the default.
    let unset = SessionOptionValue { option_value: None };
    let (result, cookie) = set(&channel, vec![("schema", unset)], Some(&cookie)).await;
    assert!(result.errors.is_empty());
    assert_eq!(
        get(&channel, Some(&cookie)).await,
        options("sagemaker", "aws")
    );
    server.stop().await;
}

#[tokio::test]
async fn closing_clears_the_cookie_and_a_forged_one_is_invalid() {
    let server = TestServer::builder(emulator_config(JOBS)).start().await;
    let channel = server.channel().await;
    let (_, cookie) = set(
        &channel,
        vec![("schema", string("information_schema"))],
        None,
    )
    .await;
    let (body, cleared) = action(&channel, "CloseSession", Vec::new(), Some(&cookie))
        .await
        .expect("CloseSession");
    let result = CloseSessionResult::decode(body.as_slice()).expect("result");
    assert_eq!(result.status, close_session_result::Status::Closed as i32);
    assert_eq!(cleared.as_deref(), Some("arrow_flight_session_id="));
    assert_eq!(
        get(&channel, Some("arrow_flight_session_id=")).await,
        options("sagemaker", "aws")
    );

    let forged = "other=1; arrow_flight_session_id=not*a*session";
    let refused = flight_info(&channel, "SELECT 1", Some(forged))
        .await
        .expect_err("a cookie this server did not set");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused}");
    assert!(
        refused.message().contains("arrow_flight_session_id"),
        "{refused}"
    );

    // ListActions offers the three.
    let mut client = FlightServiceClient::new(channel.clone());
    let listed: Vec<_> = client
        .list_actions(arrow_flight::Empty {})
        .await
        .expect("list_actions")
        .into_inner()
        .try_collect()
        .await
        .expect("actions");
    let kinds: Vec<_> = listed.iter().map(|action| action.r#type.as_str()).collect();
    for kind in ["SetSessionOptions", "GetSessionOptions", "CloseSession"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    server.stop().await;
}
