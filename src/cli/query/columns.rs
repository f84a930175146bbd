//! Columns a format cannot hold as they are, and the text they are written
//! as instead.
//!
//! - CSV: nested values (the `tags` map, lists, structs, the union
//!   `json_get` returns) as JSON text.
//! - Parquet and the table: a union (anywhere in the column's type) as JSON
//!   text: Parquet has no union type (its writer panics on one), and the
//!   table would print the variant's name around the value
//!   (`{object={...}}`). Parquet also has no month-day-nanosecond interval
//!   (`INTERVAL '7 days'`, `now() - INTERVAL ...` arithmetic): those are
//!   written as their text (`7 days`).
//! - JSON lines: a union value as the JSON of its variant.
//!
//! The object and array variants of `json_get`'s union hold JSON text,
//! which every format writes as the JSON it is (`{"Os":"LINUX"}`), not as
//! a string of it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder, UnionArray};
use arrow::datatypes::{DataType, Field, FieldRef, IntervalUnit, Schema};
use arrow::error::ArrowError;
use arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::format::OutputFormat;

/// The text a column is written as, when its format cannot hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextForm {
    /// Each value's JSON.
    Json,
    /// Each value as arrow displays it.
    Display,
}

/// The text `format` needs for a column of `data_type`, if it cannot hold
/// the column as it is.
fn text_form(format: OutputFormat, data_type: &DataType) -> Option<TextForm> {
    match format {
        OutputFormat::Csv if data_type.is_nested() => Some(TextForm::Json),
        OutputFormat::Parquet | OutputFormat::Table if contains_union(data_type) => {
            Some(TextForm::Json)
        }
        OutputFormat::Parquet
            if matches!(data_type, DataType::Interval(IntervalUnit::MonthDayNano)) =>
        {
            Some(TextForm::Display)
        }
        _ => None,
    }
}

/// Whether `data_type` is a union or holds one.
fn contains_union(data_type: &DataType) -> bool {
    match data_type {
        DataType::Union(..) => true,
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::LargeListView(field)
        | DataType::FixedSizeList(field, _)
        | DataType::Map(field, _) => contains_union(field.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| contains_union(f.data_type())),
        DataType::Dictionary(_, value) => contains_union(value),
        DataType::RunEndEncoded(_, value) => contains_union(value.data_type()),
        _ => false,
    }
}

/// `batch` with the columns `format` cannot hold turned to text (see the
/// module doc); a batch it holds as it is comes back unchanged.
pub fn adapt(format: OutputFormat, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|field| text_form(format, field.data_type()).is_some())
    {
        return Ok(batch.clone());
    }
    let options = EncoderOptions::default().with_encoder_factory(Arc::new(UnionAsVariant));
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let text = match text_form(format, field.data_type()) {
            None => {
                fields.push(Arc::clone(field));
                columns.push(Arc::clone(column));
                continue;
            }
            Some(TextForm::Json) => json_text(field, column, &options)?,
            Some(TextForm::Display) => display_text(column)?,
        };
        fields.push(Arc::new(Field::new(field.name(), DataType::Utf8, true)));
        columns.push(text);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Each value of `column` as arrow displays it (NULL stays NULL).
fn display_text(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let formatter = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
    let mut texts = StringBuilder::with_capacity(column.len(), column.len() * 16);
    for row in 0..column.len() {
        if column.is_null(row) {
            texts.append_null();
        } else {
            texts.append_value(formatter.value(row).to_string());
        }
    }
    Ok(Arc::new(texts.finish()))
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
pub struct UnionAsVariant;

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
    use arrow::json::writer::LineDelimited;

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
