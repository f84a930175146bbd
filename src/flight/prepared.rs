//! Prepared statements: the handle a client holds (a [`Statement`]), the
//! parameters bound to it, and the schemas Flight SQL describes them with.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_flight::{IpcMessage, SchemaAsIpc};
use datafusion::common::ParamValues;
use tonic::Status;

use crate::flight::sql_service::SqlService;
use crate::flight::ticket::Statement;
use crate::query::parameters_of_batch;

impl SqlService {
    /// A prepared handle as the client sent it, with the parameters last
    /// bound to it if the handle itself carries none.
    pub(super) fn prepared_statement(&self, handle: &[u8]) -> Result<Statement, Status> {
        let mut statement = Statement::decode_handle(handle)?;
        if statement.parameters.is_empty() && statement.prepared_id != 0 {
            let bound = self
                .bound
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(parameters) = bound.by_id.get(&statement.prepared_id) {
                statement.parameters = parameters.clone();
            }
        }
        Ok(statement)
    }
}

/// IPC bytes of a schema, as Flight SQL's dataset_schema / parameter_schema.
pub(super) fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| {
            Status::internal(format!("encoding the schema failed: {e}"))
        })?;
    Ok(bytes)
}

/// A parameter batch as the IPC stream a [`Statement`] carries.
pub(super) fn encode_parameters(batch: &RecordBatch) -> Result<Vec<u8>, Status> {
    let encode = || -> Result<Vec<u8>, arrow::error::ArrowError> {
        let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
        writer.write(batch)?;
        writer.into_inner()
    };
    encode().map_err(|e| Status::invalid_argument(format!("bad parameters: {e}")))
}

/// The parameters a [`Statement`] carries, `None` when it has none.
pub(super) fn decode_parameters(bytes: &[u8]) -> Result<Option<ParamValues>, Status> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let bad =
        |e: &dyn std::fmt::Display| Status::invalid_argument(format!("malformed parameters: {e}"));
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| bad(&e))?;
    let batch = match reader.next() {
        Some(batch) => batch.map_err(|e| bad(&e))?,
        None => return Ok(None),
    };
    Ok(Some(parameters_of_batch(&batch)?))
}
