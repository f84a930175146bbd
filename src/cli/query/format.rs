//! The output formats of `sagemaker-flight query`.

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
