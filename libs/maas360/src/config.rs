//! What a caller supplies to reach one MaaS360 account: credentials and client options.

use std::time::Duration;

use crate::routes::RouteTable;
use dirsync_http::Secret;

/// The admin account and the provisioned web-services app of one MaaS360 customer
/// (docs/maas360.md §2.1).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Web-services root of the customer's instance, for example
    /// `https://services.m3.maas360.com` (docs/maas360.md §1).
    pub base_url: String,
    pub billing_id: String,
    pub admin_user: String,
    pub password: Secret,
    pub app_id: String,
    pub app_version: String,
    pub platform_id: String,
    pub app_access_key: Secret,
}

/// Which authentication API to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthVersion {
    /// `/auth-apis/auth/1.0/authenticate/{billingID}`: password only.
    #[default]
    V1,
    /// `/auth-apis/auth/2.0/authenticate/customer/{billingID}`: also issues a refresh token,
    /// which renewals use before falling back to the password.
    V2,
}

/// `groupType` of a user group (docs/maas360.md §5.1).
pub const USER_GROUP_TYPE: i64 = 3;

/// Tuning for [`crate::Maas360Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub auth_version: AuthVersion,
    /// Bound on each HTTP call, connect through last body byte.
    pub request_timeout: Duration,
    /// How long MaaS360 honours a token; IBM documents 60 minutes (docs/maas360.md §2.5).
    pub token_lifetime: Duration,
    /// Renew this long before `token_lifetime` runs out, so a long request never starts with a
    /// token about to lapse.
    pub renew_before: Duration,
    /// Where each operation lives; the built-in defaults unless a routes file overrides them.
    pub routes: RouteTable,
    /// The `groupType` that marks a user group in the group list: 3 per the evidence
    /// (docs/maas360.md §5.1); configurable in case a tenant says otherwise.
    pub user_group_type: i64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            auth_version: AuthVersion::V1,
            request_timeout: Duration::from_secs(30),
            token_lifetime: Duration::from_secs(60 * 60),
            renew_before: Duration::from_secs(10 * 60),
            routes: RouteTable::defaults(),
            user_group_type: USER_GROUP_TYPE,
        }
    }
}
