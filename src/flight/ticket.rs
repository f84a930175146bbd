//! Tickets and prepared-statement handles: the protobuf `Statement` of
//! `proto/ticket.proto`, carried in Flight SQL's `TicketStatementQuery`.
//! Self-contained, so any instance can serve a ticket another one issued.

use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use prost::Message;
use tonic::Status;

use crate::query::NameDefaults;
use crate::source::PartitionKey;

/// The generated protobuf types of `proto/ticket.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/sagemaker_flight.v1.rs"));
}

pub use proto::Statement;

/// [`Statement::whole_table`]'s SQL, before the table name.
const WHOLE_TABLE_PREFIX: &str = "SELECT * FROM ";

impl Statement {
    /// A statement without parameters.
    pub fn new(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            parameters: Vec::new(),
            prepared_id: 0,
            partition: None,
            catalog: String::new(),
            schema: String::new(),
            query_id: 0,
        }
    }

    /// This statement with a query id of its own: the tickets of one
    /// FlightInfo, which a cancel of that FlightInfo names.
    pub fn for_one_query(self) -> Statement {
        Statement {
            query_id: fastrand::u64(1..),
            ..self
        }
    }

    /// This statement with the default catalog and schema of `session`.
    pub fn in_session(self, session: &proto::Session) -> Statement {
        Statement {
            catalog: session.catalog.clone(),
            schema: session.schema.clone(),
            ..self
        }
    }

    /// Where its unqualified table names resolve (its session's options).
    pub fn name_defaults(&self) -> NameDefaults {
        proto::Session {
            catalog: self.catalog.clone(),
            schema: self.schema.clone(),
        }
        .name_defaults()
    }

    /// The statement a PATH descriptor of the table stands for: every row
    /// and column.
    pub fn whole_table() -> Statement {
        Statement::new(format!(
            "{WHOLE_TABLE_PREFIX}{}",
            crate::table::schema::TABLE_NAME
        ))
    }

    /// Whether this is [`Statement::whole_table`] (whichever handle it came in).
    pub fn is_whole_table(&self) -> bool {
        self.parameters.is_empty()
            && self.partition.is_none()
            && self.sql.strip_prefix(WHOLE_TABLE_PREFIX) == Some(crate::table::schema::TABLE_NAME)
    }

    /// A prepared statement's handle: the SQL and an id of its own.
    pub fn prepared(sql: impl Into<String>) -> Statement {
        Statement {
            prepared_id: fastrand::u64(1..),
            ..Statement::new(sql)
        }
    }

    /// This statement over `key` only.
    pub fn in_partition(&self, key: &PartitionKey) -> Statement {
        Statement {
            partition: Some(proto::Partition {
                account_id: key.account_id.clone().unwrap_or_default(),
                region: key.region.clone().unwrap_or_default(),
            }),
            ..self.clone()
        }
    }

    /// The partition this statement is restricted to, if any.
    pub fn partition_key(&self) -> Option<PartitionKey> {
        let known = |field: &str| (!field.is_empty()).then(|| field.to_owned());
        self.partition.as_ref().map(|partition| PartitionKey {
            account_id: known(&partition.account_id),
            region: known(&partition.region),
        })
    }

    /// The DoGet ticket that runs this statement.
    pub fn to_ticket(&self) -> arrow_flight::Ticket {
        let ticket = TicketStatementQuery {
            statement_handle: self.encode_to_vec().into(),
        };
        arrow_flight::Ticket::new(ticket.as_any().encode_to_vec())
    }

    /// The statement of a DoGet ticket this server issued; anything else
    /// is INVALID_ARGUMENT.
    pub fn from_ticket(ticket: &arrow_flight::Ticket) -> Result<Statement, Status> {
        let any = Any::decode(ticket.ticket.as_ref())
            .map_err(|e| Status::invalid_argument(format!("malformed ticket: {e}")))?;
        let query: TicketStatementQuery = any
            .unpack()
            .map_err(|e| Status::invalid_argument(format!("malformed ticket: {e}")))?
            .ok_or_else(|| Status::invalid_argument("not a ticket this server issued"))?;
        Statement::decode_handle(&query.statement_handle)
    }

    /// Decodes a statement handle sent back by a client; anything that is
    /// not one of ours is INVALID_ARGUMENT.
    pub fn decode_handle(bytes: &[u8]) -> Result<Statement, Status> {
        let statement = Statement::decode(bytes)
            .map_err(|e| Status::invalid_argument(format!("malformed statement handle: {e}")))?;
        if statement.sql.trim().is_empty() {
            return Err(Status::invalid_argument(
                "malformed statement handle: it holds no SQL",
            ));
        }
        Ok(statement)
    }
}

/// Refuses, as INVALID_ARGUMENT, a Flight SQL command or ticket whose
/// message does not decode. (arrow-flight's dispatch would call it an
/// internal error, but the fault is the client's.)
pub fn check_flight_sql_command(bytes: &[u8]) -> Result<(), Status> {
    let any = Any::decode(bytes).map_err(|e| {
        Status::invalid_argument(format!("malformed Flight SQL command or ticket: {e}"))
    })?;
    let type_url = any.type_url.clone();
    arrow_flight::sql::Command::try_from(any)
        .map(|_| ())
        .map_err(|e| {
            Status::invalid_argument(crate::flight::status::cap_message(format!(
                "malformed Flight SQL message {type_url:?}: {e}"
            )))
        })
}

/// Whether `bytes` are a protobuf `Any` holding a Flight SQL command.
pub fn is_flight_sql_command(bytes: &[u8]) -> bool {
    Any::decode(bytes).is_ok_and(|any| {
        any.type_url
            .starts_with("type.googleapis.com/arrow.flight.protocol.sql.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_ticket_round_trips() {
        let statement = Statement {
            sql: "SELECT 1".into(),
            parameters: vec![1, 2, 3],
            prepared_id: 9,
            partition: None,
            catalog: "sagemaker".into(),
            schema: "information_schema".into(),
            query_id: 11,
        };
        let ticket = statement.to_ticket();
        let any = Any::decode(&*ticket.ticket).expect("an Any");
        let inner: TicketStatementQuery = any.unpack().expect("unpack").expect("a ticket");
        assert_eq!(
            Statement::decode_handle(&inner.statement_handle).expect("ok"),
            statement
        );
        assert!(is_flight_sql_command(&ticket.ticket));
        assert!(Statement::whole_table().is_whole_table());
        assert!(!statement.is_whole_table());
        let key = PartitionKey::new("111122223333", "eu-west-1");
        let split = Statement::whole_table().in_partition(&key);
        assert!(!split.is_whole_table());
        let any = Any::decode(&*split.to_ticket().ticket).expect("an Any");
        let inner: TicketStatementQuery = any.unpack().expect("unpack").expect("a ticket");
        let decoded = Statement::decode_handle(&inner.statement_handle).expect("ok");
        assert_eq!(decoded.partition_key(), Some(key));
        assert_eq!(Statement::whole_table().partition_key(), None);
    }

    #[test]
    fn garbage_handles_are_invalid_argument() {
        for bytes in [&b"\xff\xff\xff"[..], b"", b"\x0a\x00"] {
            let status = Statement::decode_handle(bytes).expect_err("not a handle");
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bytes:?}");
        }
        assert!(!is_flight_sql_command(b"SELECT 1"));
        let broken = Any {
            type_url: "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery".into(),
            value: vec![0x0a, 0xff, 0xff].into(),
        };
        for bytes in [broken.encode_to_vec(), b"\xff\xff".to_vec()] {
            let status = check_flight_sql_command(&bytes).expect_err("malformed");
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
        assert!(check_flight_sql_command(&Statement::new("SELECT 1").to_ticket().ticket).is_ok());
    }
}
