//! Session-layer error codes (`spec/errors.md`).

use magpie_wire::ErrorCode;

/// Connection error codes of the session layer (`spec/errors.md` §2), beside the wire codes.
pub mod close {
    use super::ErrorCode;

    /// A packet other than HELLO before WELCOME ([SESSION-2.2]).
    pub const NOT_AUTHENTICATED: ErrorCode = ErrorCode(0x0B);
    /// Unknown app ([AUTH-3.1]).
    pub const APP_UNKNOWN: ErrorCode = ErrorCode(0x0C);
    /// Forged, malformed or mismatched token ([AUTH-2.2]).
    pub const TOKEN_INVALID: ErrorCode = ErrorCode(0x0D);
    /// [AUTH-3.3]
    pub const TOKEN_EXPIRED: ErrorCode = ErrorCode(0x0E);
    /// [AUTH-3.3]
    pub const TOKEN_NOT_YET_VALID: ErrorCode = ErrorCode(0x0F);
    /// [AUTH-3.5]
    pub const TOKEN_REPLAYED: ErrorCode = ErrorCode(0x10);
    /// [AUTH-3.4]
    pub const TOKEN_REVOKED: ErrorCode = ErrorCode(0x11);
    /// A HELLO that does not parse or asks for impossible settings.
    pub const HANDSHAKE_INVALID: ErrorCode = ErrorCode(0x12);
    /// Another device took this one's place ([SESSION-5.2]).
    pub const DEVICE_KICKED: ErrorCode = ErrorCode(0x13);
    /// The same device connected again ([SESSION-5.1]).
    pub const SESSION_REPLACED: ErrorCode = ErrorCode(0x14);
    /// The device policy refuses a new device ([SESSION-5.2]).
    pub const LOGIN_REFUSED: ErrorCode = ErrorCode(0x15);
    /// Too many request errors ([SESSION-6.2]).
    pub const BAD_REQUEST_FLOOD: ErrorCode = ErrorCode(0x16);

    /// The registry name of a session or wire code.
    pub fn name(code: ErrorCode) -> &'static str {
        match code {
            NOT_AUTHENTICATED => "NOT_AUTHENTICATED",
            APP_UNKNOWN => "APP_UNKNOWN",
            TOKEN_INVALID => "TOKEN_INVALID",
            TOKEN_EXPIRED => "TOKEN_EXPIRED",
            TOKEN_NOT_YET_VALID => "TOKEN_NOT_YET_VALID",
            TOKEN_REPLAYED => "TOKEN_REPLAYED",
            TOKEN_REVOKED => "TOKEN_REVOKED",
            HANDSHAKE_INVALID => "HANDSHAKE_INVALID",
            DEVICE_KICKED => "DEVICE_KICKED",
            SESSION_REPLACED => "SESSION_REPLACED",
            LOGIN_REFUSED => "LOGIN_REFUSED",
            BAD_REQUEST_FLOOD => "BAD_REQUEST_FLOOD",
            other => other.name().unwrap_or("UNKNOWN"),
        }
    }
}

/// A request error code (`spec/errors.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestCode(pub u32);

macro_rules! request_codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl RequestCode {
            $($(#[$doc])* pub const $name: RequestCode = RequestCode($value);)*

            /// The registry name, if assigned.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(RequestCode::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

request_codes! {
    /// The body does not parse, or a required field is missing.
    BAD_REQUEST = 0x100;
    /// SEND content over `max_content_size` (C14).
    CONTENT_TOO_LARGE = 0x101;
    /// A user id breaks [AUTH-1.2] (A7).
    INVALID_USER_ID = 0x102;
    /// Empty or overlong client message id ([SYNC-5.1]).
    INVALID_CLIENT_MSG_ID = 0x103;
    /// A retry id reused for different content ([SYNC-5.3]).
    CLIENT_MSG_ID_REUSED = 0x104;
    /// A conversation the user is not part of ([SYNC-1.2]).
    UNKNOWN_CONVERSATION = 0x105;
    /// Not served by this server.
    UNSUPPORTED = 0x106;
    /// Rate limit.
    RATE_LIMITED = 0x107;
    /// The server failed; nothing was committed.
    INTERNAL = 0x108;
    /// Over `max_watched` ([SESSION-7.1]).
    TOO_MANY_WATCHED = 0x109;
    /// A GROUP operation the requester's role does not allow ([GROUP-2.3]).
    NOT_PERMITTED = 0x10A;
    /// `create` of a taken group id ([GROUP-1.4]).
    GROUP_EXISTS = 0x10B;
    /// Past `max_group_members` ([GROUP-1.3]).
    GROUP_FULL = 0x10C;
    /// No such group, or it was dismissed ([GROUP-2.3]).
    UNKNOWN_GROUP = 0x10D;
    /// A SEND to a group by a member who may not speak now ([GROUP-4.5]).
    MUTED = 0x10E;
}
