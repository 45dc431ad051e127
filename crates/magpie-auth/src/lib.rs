//! Magpie authentication (`spec/auth.md`): app, user and device ids, platforms, app secrets, and
//! the HMAC-SHA256 login (`mt1.`) and resume (`mr1.`) tokens.
//!
//! The crate is sans-IO: it reads no clock and keeps no state. Verification takes the server
//! time as a parameter ([`verify`], [`verify_resume`]); the two checks that need state are left
//! to the server, which gets what it needs from [`VerifiedToken`]:
//!
//! - revocation ([AUTH-3.4]): call [`check_revocation`] with the user's "revoked before" time;
//! - replay ([AUTH-3.5]): remember `(app, nonce)` of each accepted login token until
//!   [`VerifiedToken::remember_nonce_until`], and refuse a second login with
//!   [`TokenError::Replayed`].
//!
//! ```
//! use magpie_auth::{AppSecret, Device, LoginContext, Platform, TokenClaims, VerifyPolicy};
//!
//! let secret = AppSecret::new("magpie-demo-secret-0001")?;
//! let claims = TokenClaims {
//!     app_id: "demo".into(),
//!     user_id: "alice".into(),
//!     device: Device::Id("phone-1".into()),
//!     platform: Platform::Ios,
//!     not_before: 1_767_225_600,
//!     expires: 1_767_312_000,
//!     nonce: "n0nce-AAAA".into(),
//! };
//! let token = magpie_auth::mint(&claims, &secret)?;
//! let hello = LoginContext::new("demo", "phone-1", Platform::Ios)?;
//! let ok = magpie_auth::verify(&token, &secret, &hello, 1_767_230_000, &VerifyPolicy::default())?;
//! assert_eq!(ok.claims.user_id, "alice");
//!
//! let err = magpie_auth::verify(&token, &secret, &hello, 1_767_400_000, &VerifyPolicy::default())
//!     .unwrap_err();
//! assert_eq!(err.code_name(), "TOKEN_EXPIRED");
//! assert_eq!(err.to_string(), "token expired at 1767312000, server time 1767400000");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod ids;
mod secret;
mod token;

pub use error::{AuthError, IdProblem, TokenError};
pub use ids::{
    APP_ID_MAX, NONCE_MAX, NONCE_MIN, Platform, USER_ID_MAX, validate_app_id, validate_device_id,
    validate_nonce, validate_user_id,
};
pub use secret::{APP_SECRET_MIN, AppSecret};
pub use token::{
    DEFAULT_CLOCK_SKEW, DEFAULT_MAX_TTL, Device, LOGIN_PREFIX, LOGIN_VERSION, LoginContext,
    MAX_TOKEN_LEN, RESUME_PREFIX, RESUME_VERSION, TokenClaims, TokenKind, VerifiedToken,
    VerifyPolicy, check_revocation, mint, mint_resume, random_nonce, verify, verify_resume,
};
