//! The table `aws.sagemaker_compilation_job`: its schema, the conversion of
//! SageMaker answers into Arrow, filter pushdown, the DataFusion
//! TableProvider and its scan, and the snapshot of the whole table.
//!
//! - [`schema`]: the one place that spells columns and their types.
//! - [`convert`] and [`batches`]: SageMaker answers into record batches,
//!   streamed as rows complete.
//! - [`pushdown`] (with [`api_filter`] and [`expr_parts`]): SQL filters
//!   into API parameters; [`exact_filter`]: the filters the scan answers
//!   exactly; [`top_pushdown`]: `ORDER BY ... LIMIT` into the listing;
//!   [`streamed_filter`]: filters over a live scan pass its rows on as
//!   they come.
//! - [`provider`], [`scan_plan`] and [`exec`]: the TableProvider, the calls
//!   a scan makes, and the scan.
//! - [`snapshot`]: the last complete `SELECT *`, for its TTL.
//!
//! May import: `source`, `obs`. Returns [`ScanError`]; the Flight edge
//! turns it into a status.

pub mod api_filter;
pub mod batches;
pub mod convert;
pub mod exact_filter;
pub mod exec;
pub mod expr_parts;
pub mod provider;
pub mod pushdown;
pub mod scan_plan;
pub mod schema;
pub mod snapshot;
pub mod streamed_filter;
pub mod top_pushdown;

pub use batches::{BatchSizing, ScanError, record_batches};
pub use provider::TableOptions;
