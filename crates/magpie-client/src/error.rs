//! The one error type of the client library.

use magpie_session::RequestCode;
use magpie_wire::ErrorCode;

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// [`ClientOptions`](crate::ClientOptions) that cannot work (no server, bad id, ...).
    #[error("invalid client options: {0}")]
    InvalidOptions(String),
    /// No server of the list could be reached (TCP connect, or the handshake timed out).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The last address tried.
        addr: String,
        /// What went wrong there.
        reason: String,
    },
    /// The connection ended with a CLOSE (or a local protocol error) before the client got what
    /// it waited for: a refused login (`TOKEN_EXPIRED`, ...), a kick, or a fatal error.
    #[error("connection closed: {name} ({code:#x}): {reason}")]
    Closed {
        /// The close code (`spec/wire.md` §10.3, `spec/errors.md` §2).
        code: u64,
        /// Its registry name (`magpie_session::close::name`).
        name: &'static str,
        /// The reason given, for people.
        reason: String,
    },
    /// A request was answered with REQUEST_ERROR (`spec/errors.md` §3).
    #[error("request failed: {name} ({code:#x}): {message}")]
    Request {
        /// The request error code.
        code: u32,
        /// Its registry name; `INTERNAL` for codes this client does not know ([ERR-1.3]).
        name: &'static str,
        /// The server's message, for people.
        message: String,
        /// With `RATE_LIMITED`: how long until the server expects to accept the request again
        /// ([SESSION-6.4]); `None` with every other code ([ERR-1.4]).
        retry_after: Option<std::time::Duration>,
    },
    /// A request that cannot be sent at all (for example larger than the server accepts).
    #[error("cannot send {what}: {source}")]
    Wire {
        /// The request.
        what: &'static str,
        /// The codec's reason.
        #[source]
        source: magpie_wire::Error,
    },
    /// The server answered a request with a body of the wrong type.
    #[error("unexpected reply to {request}: {got}")]
    UnexpectedReply {
        /// The request.
        request: &'static str,
        /// The reply's wire type.
        got: String,
    },
    /// The client was closed (by [`Client::close`](crate::Client::close), a fatal CLOSE, or
    /// after `max_reconnects` failed attempts) while the call was pending.
    #[error("the client is closed{}", .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Shutdown {
        /// Why, if known.
        reason: Option<String>,
    },
    /// The operating system's random source failed (client message ids, device ids).
    #[error("random source failed: {0}")]
    Random(#[source] magpie_auth::AuthError),
}

impl ClientError {
    /// A [`ClientError::Closed`] for a close code and reason.
    pub fn closed(code: ErrorCode, reason: impl Into<String>) -> ClientError {
        ClientError::Closed {
            code: code.0,
            name: magpie_session::close::name(code),
            reason: reason.into(),
        }
    }

    /// A [`ClientError::Request`] for a REQUEST_ERROR body.
    pub fn request(error: &magpie_session::pb::RequestError) -> ClientError {
        ClientError::Request {
            code: error.code,
            // [ERR-1.3]: an unknown request error code is INTERNAL, and the message is kept.
            name: RequestCode(error.code).name().unwrap_or("INTERNAL"),
            message: error.message.clone(),
            // [ERR-1.4]: meaningful with RATE_LIMITED only.
            retry_after: (error.code == RequestCode::RATE_LIMITED.0)
                .then(|| std::time::Duration::from_millis(u64::from(error.retry_after_ms.max(1)))),
        }
    }

    /// The registry name of the protocol error, if this is one (`TOKEN_EXPIRED`,
    /// `CONTENT_TOO_LARGE`, ...).
    pub fn code_name(&self) -> Option<&'static str> {
        match self {
            ClientError::Closed { name, .. } | ClientError::Request { name, .. } => Some(name),
            _ => None,
        }
    }
}
