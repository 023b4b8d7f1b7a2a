//! Ids as types: a workspace's id, a customer's and a key's are not interchangeable strings, so
//! `revoke_api_key(workspace, customer, key_id)` cannot take them in the wrong order.
//!
//! Each is a thin owned string; it dereferences to `str` for reading, and is made explicitly
//! (`CustomerId::from(text)`) where an id enters from the outside.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                $name(s.clone())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
    };
}

id_type!(
    /// A workspace (one operator's tenant): every row belongs to one.
    WorkspaceId
);
id_type!(
    /// A customer of the operator, unique in its workspace.
    CustomerId
);
id_type!(
    /// A customer API key's id (`key_...`), not its secret.
    KeyId
);
