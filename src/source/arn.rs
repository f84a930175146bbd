//! ARNs (`arn:<partition>:<service>:<region>:<account>:<resource>`): the one
//! place that knows their fields, for job ARNs and role ARNs alike.

/// Fields in an ARN, split on ':' (the resource may hold more ':').
const FIELDS: usize = 6;

/// A field of an ARN that names a table partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArnField {
    /// The fourth field: the region.
    Region,
    /// The fifth field: the account id.
    Account,
}

impl ArnField {
    /// Both, in ARN order.
    pub const ALL: [ArnField; 2] = [ArnField::Region, ArnField::Account];

    /// The field's index in the ARN split on ':', from 0.
    pub fn index(self) -> usize {
        match self {
            ArnField::Region => 3,
            ArnField::Account => 4,
        }
    }

    /// The field's position as SQL's `split_part(arn, ':', n)` counts it,
    /// from 1.
    pub fn split_part(self) -> i64 {
        self.index() as i64 + 1
    }

    /// This field of `arn`, if `arn` is a complete ARN and the field is not
    /// empty.
    pub fn of(self, arn: &str) -> Option<&str> {
        let fields: Vec<&str> = arn.splitn(FIELDS, ':').collect();
        (fields.len() == FIELDS && fields[0] == "arn")
            .then(|| fields[self.index()])
            .filter(|field| !field.is_empty())
    }
}

/// The account id of an ARN, if it has one.
pub fn account_id_from_arn(arn: &str) -> Option<&str> {
    ArnField::Account.of(arn)
}

/// AWS's EntityName: `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
pub fn is_entity_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// The job name in a compilation-job ARN, if it is one.
pub fn name_of_job_arn(arn: &str) -> Option<&str> {
    let (prefix, name) = arn.rsplit_once(":compilation-job/")?;
    (prefix.starts_with("arn:") && is_entity_name(name)).then_some(name)
}

/// The account of an IAM role ARN (`arn:aws:iam::<account>:role/<name>`),
/// if it is one with a 12-digit account.
pub fn account_of_role_arn(role_arn: &str) -> Option<&str> {
    let fields: Vec<&str> = role_arn.splitn(FIELDS, ':').collect();
    match fields.as_slice() {
        ["arn", _, "iam", _, account, resource]
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.starts_with("role/") =>
        {
            Some(account)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_is_the_fifth_arn_field() {
        assert_eq!(
            account_id_from_arn("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/a:b"),
            Some("123456789012")
        );
        assert_eq!(
            account_id_from_arn("arn:aws-cn:sagemaker:cn-north-1:000000000001:compilation-job/x"),
            Some("000000000001")
        );
        assert_eq!(account_id_from_arn("arn:aws:sagemaker:us-east-1::x"), None);
        assert_eq!(account_id_from_arn("not-an-arn"), None);
        assert_eq!(account_id_from_arn("arn:aws:sagemaker:us-east-1:1"), None);
    }
}
