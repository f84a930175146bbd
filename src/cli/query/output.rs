//! Where and how `sagemaker-flight query` writes the rows: an aligned
//! table, CSV, JSON lines or Parquet, to stdout or to a file.
//!
//! A file is written under a temporary name beside it and renamed when
//! the whole result is in, so a failed query never leaves a truncated
//! file under the name asked for. Columns a format cannot hold as they
//! are become text first (`columns.rs`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::writer::LineDelimited;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::columns::{UnionAsVariant, adapt};
use super::error::QueryCliError;
use super::format::OutputFormat;

/// Where the rows go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, replaced once the result is complete.
    File(PathBuf),
}

impl Destination {
    /// The destination `--output` asks for; Parquet (binary) needs a file.
    pub fn of(format: OutputFormat, output: Option<&Path>) -> Result<Destination, QueryCliError> {
        match (format, output) {
            (_, Some(path)) => Ok(Destination::File(path.to_owned())),
            (OutputFormat::Parquet, None) => Err(QueryCliError::Usage(
                "--format parquet writes a binary file: give --output FILE".to_owned(),
            )),
            (_, None) => Ok(Destination::Stdout),
        }
    }

    fn describe(&self) -> String {
        match self {
            Destination::Stdout => "stdout".to_owned(),
            Destination::File(path) => path.display().to_string(),
        }
    }
}

type Out = Box<dyn Write + Send>;

/// The writer of one format, created with the result's first schema.
enum FormatWriter {
    /// The table needs every row to size its columns.
    Table(Vec<RecordBatch>, Out),
    Csv(arrow::csv::Writer<Out>),
    Jsonl(arrow::json::Writer<Out, LineDelimited>),
    Parquet(ArrowWriter<Out>),
}

/// Receives the result's batches and writes them in one format.
pub struct Sink {
    format: OutputFormat,
    destination: Destination,
    /// The temporary file beside the destination file, until renamed.
    partial: Option<PathBuf>,
    /// The output stream, until the writer takes it.
    out: Option<Out>,
    writer: Option<FormatWriter>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("format", &self.format)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Opens `destination` (a file: its temporary name) for `format`.
    pub fn open(format: OutputFormat, destination: Destination) -> Result<Sink, QueryCliError> {
        Sink::open_with(format, destination, false)
    }

    /// As [`Sink::open`], stdout written through line by line: a followed
    /// feed's rows reach a pipe as they come, not when a buffer fills
    /// (stdout is line-buffered itself). A file is written as by `open`.
    pub fn open_line_by_line(
        format: OutputFormat,
        destination: Destination,
    ) -> Result<Sink, QueryCliError> {
        Sink::open_with(format, destination, true)
    }

    fn open_with(
        format: OutputFormat,
        destination: Destination,
        line_by_line: bool,
    ) -> Result<Sink, QueryCliError> {
        let (out, partial): (Out, _) = match &destination {
            Destination::Stdout if line_by_line => (Box::new(std::io::stdout()), None),
            Destination::Stdout => (Box::new(BufWriter::new(std::io::stdout())), None),
            Destination::File(path) => {
                let partial = partial_path(path);
                let file = File::create(&partial).map_err(|e| QueryCliError::Output {
                    target: partial.display().to_string(),
                    reason: e.to_string(),
                })?;
                (Box::new(BufWriter::new(file)), Some(partial))
            }
        };
        Ok(Sink {
            format,
            destination,
            partial,
            out: Some(out),
            writer: None,
        })
    }

    /// Writes one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), QueryCliError> {
        let batch = adapt(self.format, batch).map_err(|e| self.error(e.to_string()))?;
        let writer = self.writer_for(&batch.schema())?;
        let written = match writer {
            FormatWriter::Table(batches, _) => {
                batches.push(batch);
                Ok(())
            }
            FormatWriter::Csv(writer) => writer.write(&batch),
            FormatWriter::Jsonl(writer) => writer.write(&batch),
            FormatWriter::Parquet(writer) => writer.write(&batch).map_err(ArrowError::from),
        };
        written.map_err(|e| self.error(e.to_string()))
    }

    /// Ends the output: the table is printed, CSV gets its header even
    /// with no rows (from `schema` when no batch came), Parquet its
    /// footer; a file takes its final name.
    pub fn finish(mut self, schema: Option<SchemaRef>) -> Result<(), QueryCliError> {
        if self.writer.is_none() {
            // No batch came: an empty one gives the table and CSV their
            // header, and Parquet its schema.
            let schema = schema.unwrap_or_else(|| Arc::new(Schema::empty()));
            self.write(&RecordBatch::new_empty(schema))?;
        }
        let mut out = match self.writer.take() {
            Some(FormatWriter::Table(batches, mut out)) => {
                let text = match batches.first() {
                    Some(first) => arrow::util::pretty::pretty_format_batches_with_schema(
                        first.schema(),
                        &batches,
                    ),
                    None => Err(ArrowError::InvalidArgumentError(
                        "no schema for the table".to_owned(),
                    )),
                }
                .map_err(|e| self.error(e.to_string()))?;
                writeln!(out, "{text}").map_err(|e| self.error(e.to_string()))?;
                out
            }
            Some(FormatWriter::Csv(writer)) => writer.into_inner(),
            Some(FormatWriter::Jsonl(mut writer)) => {
                writer.finish().map_err(|e| self.error(e.to_string()))?;
                writer.into_inner()
            }
            Some(FormatWriter::Parquet(writer)) => {
                writer.into_inner().map_err(|e| self.error(e.to_string()))?
            }
            None => return Err(self.error("nothing to write".to_owned())),
        };
        out.flush().map_err(|e| self.error(e.to_string()))?;
        drop(out);
        if let (Some(partial), Destination::File(path)) = (self.partial.take(), &self.destination) {
            std::fs::rename(&partial, path).map_err(|e| self.error(e.to_string()))?;
        }
        Ok(())
    }

    /// Gives up: a partly written file is removed.
    pub fn abandon(mut self) {
        self.writer = None;
        self.out = None;
        if let Some(partial) = self.partial.take() {
            let _ = std::fs::remove_file(partial);
        }
    }

    /// The writer, created for `schema` on first use.
    fn writer_for(&mut self, schema: &SchemaRef) -> Result<&mut FormatWriter, QueryCliError> {
        let writer = match self.writer.take() {
            Some(writer) => writer,
            None => self.new_writer(schema)?,
        };
        Ok(self.writer.insert(writer))
    }

    /// The format's writer over the output stream, for `schema`.
    fn new_writer(&mut self, schema: &SchemaRef) -> Result<FormatWriter, QueryCliError> {
        let out = self
            .out
            .take()
            .ok_or_else(|| self.error("the output is closed".to_owned()))?;
        Ok(match self.format {
            OutputFormat::Table => FormatWriter::Table(Vec::new(), out),
            OutputFormat::Csv => FormatWriter::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            ),
            OutputFormat::Jsonl => FormatWriter::Jsonl(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .with_encoder_factory(Arc::new(UnionAsVariant))
                    .build::<_, LineDelimited>(out),
            ),
            OutputFormat::Parquet => {
                let properties = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                FormatWriter::Parquet(
                    ArrowWriter::try_new(out, Arc::clone(schema), Some(properties))
                        .map_err(|e| self.error(e.to_string()))?,
                )
            }
        })
    }

    fn error(&self, reason: String) -> QueryCliError {
        QueryCliError::Output {
            target: self.destination.describe(),
            reason: super::error::one_line(&reason),
        }
    }
}

/// `path` with `.partial` added to its file name.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::*;
    use arrow::buffer::ScalarBuffer;
    use arrow::datatypes::{
        DataType, Field, Fields, IntervalDayTime, IntervalMonthDayNano, IntervalUnit, TimeUnit,
        UnionFields,
    };

    #[test]
    fn parquet_needs_a_file_and_others_default_to_stdout() {
        assert!(Destination::of(OutputFormat::Parquet, None).is_err());
        assert_eq!(
            Destination::of(OutputFormat::Csv, None).expect("csv"),
            Destination::Stdout
        );
        assert_eq!(
            Destination::of(OutputFormat::Parquet, Some(Path::new("out.parquet"))).expect("file"),
            Destination::File(PathBuf::from("out.parquet"))
        );
        assert_eq!(
            partial_path(Path::new("/tmp/x/out.csv")),
            PathBuf::from("/tmp/x/out.csv.partial")
        );
    }

    /// Two rows (a value, then NULL) of nearly every type a query can
    /// return, `json_get`'s union among them.
    fn every_type() -> RecordBatch {
        let mut columns: Vec<(&str, ArrayRef)> = vec![
            ("utf8", Arc::new(StringArray::from(vec![Some("a"), None]))),
            (
                "large_utf8",
                Arc::new(LargeStringArray::from(vec![Some("a"), None])),
            ),
            (
                "utf8_view",
                Arc::new(StringViewArray::from(vec![Some("a"), None])),
            ),
            ("int8", Arc::new(Int8Array::from(vec![Some(-1), None]))),
            ("int16", Arc::new(Int16Array::from(vec![Some(-1), None]))),
            ("int32", Arc::new(Int32Array::from(vec![Some(-1), None]))),
            ("int64", Arc::new(Int64Array::from(vec![Some(-1), None]))),
            ("uint8", Arc::new(UInt8Array::from(vec![Some(1), None]))),
            ("uint16", Arc::new(UInt16Array::from(vec![Some(1), None]))),
            ("uint32", Arc::new(UInt32Array::from(vec![Some(1), None]))),
            ("uint64", Arc::new(UInt64Array::from(vec![Some(1), None]))),
            (
                "float32",
                Arc::new(Float32Array::from(vec![Some(1.5), None])),
            ),
            (
                "float64",
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
            ),
            (
                "boolean",
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ),
            (
                "decimal",
                Arc::new(
                    Decimal128Array::from(vec![Some(12345), None])
                        .with_precision_and_scale(10, 2)
                        .expect("decimal"),
                ),
            ),
            (
                "date32",
                Arc::new(Date32Array::from(vec![Some(19000), None])),
            ),
            (
                "date64",
                Arc::new(Date64Array::from(vec![Some(1_700_000_000_000), None])),
            ),
            (
                "time64",
                Arc::new(Time64MicrosecondArray::from(vec![
                    Some(3_600_000_000),
                    None,
                ])),
            ),
            (
                "timestamp_utc",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_000), None])
                        .with_timezone("UTC"),
                ),
            ),
            (
                "timestamp_ns",
                Arc::new(TimestampNanosecondArray::from(vec![Some(1), None])),
            ),
            (
                "duration",
                Arc::new(DurationMicrosecondArray::from(vec![
                    Some(86_400_000_000),
                    None,
                ])),
            ),
            (
                "interval_ym",
                Arc::new(IntervalYearMonthArray::from(vec![Some(14), None])),
            ),
            (
                "interval_dt",
                Arc::new(IntervalDayTimeArray::from(vec![
                    Some(IntervalDayTime::new(7, 0)),
                    None,
                ])),
            ),
            (
                "interval_mdn",
                Arc::new(IntervalMonthDayNanoArray::from(vec![
                    Some(IntervalMonthDayNano::new(0, 7, 0)),
                    None,
                ])),
            ),
            (
                "binary",
                Arc::new(BinaryArray::from(vec![Some(&b"ab"[..]), None])),
            ),
            (
                "list",
                Arc::new(ListArray::from_iter_primitive::<
                    arrow::datatypes::Int64Type,
                    _,
                    _,
                >(vec![Some(vec![Some(1), None]), None])),
            ),
            (
                "struct",
                Arc::new(StructArray::new(
                    Fields::from(vec![Field::new("x", DataType::Int64, true)]),
                    vec![Arc::new(Int64Array::from(vec![Some(1), Some(2)]))],
                    Some(vec![true, false].into()),
                )),
            ),
            (
                "dictionary",
                Arc::new(
                    vec![Some("a"), None]
                        .into_iter()
                        .collect::<DictionaryArray<arrow::datatypes::Int32Type>>(),
                ),
            ),
            ("null", Arc::new(NullArray::new(2))),
        ];
        let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        tags.keys().append_value("team");
        tags.values().append_value("ml");
        tags.append(true).expect("entry");
        tags.append(false).expect("null map");
        columns.push(("map", Arc::new(tags.finish())));
        let fields = UnionFields::try_new(
            [0, 1],
            [
                Field::new("int", DataType::Int64, true),
                Field::new("object", DataType::Utf8, true),
            ],
        )
        .expect("fields");
        let union = UnionArray::try_new(
            fields,
            ScalarBuffer::from(vec![1, 0]),
            None,
            vec![
                Arc::new(Int64Array::from(vec![Some(0), None])),
                Arc::new(StringArray::from(vec![Some(r#"{"Os":"LINUX"}"#), Some("")])),
            ],
        )
        .expect("union");
        columns.push(("json_get", Arc::new(union)));
        RecordBatch::try_from_iter_with_nullable(
            columns.into_iter().map(|(name, array)| (name, array, true)),
        )
        .expect("batch")
    }

    #[test]
    fn every_type_is_written_by_every_format_without_a_panic() {
        let batch = every_type();
        assert!(
            matches!(
                batch
                    .schema()
                    .field_with_name("interval_mdn")
                    .map(|f| f.data_type().clone()),
                Ok(DataType::Interval(IntervalUnit::MonthDayNano))
            ) && batch
                .schema()
                .field_with_name("timestamp_ns")
                .is_ok_and(|f| {
                    f.data_type() == &DataType::Timestamp(TimeUnit::Nanosecond, None)
                })
        );
        let dir =
            std::env::temp_dir().join(format!("sagemaker-flight-formats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for format in [
            OutputFormat::Table,
            OutputFormat::Csv,
            OutputFormat::Jsonl,
            OutputFormat::Parquet,
        ] {
            let path = dir.join(format!("out-{format:?}"));
            let mut sink = Sink::open(format, Destination::File(path.clone())).expect("open");
            sink.write(&batch)
                .unwrap_or_else(|e| panic!("{format:?} refused a batch of every type: {e}"));
            sink.finish(Some(batch.schema()))
                .unwrap_or_else(|e| panic!("{format:?} could not finish: {e}"));
            assert!(
                !partial_path(&path).exists(),
                "{format:?} left its partial file"
            );
            let written = std::fs::read(&path).expect("the file");
            if format == OutputFormat::Parquet {
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        bytes::Bytes::from(written),
                    )
                    .expect("a Parquet file")
                    .build()
                    .expect("a reader");
                let read: Vec<RecordBatch> = reader.map(|b| b.expect("a batch")).collect();
                let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
                assert_eq!(rows, batch.num_rows());
                let schema = read[0].schema();
                let json = schema
                    .field_with_name("json_get")
                    .expect("the union column");
                assert_eq!(
                    json.data_type(),
                    &DataType::Utf8,
                    "a union becomes JSON text"
                );
                let texts = read[0]
                    .column_by_name("json_get")
                    .expect("column")
                    .as_string::<i32>();
                assert_eq!(texts.value(0), r#"{"Os":"LINUX"}"#);
                let interval = read[0].column_by_name("interval_mdn").expect("column");
                assert_eq!(interval.as_string::<i32>().value(0), "7 days");
            } else {
                let text = String::from_utf8(written).expect("text");
                assert!(
                    text.contains(r#"{"Os":"LINUX"}"#) || text.contains(r#"{""Os"":""LINUX""}"#),
                    "{format:?} writes the union's JSON: {text}"
                );
                assert!(
                    !text.contains("object="),
                    "{format:?} names the variant: {text}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
