//! Service-model constraint checks, reported the way AWS reports them:
//! `N validation error(s) detected: Value 'x' at 'member' failed to satisfy
//! constraint: ...; ...`. Member paths are camelCase as in AWS messages.
//!
//! Patterns are checked by hand-written predicates that mirror the model's
//! regexes (the crate has no regex dependency and these are all simple).

use super::error::ApiError;

/// Collects constraint violations of one request.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, value: &str, at: &str, constraint: &str) {
        self.0.push(format!(
            "Value '{value}' at '{at}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// A required member is missing.
    pub(crate) fn require<T>(&mut self, at: &str, v: &Option<T>) -> bool {
        if v.is_none() {
            self.0.push(format!(
                "Value null at '{at}' failed to satisfy constraint: Member must not be null"
            ));
            return false;
        }
        true
    }

    /// Value must be one of `allowed`.
    pub(crate) fn one_of(&mut self, at: &str, v: &str, allowed: &[&str]) {
        if !allowed.contains(&v) {
            self.push(
                v,
                at,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// Length (in characters) within `min..=max`.
    pub(crate) fn length(&mut self, at: &str, v: &str, min: usize, max: usize) -> bool {
        let n = v.chars().count();
        if n < min {
            self.push(
                v,
                at,
                &format!("Member must have length greater than or equal to {min}"),
            );
            false
        } else if n > max {
            self.push(
                v,
                at,
                &format!("Member must have length less than or equal to {max}"),
            );
            false
        } else {
            true
        }
    }

    /// Integer within `min..=max`.
    pub(crate) fn range(&mut self, at: &str, v: i64, min: i64, max: i64) {
        if v < min {
            self.push(
                &v.to_string(),
                at,
                &format!("Member must have value greater than or equal to {min}"),
            );
        } else if v > max {
            self.push(
                &v.to_string(),
                at,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// Value must match the model's `pattern` (already evaluated as `ok`).
    pub(crate) fn pattern(&mut self, at: &str, v: &str, ok: bool, pattern: &str) {
        if !ok {
            self.push(
                v,
                at,
                &format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
    }

    /// A free-form violation (e.g. "exactly one of").
    pub(crate) fn other(&mut self, message: String) {
        self.0.push(message);
    }

    /// `Ok` when nothing was found, else one `ValidationException`.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.0[0]
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

/// `EntityName`: `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, 1..=63 characters.
pub(crate) fn is_entity_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `NameContains`: `[a-zA-Z0-9\-]+`.
pub(crate) fn is_name_fragment(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// `S3Uri`: `(https|s3)://([^/]+)/?(.*)`.
pub(crate) fn is_s3_uri(s: &str) -> bool {
    let rest = s
        .strip_prefix("s3://")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// Strips `arn:aws[a-z\-]*:` (the partition) and returns the rest.
fn after_partition(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("arn:aws")?;
    let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c == '-'))?;
    rest[end..].strip_prefix(':')
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit())
}

/// `RoleArn`: `arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`.
pub(crate) fn is_role_arn(s: &str) -> bool {
    let Some(rest) = after_partition(s).and_then(|r| r.strip_prefix("iam::")) else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(path) = rest.strip_prefix("role") else {
        return false;
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    is_account(account)
        && !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c))
}

/// `arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:<rest>`; returns `<rest>`.
fn sagemaker_resource(s: &str) -> Option<&str> {
    let rest = after_partition(s)?.strip_prefix("sagemaker:")?;
    let (region, rest) = rest.split_once(':')?;
    let (account, resource) = rest.split_once(':')?;
    let region_ok = region
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    (region_ok && is_account(account)).then_some(resource)
}

/// `ResourceArn`: `arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+`.
pub(crate) fn is_resource_arn(s: &str) -> bool {
    sagemaker_resource(s).is_some_and(|r| !r.is_empty())
}

/// `ModelPackageArn` (loosely: any SageMaker `model-package/...` ARN).
pub(crate) fn is_model_package_arn(s: &str) -> bool {
    sagemaker_resource(s)
        .is_some_and(|r| r.len() > "model-package/".len() && r.starts_with("model-package/"))
}

/// `FrameworkVersion`: `[0-9]\.[A-Za-z0-9.]+`.
pub(crate) fn is_framework_version(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && b[0].is_ascii_digit()
        && b[1] == b'.'
        && b[2..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.')
}

/// `NeoVpcSecurityGroupId` / `NeoVpcSubnetId`: `[-0-9a-zA-Z]+`.
pub(crate) fn is_vpc_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// `KmsKeyId`: `[a-zA-Z0-9:/_-]*`.
pub(crate) fn is_kms_key_id(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b":/_-".contains(&c))
}

/// `TagKey` / `TagValue`: `([\p{L}\p{Z}\p{N}_.:/=+\-@]*)`.
pub(crate) fn is_tag_text(s: &str) -> bool {
    // `char::is_whitespace` is a superset of \p{Z}, close enough here.
    s.chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c.is_whitespace() || "_.:/=+-@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_the_model() {
        assert!(is_entity_name("a"));
        assert!(is_entity_name("a--b"));
        assert!(!is_entity_name("-a"));
        assert!(!is_entity_name("a-"));
        assert!(!is_entity_name("a_b"));
        assert!(!is_entity_name(&"a".repeat(64)));
        assert!(is_role_arn("arn:aws:iam::123456789012:role/service-role/X"));
        assert!(!is_role_arn("arn:aws:iam::12345:role/X"));
        assert!(is_resource_arn(
            "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/x"
        ));
        assert!(!is_resource_arn("arn:aws:s3:::bucket"));
        assert!(is_s3_uri("s3://b/k"));
        assert!(!is_s3_uri("s3:///k"));
        assert!(is_framework_version("2.2.4"));
        assert!(!is_framework_version("v2"));
    }

    #[test]
    fn messages_count_errors() {
        let mut p = Problems::new();
        p.range("maxResults", 0, 1, 100);
        p.one_of("sortBy", "Size", &["Name"]);
        let e = p.finish().unwrap_err();
        assert!(e.message.starts_with("2 validation errors detected: "));
    }
}
