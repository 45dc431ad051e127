//! Errors: [`AuthError`] for bad input to this crate (ids, secrets, claims to mint), and
//! [`TokenError`], the outcome of a refused token, which maps to a CLOSE code of
//! `spec/errors.md` §2.

use std::fmt;

use crate::token::TokenKind;

/// Why an identifier breaks its rule ([AUTH-1.1], [AUTH-1.2], the nonce rule of §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdProblem {
    /// The length in bytes is outside `min..=max`.
    Length {
        /// Length found, in bytes.
        len: usize,
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// A byte outside the allowed charset.
    Byte {
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IdProblem::Length { len, min, max } => {
                write!(f, "is {len} bytes long, must be {min} to {max}")
            }
            IdProblem::Byte { byte, at } => {
                write!(
                    f,
                    "has byte 0x{byte:02x} at offset {at}, which is not allowed"
                )
            }
        }
    }
}

/// Bad input to this crate: an id, a platform, a secret or claims that cannot be minted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// An app id breaks [AUTH-1.1].
    #[error("invalid app id: {0}")]
    InvalidAppId(IdProblem),
    /// A user id breaks [AUTH-1.2] (`INVALID_USER_ID` in requests).
    #[error("invalid user id: {0}")]
    InvalidUserId(IdProblem),
    /// A device id breaks [AUTH-1.2].
    #[error("invalid device id: {0}")]
    InvalidDeviceId(IdProblem),
    /// A nonce breaks the rule of `spec/auth.md` §2.
    #[error("invalid nonce: {0}")]
    InvalidNonce(IdProblem),
    /// Not one of the platform names of [AUTH-1.3].
    #[error("unknown platform name (expected ios, android, web, desktop, server or other)")]
    UnknownPlatform,
    /// Not one of the `Platform` numbers 1..=6 of `spec/proto/magpie.proto` (0 is
    /// `PLATFORM_UNSPECIFIED`).
    #[error("platform number {0} is not a known platform")]
    UnknownPlatformNumber(i32),
    /// An app secret shorter than 16 bytes ([AUTH-1.1]).
    #[error("app secret is {len} bytes, must be at least 16")]
    SecretTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// Claims whose `expires` is not after `not_before` ([AUTH-2.2]).
    #[error("expires {expires} is not after not_before {not_before}")]
    ExpiresNotAfterNotBefore {
        /// The claimed `not_before`.
        not_before: u64,
        /// The claimed `expires`.
        expires: u64,
    },
    /// A resume token must be bound to one device, never `*` ([AUTH-5.1]).
    #[error("a resume token cannot be for any device (*)")]
    ResumeAnyDevice,
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(getrandom::Error),
}

/// Why a token was refused. Each variant maps to one connection error code of
/// `spec/errors.md` §2 ([`TokenError::code`], [`TokenError::code_name`]); the message
/// ([`std::fmt::Display`]) says which field failed and never contains the expected tag
/// ([AUTH-4.1]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than any valid token can be ([`crate::MAX_TOKEN_LEN`]).
    #[error("token is {len} bytes, longer than any valid token")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The token starts with neither `mt1.` nor `mr1.`.
    #[error("token does not start with mt1. or mr1.")]
    BadPrefix,
    /// A resume token presented as a login token or the reverse ([AUTH-5.1]).
    #[error("a {found} token was presented as a {expected} token")]
    WrongKind {
        /// The kind the HELLO field calls for.
        expected: TokenKind,
        /// The kind the token's prefix says.
        found: TokenKind,
    },
    /// The token is not `prefix payload "." tag` with both parts base64url without padding.
    #[error("token {part} is not base64url without padding")]
    BadEncoding {
        /// "payload", "tag" or "structure" (no `.` between payload and tag).
        part: &'static str,
    },
    /// The tag does not match the payload ([AUTH-2.1], [AUTH-2.2]).
    #[error("token tag does not match its payload")]
    BadTag,
    /// The payload does not have exactly eight LF-separated fields ([AUTH-2.2]).
    #[error("token payload has {found} fields, expected 8")]
    FieldCount {
        /// Fields found.
        found: usize,
    },
    /// The first field is not the version string of the token's kind ([AUTH-2.2], [AUTH-5.1]).
    #[error("token payload does not start with {expected}")]
    BadVersion {
        /// `magpie-token/1` or `magpie-resume/1`.
        expected: &'static str,
    },
    /// An id field breaks §1 ([AUTH-1.1], [AUTH-1.2]) or the nonce rule of §2.
    #[error("token field {field} {problem}")]
    BadField {
        /// `app_id`, `user_id`, `device` or `nonce`.
        field: &'static str,
        /// What is wrong with it.
        problem: IdProblem,
    },
    /// The platform field is not a platform name of [AUTH-1.3].
    #[error("token field platform is not a known platform")]
    BadPlatform,
    /// A time field is not canonical decimal (digits only, no leading zero, fits in 64 bits).
    #[error("token field {field} is not a canonical decimal time")]
    NonCanonicalTime {
        /// `not_before` or `expires`.
        field: &'static str,
    },
    /// `expires` is not after `not_before` ([AUTH-2.2]).
    #[error("token expires at {expires}, not after its not_before {not_before}")]
    ExpiresNotAfterNotBefore {
        /// The token's `not_before`.
        not_before: u64,
        /// The token's `expires`.
        expires: u64,
    },
    /// A resume token with device `*` ([AUTH-5.1]).
    #[error("resume token is for any device (*), which resume tokens never are")]
    ResumeAnyDevice,
    /// The token is for another app than the HELLO's ([AUTH-2.2]).
    #[error("token is for app {token}, HELLO says app {hello}")]
    AppMismatch {
        /// The token's app id.
        token: String,
        /// The HELLO's app id.
        hello: String,
    },
    /// The token is for another device than the HELLO's ([AUTH-2.2]).
    #[error("token is for device {token}, HELLO says device {hello}")]
    DeviceMismatch {
        /// The token's device id.
        token: String,
        /// The HELLO's device id.
        hello: String,
    },
    /// The token is for another platform than the HELLO's ([AUTH-2.2]).
    #[error("token is for platform {token}, HELLO says platform {hello}")]
    PlatformMismatch {
        /// The token's platform.
        token: &'static str,
        /// The HELLO's platform.
        hello: &'static str,
    },
    /// The lifetime `expires - not_before` exceeds the server's `max_token_ttl` ([AUTH-3.3]).
    #[error("token lifetime {lifetime} s exceeds the server's maximum of {max} s")]
    TtlTooLong {
        /// `expires - not_before`.
        lifetime: u64,
        /// The server's limit.
        max: u64,
    },
    /// `not_before > now + clock_skew` ([AUTH-3.3]).
    #[error("token not valid before {not_before}, server time {now}")]
    NotYetValid {
        /// The token's `not_before`.
        not_before: u64,
        /// The server's time.
        now: u64,
    },
    /// `expires <= now - clock_skew` ([AUTH-3.3]).
    #[error("token expired at {expires}, server time {now}")]
    Expired {
        /// The token's `expires`.
        expires: u64,
        /// The server's time.
        now: u64,
    },
    /// `not_before` is earlier than the user's "revoked before" time ([AUTH-3.4]).
    #[error("token not_before {not_before} is before the user's revocation at {revoked_before}")]
    Revoked {
        /// The token's `not_before`.
        not_before: u64,
        /// The user's "revoked before" time.
        revoked_before: u64,
    },
    /// The login token's nonce was already used ([AUTH-3.5]). This crate never returns it (it
    /// keeps no state); the server's nonce store does.
    #[error("token nonce {nonce} was already used")]
    Replayed {
        /// The nonce.
        nonce: String,
    },
}

/// `TOKEN_INVALID` (`spec/errors.md` §2).
const TOKEN_INVALID: u64 = 0x0D;
/// `TOKEN_EXPIRED`.
const TOKEN_EXPIRED: u64 = 0x0E;
/// `TOKEN_NOT_YET_VALID`.
const TOKEN_NOT_YET_VALID: u64 = 0x0F;
/// `TOKEN_REPLAYED`.
const TOKEN_REPLAYED: u64 = 0x10;
/// `TOKEN_REVOKED`.
const TOKEN_REVOKED: u64 = 0x11;

impl TokenError {
    /// The CLOSE code (`spec/errors.md` §2).
    pub fn code(&self) -> u64 {
        match self {
            TokenError::Expired { .. } => TOKEN_EXPIRED,
            TokenError::NotYetValid { .. } => TOKEN_NOT_YET_VALID,
            TokenError::Replayed { .. } => TOKEN_REPLAYED,
            TokenError::Revoked { .. } => TOKEN_REVOKED,
            _ => TOKEN_INVALID,
        }
    }

    /// The registry name of [`TokenError::code`]: `TOKEN_INVALID`, `TOKEN_EXPIRED`,
    /// `TOKEN_NOT_YET_VALID`, `TOKEN_REPLAYED` or `TOKEN_REVOKED`.
    pub fn code_name(&self) -> &'static str {
        match self.code() {
            TOKEN_EXPIRED => "TOKEN_EXPIRED",
            TOKEN_NOT_YET_VALID => "TOKEN_NOT_YET_VALID",
            TOKEN_REPLAYED => "TOKEN_REPLAYED",
            TOKEN_REVOKED => "TOKEN_REVOKED",
            _ => "TOKEN_INVALID",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_registry() {
        let cases = [
            (TokenError::BadTag, 0x0D, "TOKEN_INVALID"),
            (
                TokenError::Expired { expires: 1, now: 2 },
                0x0E,
                "TOKEN_EXPIRED",
            ),
            (
                TokenError::NotYetValid {
                    not_before: 2,
                    now: 1,
                },
                0x0F,
                "TOKEN_NOT_YET_VALID",
            ),
            (
                TokenError::Replayed {
                    nonce: "n0nce-AAAA".into(),
                },
                0x10,
                "TOKEN_REPLAYED",
            ),
            (
                TokenError::Revoked {
                    not_before: 1,
                    revoked_before: 2,
                },
                0x11,
                "TOKEN_REVOKED",
            ),
        ];
        for (e, code, name) in cases {
            assert_eq!(e.code(), code, "{e:?}");
            assert_eq!(e.code_name(), name, "{e:?}");
        }
    }
}
