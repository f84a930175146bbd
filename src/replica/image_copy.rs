//! The replica's latest version as an Arrow IPC file beside a local store,
//! so that a restarted server has it in memory in a few milliseconds.
//!
//! A restart's first query waits for the latest version in memory
//! (`image.rs`), and decoding its Parquet files was the largest part of
//! that wait. So each version the image reads from the files of a local
//! store is also written, in the background, to `_image/latest.arrow`
//! under the table's root (Delta readers and VACUUM leave a folder whose
//! name starts with `_` alone), and a store that opens reads that file
//! while its Delta tables open. With a copy of a 10,000-job store the
//! version is in memory before the server listens, and a restart's first
//! GetFlightInfo took 10-16 ms instead of 17-29 (medians of three
//! alternated runs).
//!
//! A copy is used only for the version it was made of: its footer names
//! the version and every data file of it. A version of one table never
//! changes, and data files get unique names, so a table made anew up to
//! the same version has other files. A missing copy, a torn one or one of
//! another version is not used: the Parquet files are read as before. A
//! copy is written under a temporary name and renamed, so a crash leaves
//! the old copy or the new one. An S3 store keeps none: there the copy,
//! several times the Parquet files' bytes, would be a PUT a commit and a
//! large GET a start.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use arrow::array::{Array, MutableArrayData, make_array};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use deltalake_core::DeltaTable;

use crate::replica::error::ReplicaError;
use crate::replica::location::StoreLocation;
use crate::table::schema::table_schema;

/// The copy's folder, under the table's root.
const COPY_FOLDER: &str = "_image";
/// The copy's file in it.
const COPY_FILE: &str = "latest.arrow";
/// A temporary file untouched this long is a write that will not finish.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);
/// The footer's metadata key naming the version the copy is of.
const VERSION_KEY_METADATA: &str = "sagemaker_flight.version_key";

/// What a version is: its number and the names of its data files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionKey {
    version: u64,
    /// Every data file's path, sorted, one a line.
    files: String,
}

impl VersionKey {
    /// The key of `table`'s loaded version; `None` before its first.
    pub fn of(table: &DeltaTable) -> Result<Option<VersionKey>, ReplicaError> {
        let Some(version) = table.version() else {
            return Ok(None);
        };
        let snapshot = table.snapshot()?;
        let mut files: Vec<String> = snapshot
            .log_data()
            .iter()
            .map(|file| file.path().to_string())
            .collect();
        files.sort_unstable();
        Ok(Some(VersionKey {
            version,
            files: files.join("\n"),
        }))
    }

    /// The version's number.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// As the copy's footer keeps it: the number, then the files.
    fn to_text(&self) -> String {
        format!("{}\n{}", self.version, self.files)
    }

    fn from_text(text: &str) -> Option<VersionKey> {
        let (version, files) = text.split_once('\n')?;
        Some(VersionKey {
            version: version.parse().ok()?,
            files: files.to_owned(),
        })
    }
}

/// A copy as read: the version it is of and its rows.
#[derive(Debug)]
pub struct CopiedVersion {
    /// The version.
    pub key: VersionKey,
    /// Its rows, in the live table's schema.
    pub batches: Vec<RecordBatch>,
}

/// The copy beside one local store.
#[derive(Debug)]
pub struct ImageCopy {
    path: PathBuf,
    /// Held through a write, so that this process writes one copy at a
    /// time: the version of the last one written, which a write of an
    /// older one (read before it, written after) leaves in place.
    written: Mutex<Option<u64>>,
}

impl ImageCopy {
    /// The copy of the store at `location` (as `--store` names it); `None`
    /// for a store that is not a local directory.
    pub fn beside(location: &str) -> Option<ImageCopy> {
        match StoreLocation::parse(location) {
            Ok(StoreLocation::Directory(directory)) => {
                Some(ImageCopy::at(&directory.join(COPY_FOLDER).join(COPY_FILE)))
            }
            _ => None,
        }
    }

    /// The copy kept in the file `path`.
    pub fn at(path: &Path) -> ImageCopy {
        ImageCopy {
            path: path.to_owned(),
            written: Mutex::new(None),
        }
    }

    /// Where the copy is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The copy's rows (blocking: it reads the file); `None` if there is
    /// none. A file that is not a whole copy in the table's schema is an
    /// error.
    pub fn read(&self) -> Result<Option<CopiedVersion>, ReplicaError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.failed(error)),
        };
        let reader = FileReader::try_new_buffered(file, None)?;
        if reader.schema().fields() != table_schema().fields() {
            return Err(self.failed("its columns are not the table's"));
        }
        let key = reader.custom_metadata().get(VERSION_KEY_METADATA);
        let Some(key) = key.and_then(|text| VersionKey::from_text(text)) else {
            return Err(self.failed("it does not say which version it is of"));
        };
        let batches = reader
            .map(|batch| own_buffers(&batch?))
            .collect::<Result<Vec<_>, ReplicaError>>()?;
        Ok(Some(CopiedVersion { key, batches }))
    }

    /// Makes `batches`, the rows of the version `key`, the copy (blocking:
    /// it writes and syncs the file, then renames it over the last copy),
    /// unless this process wrote one of a later version.
    pub fn write(&self, key: &VersionKey, batches: &[RecordBatch]) -> Result<(), ReplicaError> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if written.is_some_and(|version| version > key.version) {
            return Ok(());
        }
        if let Some(folder) = self.path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| self.failed(error))?;
        }
        let temporary = self
            .path
            .with_extension(format!("arrow.{}.tmp", std::process::id()));
        let made = (|| {
            let file = File::create(&temporary).map_err(|error| self.failed(error))?;
            let mut writer = FileWriter::try_new_buffered(file, &table_schema())?;
            writer.write_metadata(VERSION_KEY_METADATA, key.to_text());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            let file = writer
                .into_inner()?
                .into_inner()
                .map_err(|error| self.failed(error.into_error()))?;
            // Synced before the rename: after a power loss the name holds
            // this copy whole or the last one, never a part.
            file.sync_data().map_err(|error| self.failed(error))?;
            std::fs::rename(&temporary, &self.path).map_err(|error| self.failed(error))
        })();
        match made {
            Ok(()) => {
                *written = Some(key.version);
                self.remove_abandoned_writes();
            }
            // What is left of the temporary file is of no use.
            Err(_) => {
                let _ = std::fs::remove_file(&temporary);
            }
        }
        made
    }

    /// Deletes the temporary files of writes that never finished (a
    /// process killed while it wrote): those not touched for
    /// [`ABANDONED_AFTER`], so that another process's write under way stays.
    fn remove_abandoned_writes(&self) {
        let Some(entries) = self
            .path
            .parent()
            .and_then(|folder| std::fs::read_dir(folder).ok())
        else {
            return;
        };
        for entry in entries.flatten() {
            let abandoned = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_AFTER);
            if abandoned && entry.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The error of this copy that `reason` (an I/O error, or what is
    /// wrong with the file) explains.
    fn failed(&self, reason: impl std::fmt::Display) -> ReplicaError {
        ReplicaError::ImageCopy {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// `batch` with every column in buffers of its own. Read from an IPC file,
/// a batch's columns are slices of one buffer, and arrow-flight's encoder
/// sizes a batch by its columns' buffers, so that each column counted the
/// whole: a 4,096-row batch went out as 51 messages of 81 rows instead of
/// 2, and reads of 10,000 jobs took 23-47 ms instead of 17-23.
fn own_buffers(batch: &RecordBatch) -> Result<RecordBatch, ReplicaError> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            let data = column.to_data();
            let mut copy = MutableArrayData::new(vec![&data], false, data.len());
            copy.try_extend(0, 0, data.len())?;
            Ok(make_array(copy.freeze()))
        })
        .collect::<Result<Vec<_>, ReplicaError>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{JobRecord, JobSummary};
    use crate::table::convert::records_to_batch;
    use crate::table::schema::ALL_COLUMNS;
    use aws_sdk_sagemaker::types::{CompilationJobStatus, CompilationJobSummary};
    use aws_smithy_types::DateTime;

    /// `count` jobs' rows (of a listing only: the other columns null).
    fn rows(count: usize) -> RecordBatch {
        let records: Vec<JobRecord> = (0..count)
            .map(|index| {
                let name = format!("job-{index}");
                let summary = CompilationJobSummary::builder()
                    .compilation_job_name(&name)
                    .compilation_job_arn(format!(
                        "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}"
                    ))
                    .compilation_job_status(CompilationJobStatus::Completed)
                    .creation_time(DateTime::from_secs(1_700_000_000))
                    .build();
                JobRecord {
                    summary: JobSummary::try_from(summary).expect("a whole summary"),
                    describe: None,
                    tags: None,
                }
            })
            .collect();
        records_to_batch(&table_schema(), &ALL_COLUMNS, &records).expect("batch")
    }

    fn version_key(version: u64, files: &str) -> VersionKey {
        VersionKey {
            version,
            files: files.to_owned(),
        }
    }

    fn folder(name: &str) -> PathBuf {
        let folder = std::env::temp_dir().join(format!(
            "sagemaker-flight-image-copy-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&folder);
        folder
    }

    #[test]
    fn a_copy_reads_back_with_its_version_and_rows_and_a_missing_one_is_none() {
        let folder = folder("round-trip");
        let copy = ImageCopy::at(&folder.join(COPY_FOLDER).join(COPY_FILE));
        assert!(copy.read().expect("no copy yet").is_none());
        let first = version_key(3, "part-a.parquet");
        copy.write(&first, &[rows(2), rows(3)]).expect("written");
        let read = copy.read().expect("read").expect("a copy");
        assert_eq!(read.key, first);
        assert_eq!(read.batches, vec![rows(2), rows(3)]);
        // Each column holds buffers of its own, not the batch's whole body
        // (which every column would count, 21 times the batch in all).
        let buffers = |batch: &RecordBatch| -> usize {
            batch
                .columns()
                .iter()
                .map(|column| column.get_buffer_memory_size())
                .sum()
        };
        copy.write(&first, &[rows(1000)]).expect("written");
        let read = copy.read().expect("read").expect("a copy");
        assert_eq!(read.batches, vec![rows(1000)]);
        assert!(
            buffers(&read.batches[0]) <= buffers(&rows(1000)) * 3 / 2,
            "{} bytes of buffers for {} bytes of columns",
            buffers(&read.batches[0]),
            buffers(&rows(1000))
        );
        // A later version replaces it whole, and no temporary file stays.
        let later = version_key(4, "part-b.parquet");
        copy.write(&later, &[rows(1)]).expect("written");
        let read = copy.read().expect("read").expect("a copy");
        assert_eq!((&read.key, read.batches), (&later, vec![rows(1)]));
        // An older version written after it leaves it.
        copy.write(&first, &[rows(2)]).expect("skipped");
        assert_eq!(copy.read().expect("read").expect("a copy").key, later);
        let files = std::fs::read_dir(folder.join(COPY_FOLDER))
            .expect("folder")
            .count();
        assert_eq!(files, 1);
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn a_torn_copy_is_an_error_not_rows() {
        let folder = folder("torn");
        let copy = ImageCopy::at(&folder.join(COPY_FILE));
        copy.write(&version_key(1, ""), &[rows(5)])
            .expect("written");
        let whole = std::fs::read(copy.path()).expect("file");
        std::fs::write(copy.path(), &whole[..whole.len() / 2]).expect("torn");
        assert!(copy.read().is_err());
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn only_a_local_store_keeps_a_copy() {
        let copy = ImageCopy::beside("/var/lib/store").expect("a local store");
        assert_eq!(copy.path(), Path::new("/var/lib/store/_image/latest.arrow"));
        assert!(ImageCopy::beside("s3://bucket/prefix").is_none());
    }
}
