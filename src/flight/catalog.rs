//! Catalog metadata: the catalogs, schemas, tables and table types of the
//! session, as Flight SQL's metadata commands answer them.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::ProstMessageExt;
use arrow_flight::{FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::stream::{self, StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Response, Status};

use crate::flight::column_metadata::{ColumnTable, table_with_metadata};
use crate::flight::sql_service::{BoxedStream, SqlService};

impl SqlService {
    /// The tables of the session: (catalog, schema, table, type, schema).
    pub(super) async fn tables(&self) -> Vec<(String, String, String, &'static str, Arc<Schema>)> {
        let context = self.engine.context();
        let mut tables = Vec::new();
        for catalog_name in context.catalog_names() {
            let Some(catalog) = context.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table_name in schema.table_names() {
                    if let Ok(Some(table)) = schema.table(&table_name).await {
                        let kind = match table.table_type() {
                            datafusion::datasource::TableType::View => "VIEW",
                            _ => "TABLE",
                        };
                        let columns = table_with_metadata(
                            ColumnTable {
                                catalog: &catalog_name,
                                schema: &schema_name,
                                table: &table_name,
                            },
                            &table.schema(),
                        );
                        tables.push((
                            catalog_name.clone(),
                            schema_name.clone(),
                            table_name,
                            kind,
                            columns,
                        ));
                    }
                }
            }
        }
        tables.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        tables
    }

    pub(super) fn metadata_flight_info(
        command: impl ProstMessageExt,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(command.as_any().encode_to_vec());
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("encoding the schema failed: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }
}

/// A one-batch metadata answer as a FlightData stream.
pub(super) fn batch_stream(
    batch: Result<RecordBatch, FlightError>,
) -> Result<Response<BoxedStream<FlightData>>, Status> {
    let batch = batch.map_err(|e| Status::internal(format!("building metadata failed: {e}")))?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::iter([Ok(batch)]))
        .map_err(Status::from)
        .inspect_ok(|data| {
            crate::obs::metrics::flight_data_sent(data);
        });
    Ok(Response::new(stream.boxed()))
}
