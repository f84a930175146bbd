//! Where and how `sagemaker-flight query` writes the rows: an aligned
//! table, CSV, JSON lines or Parquet, to stdout or to a file.
//!
//! A file is written under a temporary name beside it and renamed when
//! the whole result is in, so a failed query never leaves a truncated
//! file under the name asked for. Columns a format cannot hold as they
//! are become text: in CSV, nested values (the `tags` map, lists,
//! structs, the union `json_get` returns) are written as JSON text; in
//! JSON lines, a union value is written as the JSON of its variant. The
//! object and array variants of `json_get`'s union hold JSON text, which
//! both formats write as the JSON it is (`{"Os":"LINUX"}`), not as a
//! string of it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder, UnionArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::writer::{
    Encoder, EncoderFactory, EncoderOptions, LineDelimited, NullableEncoder, make_encoder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::error::QueryCliError;

/// The output formats of `query --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table (arrow's pretty printer), written once the
    /// whole result is in.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object a line, every column a key (NULL as null).
    Jsonl,
    /// A Parquet file (Snappy), to `--output`.
    Parquet,
}

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
        let (out, partial): (Out, _) = match &destination {
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

/// `batch` with the columns `format` cannot hold turned to text: nested
/// columns for CSV. Other formats take the batch as it is.
fn adapt(format: OutputFormat, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if format != OutputFormat::Csv || !batch.schema().fields().iter().any(is_nested) {
        return Ok(batch.clone());
    }
    let options = EncoderOptions::default().with_encoder_factory(Arc::new(UnionAsVariant));
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if is_nested(field) {
            fields.push(Arc::new(Field::new(field.name(), DataType::Utf8, true)));
            columns.push(json_text(field, column, &options)?);
        } else {
            fields.push(Arc::clone(field));
            columns.push(Arc::clone(column));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn is_nested(field: &FieldRef) -> bool {
    field.data_type().is_nested()
}

/// Each value of `column` as JSON text (NULL stays NULL).
fn json_text(
    field: &FieldRef,
    column: &ArrayRef,
    options: &EncoderOptions,
) -> Result<ArrayRef, ArrowError> {
    let mut encoder = make_encoder(field, column.as_ref(), options)?;
    let mut texts = StringBuilder::with_capacity(column.len(), column.len() * 16);
    let mut buffer = Vec::new();
    for row in 0..column.len() {
        if encoder.is_null(row) {
            texts.append_null();
        } else {
            buffer.clear();
            encoder.encode(row, &mut buffer);
            texts.append_value(String::from_utf8_lossy(&buffer));
        }
    }
    Ok(Arc::new(texts.finish()))
}

/// Encodes a union value as the JSON of the variant it holds (arrow's
/// JSON writer has no encoder for unions; `json_get` returns one).
#[derive(Debug)]
struct UnionAsVariant;

impl EncoderFactory for UnionAsVariant {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        let DataType::Union(variants, _) = field.data_type() else {
            return Ok(None);
        };
        let Some(union) = array.as_any().downcast_ref::<UnionArray>() else {
            return Ok(None);
        };
        let children = variants
            .iter()
            .map(|(type_id, variant)| {
                let child = union.child(type_id);
                let encoder = if holds_json_text(variant) {
                    RawJson::encoder(child.as_ref())?
                } else {
                    make_encoder(variant, child.as_ref(), options)?
                };
                Ok((type_id, encoder))
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        let encoder = UnionEncoder { union, children };
        Ok(Some(NullableEncoder::new(
            Box::new(encoder),
            union.logical_nulls(),
        )))
    }
}

struct UnionEncoder<'a> {
    union: &'a UnionArray,
    children: Vec<(i8, NullableEncoder<'a>)>,
}

impl Encoder for UnionEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let type_id = self.union.type_id(idx);
        let offset = self.union.value_offset(idx);
        match self.children.iter_mut().find(|(id, _)| *id == type_id) {
            Some((_, child)) if !child.is_null(offset) => child.encode(offset, out),
            _ => out.extend_from_slice(b"null"),
        }
    }
}

/// Whether a union variant holds JSON text rather than a string: marked
/// as JSON (the `arrow.json` extension type, or the older `is_json`
/// metadata), or one of the `object` and `array` variants of
/// datafusion-functions-json, which hold JSON text in any of its versions.
fn holds_json_text(variant: &FieldRef) -> bool {
    if !matches!(
        variant.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return false;
    }
    let metadata = variant.metadata();
    metadata.get("ARROW:extension:name").map(String::as_str) == Some("arrow.json")
        || metadata.get("is_json").map(String::as_str) == Some("true")
        || matches!(variant.name().as_str(), "object" | "array")
}

/// Writes text that is JSON as that JSON, compacted onto one line; text
/// that is not JSON after all is written as a JSON string.
struct RawJson {
    texts: StringArray,
}

impl RawJson {
    fn encoder<'a>(array: &dyn Array) -> Result<NullableEncoder<'a>, ArrowError> {
        let texts = arrow::compute::cast(array, &DataType::Utf8)?;
        let texts = texts
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ArrowError::CastError("JSON text is not a string".to_owned()))?
            .clone();
        let nulls = texts.logical_nulls();
        Ok(NullableEncoder::new(Box::new(RawJson { texts }), nulls))
    }
}

impl Encoder for RawJson {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let text = self.texts.value(idx);
        if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            push_compact_json(text, out);
        } else {
            // Writing a String to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, text);
        }
    }
}

/// Valid JSON `text` without the whitespace between its tokens, so that a
/// pretty-printed document stays on its JSON line.
fn push_compact_json(text: &str, out: &mut Vec<u8>) {
    let (mut in_string, mut escaped) = (false, false);
    for &byte in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        } else if byte == b'"' {
            in_string = true;
        }
        out.push(byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array, MapBuilder};
    use arrow::buffer::ScalarBuffer;
    use arrow::datatypes::{UnionFields, UnionMode};

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

    #[test]
    fn csv_gets_nested_columns_as_json_text() {
        let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        tags.keys().append_value("team");
        tags.values().append_value("ml");
        tags.append(true).expect("entry");
        tags.append(false).expect("null map");
        let tags = tags.finish();
        let schema = Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("tags", tags.data_type().clone(), true),
            Field::new("n", DataType::Int64, false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(tags),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .expect("batch");
        let adapted = adapt(OutputFormat::Csv, &batch).expect("adapt");
        let texts = adapted.column(1).as_string::<i32>();
        assert_eq!(texts.value(0), r#"{"team":"ml"}"#);
        assert!(texts.is_null(1));
        assert_eq!(adapted.column(2).data_type(), &DataType::Int64);
        // Other formats keep the column as it is.
        let kept = adapt(OutputFormat::Jsonl, &batch).expect("kept");
        assert_eq!(kept.schema(), batch.schema());
    }

    /// A column like `json_get`'s: a sparse union whose object and array
    /// variants hold JSON text.
    fn json_union_batch() -> RecordBatch {
        let json = std::collections::HashMap::from([(
            "ARROW:extension:name".to_owned(),
            "arrow.json".to_owned(),
        )]);
        let fields = UnionFields::try_new(
            [2, 4, 5, 6],
            [
                Field::new("int", DataType::Int64, false),
                Field::new("str", DataType::Utf8, false),
                // Without metadata, as older versions sent it.
                Field::new("array", DataType::Utf8, false),
                Field::new("object", DataType::Utf8, false).with_metadata(json),
            ],
        )
        .expect("fields");
        let object = "{\"Os\": \"LINUX\",\n \"Arch\":\"X86_64\", \"Note\":\"a \\\" b\"}";
        let union = UnionArray::try_new(
            fields.clone(),
            ScalarBuffer::from(vec![6, 5, 4, 2, 6]),
            None,
            vec![
                Arc::new(Int64Array::from(vec![0, 0, 0, 900, 0])),
                Arc::new(StringArray::from(vec!["", "", "ml_c5", "", ""])),
                Arc::new(StringArray::from(vec!["", "[1, \"a\"]", "", "", ""])),
                Arc::new(StringArray::from(vec![object, "", "", "", "not json"])),
            ],
        )
        .expect("union");
        let schema = Schema::new(vec![Field::new(
            "p",
            DataType::Union(fields, UnionMode::Sparse),
            true,
        )]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(union)]).expect("batch")
    }

    #[test]
    fn json_text_in_a_union_is_written_as_json() {
        let batch = json_union_batch();
        let mut jsonl = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .with_encoder_factory(Arc::new(UnionAsVariant))
            .build::<_, LineDelimited>(Vec::new());
        jsonl.write(&batch).expect("write");
        jsonl.finish().expect("finish");
        let text = String::from_utf8(jsonl.into_inner()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"p":{"Os":"LINUX","Arch":"X86_64","Note":"a \" b"}}"#,
                r#"{"p":[1,"a"]}"#,
                r#"{"p":"ml_c5"}"#,
                r#"{"p":900}"#,
                r#"{"p":"not json"}"#,
            ]
        );

        // CSV: the same JSON, as text.
        let adapted = adapt(OutputFormat::Csv, &batch).expect("adapt");
        let texts = adapted.column(0).as_string::<i32>();
        assert_eq!(
            texts.value(0),
            r#"{"Os":"LINUX","Arch":"X86_64","Note":"a \" b"}"#
        );
        assert_eq!(texts.value(1), r#"[1,"a"]"#);
        assert_eq!(texts.value(2), r#""ml_c5""#);
        assert_eq!(texts.value(3), "900");
    }
}
