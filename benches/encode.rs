//! FlightData encoding of a cached result: ~200,000 rows of all 21 columns,
//! already converted to record batches of 8192 rows (as a scan's full-size
//! batches), encoded with arrow-flight's `FlightDataEncoder` to completion.
//! This is the server's work per DoGet once the rows are in hand; the
//! SageMaker calls and the conversion are left out (`benches/convert.rs`
//! measures the conversion).
//!
//! ```sh
//! cargo bench --bench encode                  # full criterion run
//! cargo bench --bench encode -- --quick       # a short one
//! ```
//!
//! Throughput is given in rows and in encoded bytes (FlightData header,
//! body and app metadata, i.e. what goes to gRPC before protobuf framing).
//! Run by `cargo test --all-targets` (no `--bench` flag) it encodes a few
//! small batches once.

use std::hint::black_box;

use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::{TryStreamExt, stream};
use sagemaker_flight::table::convert::records_to_batch;
use sagemaker_flight::table::schema::{ALL_COLUMNS, table_schema};

// The realistic records (the emulator's jobs rebuilt with the SDK builders).
#[allow(dead_code)] // its own benchmarks and `main` are not used here
#[path = "convert.rs"]
mod convert;

/// Largest FlightData message, as the server's DoGet sets it
/// (`MAX_FLIGHT_DATA_BYTES` in src/flight/sql.rs): larger batches are split.
const MAX_FLIGHT_DATA_BYTES: usize = 4 * 1024 * 1024;

fn encoder_output(runtime: &tokio::runtime::Runtime, batches: Vec<RecordBatch>) -> Vec<FlightData> {
    runtime.block_on(async {
        FlightDataEncoderBuilder::new()
            .with_schema(table_schema())
            .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
            .build(stream::iter(batches.into_iter().map(Ok)))
            .try_collect::<Vec<_>>()
            .await
            .expect("encode")
    })
}

fn encode(c: &mut Criterion) {
    let (rows, batch_rows) = if convert::full_size() {
        (200_000, 8192)
    } else {
        (300, 128)
    };
    let records = convert::realistic_records(rows);
    let schema = table_schema();
    let batches: Vec<RecordBatch> = records
        .chunks(batch_rows)
        .map(|chunk| records_to_batch(&schema, &ALL_COLUMNS, chunk).expect("batch"))
        .collect();
    drop(records);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let encoded = encoder_output(&runtime, batches.clone());
    let bytes: usize = encoded
        .iter()
        .map(|m| m.data_header.len() + m.data_body.len() + m.app_metadata.len())
        .sum();
    let messages = encoded.len();
    drop(encoded);
    eprintln!(
        "encode: {rows} rows in {} batches -> {messages} FlightData messages, {:.1} MiB",
        batches.len(),
        bytes as f64 / (1024.0 * 1024.0)
    );

    let mut group = c.benchmark_group("flight_data_encode");
    group.throughput(Throughput::ElementsAndBytes {
        elements: rows as u64,
        bytes: bytes as u64,
    });
    // A large input per iteration: fewer samples keep a full run short.
    group.sample_size(20);
    group.bench_function(format!("all_columns_{rows}_rows_by_{batch_rows}"), |b| {
        b.iter_batched(
            || batches.clone(),
            |batches| black_box(encoder_output(&runtime, batches)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
