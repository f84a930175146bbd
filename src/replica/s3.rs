//! The replica on S3: an object store for one bucket, signed with the
//! credentials of the standard AWS configuration (environment, profile,
//! SSO, web identity, instance role: whatever aws-config finds), and the
//! Delta log store that commits through it.
//!
//! Commits are safe with several writers because each is written with a
//! conditional put (`If-None-Match: *`, object_store's
//! `S3ConditionalPut::ETagMatch`): of two writers of one version, exactly
//! one succeeds and the other sees the version taken, reloads and tries
//! again or fails its run. S3 has honoured conditional writes since 2024;
//! an S3-compatible server that does not must not hold a shared store.

use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use object_store::aws::{AmazonS3Builder, AwsCredential, S3ConditionalPut};
use object_store::{CredentialProvider, ObjectStore};
use tokio::sync::Mutex;
use url::Url;

/// The region of a bucket when the AWS configuration names none.
const DEFAULT_BUCKET_REGION: &str = "us-east-1";
/// How long before they expire credentials are fetched again.
const CREDENTIALS_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How the server reaches an S3 store: the standard AWS configuration,
/// with these overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Access {
    /// The AWS profile to read (`--profile`); `None`: the default chain.
    pub profile: Option<String>,
    /// An S3-compatible endpoint (`--store-endpoint-url`, or the standard
    /// `AWS_ENDPOINT_URL_S3`); `None`: AWS's own.
    pub endpoint_url: Option<String>,
    /// The bucket's region (`--store-region`); `None`: the configuration's.
    pub region: Option<String>,
}

/// The object store of `bucket`, rooted at the bucket.
pub async fn bucket_store(
    bucket: &str,
    access: &S3Access,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &access.profile {
        loader = loader.profile_name(profile);
    }
    let config = loader.load().await;
    let region = access.region.clone().unwrap_or_else(|| {
        config
            .region()
            .map_or(DEFAULT_BUCKET_REGION.to_owned(), ToString::to_string)
    });
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    if let Some(provider) = config.credentials_provider() {
        builder = builder.with_credentials(Arc::new(SdkCredentials::new(provider)));
    }
    if let Some(endpoint) = &access.endpoint_url {
        // A test's or an on-premises server: plain HTTP allowed only when
        // asked for by the URL itself.
        builder = builder
            .with_endpoint(endpoint.trim_end_matches('/'))
            .with_allow_http(endpoint.starts_with("http://"));
    }
    Ok(Arc::new(builder.build()?))
}

/// Lets deltalake open `s3://` tables over the store this module builds
/// (deltalake-core alone knows only local and in-memory ones). Idempotent.
pub fn register_log_store() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        if let Ok(scheme) = Url::parse("s3://") {
            logstore_factories().insert(scheme, Arc::new(ConditionalPutLogStore));
        }
    });
}

/// deltalake's default log store: every commit a `PutMode::Create` of the
/// next version's file, which the bucket store makes conditional.
#[derive(Debug)]
struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// The AWS SDK's credentials, cached until shortly before they expire
/// (the SDK's provider chain does not cache by itself).
#[derive(Debug)]
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    fn new(provider: SharedCredentialsProvider) -> SdkCredentials {
        SdkCredentials {
            provider,
            cached: Mutex::new(None),
        }
    }
}

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            let fresh =
                expiry.is_none_or(|expiry| SystemTime::now() + CREDENTIALS_REFRESH_MARGIN < expiry);
            if fresh {
                return Ok(Arc::clone(credential));
            }
        }
        let credentials = self.provider.provide_credentials().await.map_err(|error| {
            object_store::Error::Generic {
                store: "S3",
                source: format!("no AWS credentials for the store: {error}").into(),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            token: credentials.session_token().map(ToOwned::to_owned),
        });
        *cached = Some((Arc::clone(&credential), credentials.expiry()));
        Ok(credential)
    }
}
