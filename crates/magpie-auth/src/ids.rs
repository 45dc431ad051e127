//! Identifiers and platforms (`spec/auth.md` §1).

use std::fmt;
use std::str::FromStr;

use crate::error::{AuthError, IdProblem};

/// Longest app id, in bytes ([AUTH-1.1]).
pub const APP_ID_MAX: usize = 32;
/// Longest user or device id, in bytes ([AUTH-1.2]).
pub const USER_ID_MAX: usize = 64;
/// Shortest nonce, in bytes (`spec/auth.md` §2).
pub const NONCE_MIN: usize = 8;
/// Longest nonce, in bytes (`spec/auth.md` §2).
pub const NONCE_MAX: usize = 64;

/// `A-Z a-z 0-9 _ -`: app ids ([AUTH-1.1]) and nonces (§2).
fn is_app_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `A-Z a-z 0-9 _ - . @ =`: user and device ids ([AUTH-1.2]).
fn is_user_byte(b: u8) -> bool {
    is_app_byte(b) || b == b'.' || b == b'@' || b == b'='
}

fn check(bytes: &[u8], min: usize, max: usize, allowed: fn(u8) -> bool) -> Result<(), IdProblem> {
    if !(min..=max).contains(&bytes.len()) {
        return Err(IdProblem::Length {
            len: bytes.len(),
            min,
            max,
        });
    }
    match bytes.iter().position(|&b| !allowed(b)) {
        Some(at) => Err(IdProblem::Byte {
            byte: bytes[at],
            at,
        }),
        None => Ok(()),
    }
}

// The byte-level checks, shared with the token parser (whose fields may not be UTF-8).

pub(crate) fn check_app_id(bytes: &[u8]) -> Result<(), IdProblem> {
    // [AUTH-1.1]
    check(bytes, 1, APP_ID_MAX, is_app_byte)
}

pub(crate) fn check_user_id(bytes: &[u8]) -> Result<(), IdProblem> {
    // [AUTH-1.2]; device ids follow the same rule.
    check(bytes, 1, USER_ID_MAX, is_user_byte)
}

pub(crate) fn check_nonce(bytes: &[u8]) -> Result<(), IdProblem> {
    // spec/auth.md §2: 8 to 64 bytes of `A-Z a-z 0-9 _ -`.
    check(bytes, NONCE_MIN, NONCE_MAX, is_app_byte)
}

/// Checks an app id: 1 to 32 bytes of `A-Z a-z 0-9 _ -` ([AUTH-1.1]).
pub fn validate_app_id(id: &str) -> Result<(), AuthError> {
    check_app_id(id.as_bytes()).map_err(AuthError::InvalidAppId)
}

/// Checks a user id: 1 to 64 bytes of `A-Z a-z 0-9 _ - . @ =` ([AUTH-1.2]). A request that
/// names a bad user id is answered with `INVALID_USER_ID` (`spec/errors.md` §3).
pub fn validate_user_id(id: &str) -> Result<(), AuthError> {
    check_user_id(id.as_bytes()).map_err(AuthError::InvalidUserId)
}

/// Checks a device id: the user id rule ([AUTH-1.2]). `*` is not a device id; it only appears
/// in tokens (see [`crate::Device::Any`]).
pub fn validate_device_id(id: &str) -> Result<(), AuthError> {
    check_user_id(id.as_bytes()).map_err(AuthError::InvalidDeviceId)
}

/// Checks a token nonce: 8 to 64 bytes of `A-Z a-z 0-9 _ -` (`spec/auth.md` §2).
pub fn validate_nonce(nonce: &str) -> Result<(), AuthError> {
    check_nonce(nonce.as_bytes()).map_err(AuthError::InvalidNonce)
}

/// A client platform ([AUTH-1.3]): the `Platform` enum of `spec/proto/magpie.proto`, lowercased
/// without its prefix. `PLATFORM_UNSPECIFIED` has no counterpart: it is not a platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    /// `ios`, `PLATFORM_IOS = 1`.
    Ios,
    /// `android`, `PLATFORM_ANDROID = 2`.
    Android,
    /// `web`, `PLATFORM_WEB = 3`.
    Web,
    /// `desktop`, `PLATFORM_DESKTOP = 4`.
    Desktop,
    /// `server`, `PLATFORM_SERVER = 5`.
    Server,
    /// `other`, `PLATFORM_OTHER = 6`.
    Other,
}

impl Platform {
    /// Every platform, in protobuf order.
    pub const ALL: [Platform; 6] = [
        Platform::Ios,
        Platform::Android,
        Platform::Web,
        Platform::Desktop,
        Platform::Server,
        Platform::Other,
    ];

    /// The name used in tokens ([AUTH-1.3]).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Web => "web",
            Platform::Desktop => "desktop",
            Platform::Server => "server",
            Platform::Other => "other",
        }
    }

    /// The protobuf enum number (`spec/proto/magpie.proto`).
    pub fn to_proto_i32(self) -> i32 {
        match self {
            Platform::Ios => 1,
            Platform::Android => 2,
            Platform::Web => 3,
            Platform::Desktop => 4,
            Platform::Server => 5,
            Platform::Other => 6,
        }
    }

    /// From the protobuf enum number; 0 (`PLATFORM_UNSPECIFIED`) and unknown numbers fail.
    pub fn from_proto_i32(n: i32) -> Result<Platform, AuthError> {
        Platform::ALL
            .into_iter()
            .find(|p| p.to_proto_i32() == n)
            .ok_or(AuthError::UnknownPlatformNumber(n))
    }
}

impl FromStr for Platform {
    type Err = AuthError;

    /// Exactly one of the lowercase names of [AUTH-1.3]; no case folding.
    fn from_str(s: &str) -> Result<Platform, AuthError> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(AuthError::UnknownPlatform)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids() {
        assert!(validate_app_id("demo").is_ok());
        assert!(validate_app_id("A-z_09").is_ok());
        assert!(validate_app_id(&"a".repeat(32)).is_ok());
        assert!(matches!(
            validate_app_id(""),
            Err(AuthError::InvalidAppId(IdProblem::Length { len: 0, .. }))
        ));
        assert!(matches!(
            validate_app_id(&"a".repeat(33)),
            Err(AuthError::InvalidAppId(IdProblem::Length { len: 33, .. }))
        ));
        // `.`, `@`, `=` are user-id bytes, not app-id bytes.
        for bad in [
            "de.mo", "de@mo", "de=mo", "de mo", "de:mo", "de/mo", "deémo",
        ] {
            assert!(
                matches!(
                    validate_app_id(bad),
                    Err(AuthError::InvalidAppId(IdProblem::Byte { at: 2, .. }))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_and_device_ids() {
        for good in [
            "alice",
            "a",
            "alice@example.com",
            "x=y.z_-",
            &"u".repeat(64),
        ] {
            assert!(validate_user_id(good).is_ok(), "{good}");
            assert!(validate_device_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "al ice",
            "al:ice",
            "al/ice",
            "al\nice",
            "*",
            "al+ice",
            &"u".repeat(65),
        ] {
            assert!(
                matches!(validate_user_id(bad), Err(AuthError::InvalidUserId(_))),
                "{bad:?}"
            );
            assert!(
                matches!(validate_device_id(bad), Err(AuthError::InvalidDeviceId(_))),
                "{bad:?}"
            );
        }
        let e = validate_user_id("al ice").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid user id: has byte 0x20 at offset 2, which is not allowed"
        );
    }

    #[test]
    fn nonces() {
        assert!(validate_nonce("n0nce-AAAA").is_ok());
        assert!(validate_nonce("12345678").is_ok());
        assert!(validate_nonce(&"n".repeat(64)).is_ok());
        assert!(validate_nonce("1234567").is_err());
        assert!(validate_nonce(&"n".repeat(65)).is_err());
        assert!(validate_nonce("n0nce.AAAA").is_err());
    }

    #[test]
    fn platforms() {
        for (i, p) in Platform::ALL.into_iter().enumerate() {
            let n = i32::try_from(i).unwrap() + 1;
            assert_eq!(p.to_proto_i32(), n);
            assert_eq!(Platform::from_proto_i32(n).unwrap(), p);
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), p);
            assert_eq!(p.to_string(), p.as_str());
        }
        assert!(Platform::from_proto_i32(0).is_err());
        assert!(Platform::from_proto_i32(7).is_err());
        assert!(Platform::from_proto_i32(-1).is_err());
        assert!("IOS".parse::<Platform>().is_err());
        assert!("".parse::<Platform>().is_err());
        assert!("unspecified".parse::<Platform>().is_err());
        assert_eq!(Platform::Ios.as_str(), "ios");
        assert_eq!(Platform::Other.to_proto_i32(), 6);
    }
}
