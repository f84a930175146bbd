//! Where the replica is kept, as `--store` names it: a local directory (a
//! path, or a `file://` URL) or an S3 prefix (`s3://bucket/prefix`).

use std::path::PathBuf;

/// A parsed `--store` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory on this machine (made if missing).
    Directory(PathBuf),
    /// A prefix of an S3 bucket (any S3-compatible endpoint).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix of the table, without leading or trailing `/`;
        /// empty: the bucket's root.
        prefix: String,
    },
}

impl StoreLocation {
    /// Parses `text`: `s3://bucket[/prefix]`, `file:///path`, or a path.
    /// Any other URL scheme is an error that says which ones work.
    pub fn parse(text: &str) -> Result<StoreLocation, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            if text.trim().is_empty() {
                return Err("is empty: name a directory or s3://bucket/prefix".to_owned());
            }
            return Ok(StoreLocation::Directory(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" if rest.starts_with('/') => Ok(StoreLocation::Directory(PathBuf::from(rest))),
            "file" => Err("a file:// URL names an absolute path (file:///var/lib/...)".to_owned()),
            "s3" | "s3a" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if !is_bucket_name(bucket) {
                    return Err(format!(
                        "{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and dashes)"
                    ));
                }
                Ok(StoreLocation::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                })
            }
            other => Err(format!(
                "{other}:// is not a store this server can use: name a directory, file:///path or s3://bucket/prefix"
            )),
        }
    }
}

/// Whether `name` can be an S3 bucket's name (the rules every
/// S3-compatible server shares).
fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_file_urls_and_s3_prefixes_parse() {
        assert_eq!(
            StoreLocation::parse("var/replica"),
            Ok(StoreLocation::Directory(PathBuf::from("var/replica")))
        );
        assert_eq!(
            StoreLocation::parse("file:///var/replica"),
            Ok(StoreLocation::Directory(PathBuf::from("/var/replica")))
        );
        assert_eq!(
            StoreLocation::parse("s3://ml-inventory/replica/neo/"),
            Ok(StoreLocation::S3 {
                bucket: "ml-inventory".to_owned(),
                prefix: "replica/neo".to_owned()
            })
        );
        assert_eq!(
            StoreLocation::parse("s3://ml-inventory"),
            Ok(StoreLocation::S3 {
                bucket: "ml-inventory".to_owned(),
                prefix: String::new()
            })
        );
    }

    #[test]
    fn other_schemes_bad_buckets_and_empty_text_are_refused_with_the_reason() {
        let error = |text: &str| StoreLocation::parse(text).unwrap_err();
        assert!(error("gs://bucket/x").contains("gs:// is not a store"));
        assert!(error("s3://Bad_Bucket/x").contains("not an S3 bucket name"));
        assert!(error("s3:///x").contains("not an S3 bucket name"));
        assert!(error("file://relative").contains("absolute path"));
        assert!(error("  ").contains("is empty"));
    }
}
