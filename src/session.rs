//! One control connection's protocol state machine (sans-IO).
use crate::auth::{Account, Users};

/// Who may log in: anonymous (read-only or writable on the root) and the users file.
pub struct Auth {
    pub anonymous: Option<Account>,
    pub users: Users,
}
