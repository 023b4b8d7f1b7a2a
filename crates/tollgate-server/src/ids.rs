//! Generated ids: a prefix that says what the thing is, then a UUIDv7 (time-ordered).

/// A fresh id with a prefix that says what it is (`cus_`, `sub_`, `key_`, `in_`, `pc_`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
