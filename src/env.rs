//! Every environment variable kt reads, by name.

pub const KT_HOME: &str = "KT_HOME";
pub const KT_DB: &str = "KT_DB";
pub const KT_LISTEN: &str = "KT_LISTEN";
pub const KT_POLICY_CONFIG: &str = "KT_POLICY_CONFIG";
pub const KT_UPSTREAM: &str = "KT_UPSTREAM";
pub const KT_UPSTREAM_API_KEY: &str = "KT_UPSTREAM_API_KEY";
pub const KT_UPSTREAM_API_KEY_HEADER: &str = "KT_UPSTREAM_API_KEY_HEADER";
pub const KT_UPSTREAM_API_KEY_PREFIX: &str = "KT_UPSTREAM_API_KEY_PREFIX";
pub const KT_GATEWAY_URL: &str = "KT_GATEWAY_URL";
pub const KT_API_KEY: &str = "KT_API_KEY";
pub const KT_ADMIN_TOKEN: &str = "KT_ADMIN_TOKEN";
pub const KT_LOG: &str = "KT_LOG";
pub const KT_LOG_FORMAT: &str = "KT_LOG_FORMAT";
pub const NO_COLOR: &str = "NO_COLOR";
pub const HOME: &str = "HOME";
/// `1`: realtime sessions read the client with blocking reads, half-duplex. For tests and
/// troubleshooting.
pub const REALTIME_HALF_DUPLEX: &str = "KT_REALTIME_HALF_DUPLEX";
