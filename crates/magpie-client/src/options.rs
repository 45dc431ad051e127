//! What a client is configured with.

use std::time::Duration;

use magpie_auth::Platform;
use magpie_session::{ClientConfig, pb};

use crate::error::ClientError;
use crate::sync::InitialSync;

/// Reconnect delays: exponential backoff with jitter ([SESSION-4.2]: the reference client waits
/// 100 ms, doubling up to 30 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (default 100 ms).
    pub initial: Duration,
    /// The largest delay (default 30 s).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `attempt` (0 for the first), without jitter:
    /// `initial × 2^attempt`, at most `max`.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay with jitter: uniformly between half and all of [`base_delay`](Self::base_delay),
    /// so that clients dropped together do not come back together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        let half = base / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=nanos))
    }
}

/// How to reach and authenticate with a Magpie server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Server addresses (`host:port`), tried in order; on a lost connection the client moves on
    /// to the next (B6).
    pub servers: Vec<String>,
    /// The app id ([AUTH-1.1]).
    pub app_id: String,
    /// The login token minted by the app's server (`spec/auth.md` §2). After the first WELCOME,
    /// reconnects use the newest resume token instead ([AUTH-5]).
    pub token: String,
    /// This device's id ([AUTH-1.2]); must match the token's unless it was minted for `*`.
    pub device_id: String,
    /// This device's platform; must match the token's.
    pub platform: Platform,
    /// Session settings: limits, compression, heartbeat, handshake timeout.
    pub config: ClientConfig,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// How many reconnect attempts in a row may fail before the client gives up (`None`: never
    /// give up). The count starts over after each WELCOME.
    pub max_reconnects: Option<u32>,
    /// The device's cursor (epoch, offset) kept from an earlier run, if any.
    pub cursor: Option<(u64, u64)>,
    /// Where a device without a cursor starts reading its stream (default: from the start).
    pub initial_sync: InitialSync,
    /// Sent in HELLO's `client_version`.
    pub client_version: String,
    /// How many `RATE_LIMITED` answers one send waits out before it fails with that error
    /// (default 3; 0 fails at once). Each wait is the answer's `retry_after_ms`, and the SEND
    /// goes again with the same client message id ([SESSION-6.5]).
    pub rate_limit_waits: u32,
    /// The longest `retry_after` a send waits out (default 10 s): a longer one fails at once
    /// with the `RATE_LIMITED` error, whose `retry_after` says how long.
    pub rate_limit_max_wait: Duration,
}

impl ClientOptions {
    /// Options with the defaults: default session settings, default backoff, unlimited
    /// reconnects, no cursor, sync from the start, 3 waits per send past the server's rate.
    pub fn new(
        servers: Vec<String>,
        app_id: impl Into<String>,
        token: impl Into<String>,
        device_id: impl Into<String>,
        platform: Platform,
    ) -> ClientOptions {
        ClientOptions {
            servers,
            app_id: app_id.into(),
            token: token.into(),
            device_id: device_id.into(),
            platform,
            config: ClientConfig::default(),
            backoff: Backoff::default(),
            max_reconnects: None,
            cursor: None,
            initial_sync: InitialSync::FromStart,
            client_version: concat!("magpie-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            rate_limit_waits: 3,
            rate_limit_max_wait: Duration::from_secs(10),
        }
    }

    /// Checks what can be checked before connecting.
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        if self.servers.is_empty() {
            return Err(ClientError::InvalidOptions("no server address".into()));
        }
        magpie_auth::validate_app_id(&self.app_id)
            .map_err(|e| ClientError::InvalidOptions(e.to_string()))?;
        magpie_auth::validate_device_id(&self.device_id)
            .map_err(|e| ClientError::InvalidOptions(e.to_string()))?;
        if self.token.is_empty() {
            return Err(ClientError::InvalidOptions("empty token".into()));
        }
        Ok(())
    }

    /// The HELLO for a connection with `credential` and the device's `cursor`.
    pub(crate) fn hello(&self, credential: &Credential, cursor: Option<pb::Cursor>) -> pb::Hello {
        pb::Hello {
            app_id: self.app_id.clone(),
            credential: Some(match credential {
                Credential::Login(t) => pb::hello::Credential::Token(t.clone()),
                Credential::Resume(t) => pb::hello::Credential::ResumeToken(t.clone()),
            }),
            device_id: self.device_id.clone(),
            platform: self.platform.to_proto_i32(),
            cursor,
            client_version: self.client_version.clone(),
            // Limits, compression and heartbeat are filled by ClientConnection from `config`.
            ..Default::default()
        }
    }
}

/// What a HELLO presents.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// A login token (first connection).
    Login(String),
    /// The newest resume token ([AUTH-5.2]).
    Resume(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let b = Backoff::default();
        let ms: Vec<u128> = (0..12).map(|a| b.base_delay(a).as_millis()).collect();
        assert_eq!(
            ms,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let b = Backoff::default();
        for attempt in 0..20 {
            let base = b.base_delay(attempt);
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(d >= base / 2 && d <= base, "{d:?} vs {base:?}");
            }
        }
    }

    #[test]
    fn validation() {
        let ok = ClientOptions::new(
            vec!["127.0.0.1:1".into()],
            "demo",
            "t",
            "d1",
            Platform::Other,
        );
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.servers.clear();
        assert!(matches!(
            bad.validate(),
            Err(ClientError::InvalidOptions(_))
        ));
        let mut bad = ok.clone();
        bad.device_id = "a:b".into();
        assert!(matches!(
            bad.validate(),
            Err(ClientError::InvalidOptions(_))
        ));
    }
}
