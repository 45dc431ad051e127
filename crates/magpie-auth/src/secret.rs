//! App secrets ([AUTH-1.1]).

use std::fmt;

use crate::error::AuthError;

/// Shortest app secret, in bytes ([AUTH-1.1]).
pub const APP_SECRET_MIN: usize = 16;

/// An app's secret: at least 16 bytes of UTF-8 text ([AUTH-1.1]). Its `Debug` output is
/// redacted, and it has no `Display` and no equality, so that it is neither logged nor compared
/// in variable time by accident.
#[derive(Clone)]
pub struct AppSecret(String);

impl AppSecret {
    /// Wraps a secret, refusing one shorter than 16 bytes: "the server MUST refuse to load an
    /// app with a shorter secret" ([AUTH-1.1]).
    pub fn new(secret: impl Into<String>) -> Result<AppSecret, AuthError> {
        let secret = secret.into();
        if secret.len() < APP_SECRET_MIN {
            return Err(AuthError::SecretTooShort { len: secret.len() });
        }
        Ok(AppSecret(secret))
    }

    /// The secret as UTF-8 bytes: the HMAC key of login tokens (`spec/auth.md` §2).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rule() {
        assert!(AppSecret::new("magpie-demo-secret-0001").is_ok());
        assert!(AppSecret::new("0123456789abcdef").is_ok());
        assert!(matches!(
            AppSecret::new("0123456789abcde"),
            Err(AuthError::SecretTooShort { len: 15 })
        ));
        assert!(AppSecret::new("").is_err());
        // Bytes, not characters: 8 two-byte characters are 16 bytes.
        assert!(AppSecret::new("éééééééé").is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let s = AppSecret::new("magpie-demo-secret-0001").unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("magpie-demo"), "{shown}");
        assert_eq!(shown, "AppSecret(<redacted>)");
    }
}
