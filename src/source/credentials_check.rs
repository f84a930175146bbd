//! The start-up check that the AWS credential chain finds credentials, so
//! that a server without them says so at once, in one line, instead of
//! failing every query later.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sagemaker::config::ProvideCredentials;

/// How long the chain may look: long enough for SSO, web identity or a
/// container's credentials endpoint, short enough that a start-up with
/// none does not hang on the instance metadata service.
const CREDENTIALS_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What the user can do when the chain finds nothing.
const HOW_TO_FIX: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values for an \
     emulator), or AWS_PROFILE / --profile, or run where SSO, web identity, a container or the \
     instance metadata provides them; --allow-missing-credentials starts anyway";

/// Why the check failed: one line naming what was tried and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("no AWS credentials found: {reason}; {HOW_TO_FIX}")]
pub struct MissingCredentials {
    reason: String,
}

/// Asks `config`'s credential chain (environment, shared config and
/// credentials files, SSO, web identity, container and instance metadata)
/// for credentials, within [`CREDENTIALS_CHECK_TIMEOUT`]. Every partition
/// starts from these credentials (roles are assumed with them).
pub async fn check_credentials(config: &SdkConfig) -> Result<(), MissingCredentials> {
    let Some(provider) = config.credentials_provider() else {
        return Err(MissingCredentials {
            reason: "no credential provider is configured".to_owned(),
        });
    };
    match tokio::time::timeout(CREDENTIALS_CHECK_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(MissingCredentials {
            reason: format!(
                "the chain (environment, profile files, SSO, web identity, container, instance \
                 metadata) gave none: {}",
                crate::source::describe_chain(&error)
            ),
        }),
        Err(_) => Err(MissingCredentials {
            reason: format!(
                "the chain gave none within {}s",
                CREDENTIALS_CHECK_TIMEOUT.as_secs()
            ),
        }),
    }
}
