//! Server settings: every limit is a setting with a documented default. Loaded from TOML and
//! overridden by flags (`magpied --help`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What happens when a platform already has its maximum of sessions ([SESSION-5.2]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OverflowRule {
    /// Close the oldest session of the platform with DEVICE_KICKED (default).
    #[default]
    KickOldest,
    /// Refuse the new session with LOGIN_REFUSED.
    RefuseNew,
}

/// Per-app device policy ([SESSION-5.2]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DevicePolicy {
    /// Maximum concurrent sessions per platform name (0: unlimited). Defaults: ios 1, android 1,
    /// desktop 1, web 5, other 5, server 0.
    pub max_per_platform: BTreeMap<String, u32>,
    /// What to do beyond the maximum.
    pub overflow: OverflowRule,
}

impl Default for DevicePolicy {
    fn default() -> Self {
        let max_per_platform = [
            ("ios", 1),
            ("android", 1),
            ("desktop", 1),
            ("web", 5),
            ("other", 5),
            ("server", 0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        DevicePolicy {
            max_per_platform,
            overflow: OverflowRule::KickOldest,
        }
    }
}

/// One app ([AUTH-1.1]).
#[derive(Debug, Clone, Deserialize)]
pub struct AppConfig {
    /// App id.
    pub id: String,
    /// App secret (at least 16 bytes).
    pub secret: String,
    /// Device policy.
    #[serde(default)]
    pub devices: DevicePolicy,
}

/// Store durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilityMode {
    /// fsync before every ack (default): an acked message survives power loss.
    #[default]
    Immediate,
    /// Ack after the write, fsync in the background: a crash of the machine may lose the last
    /// moments; a crash of the process alone loses nothing.
    Relaxed,
}

/// Deliberate faults, so the conformance suite can show it catches a broken server (feature
/// `faults`, for tests only; every switch is off by default).
#[cfg(feature = "faults")]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Answer SEND with an ack and never commit the message (breaks [SYNC-5.2]).
    pub ack_without_commit: bool,
    /// Accept expired and not-yet-valid tokens (breaks [AUTH-3.3]).
    pub skip_token_time_check: bool,
    /// Return each SYNC page in reverse offset order (breaks [SYNC-4.1]).
    pub reverse_sync_pages: bool,
    /// Keep a send-rate bucket per device instead of per user (breaks [SESSION-6.4]).
    pub send_rate_per_device: bool,
    /// Answer RATE_LIMITED with `retry_after_ms` 0 (breaks [ERR-1.4]).
    pub rate_limited_without_wait: bool,
}

/// All server settings, with defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// TCP listen address (default 127.0.0.1:7878).
    pub listen: SocketAddr,
    /// WebSocket listen address (default none; B1).
    pub ws_listen: Option<SocketAddr>,
    /// Admin HTTP API listen address (default none; [AUTH-6]).
    pub admin_listen: Option<SocketAddr>,
    /// Data directory (default ./magpie-data).
    pub data_dir: PathBuf,
    /// Apps served.
    pub apps: Vec<AppConfig>,
    /// Store durability.
    pub durability: DurabilityMode,
    /// With relaxed durability, milliseconds between background fsyncs of the journal (default
    /// 200, at least 1): about the most a crash of the machine can lose, plus one fsync's time.
    pub flush_interval_ms: u64,
    /// Largest encoded SEND content in bytes (default 16 KiB; C14, [SYNC-6.2]).
    pub max_content_size: u32,
    /// Message retention in seconds (default 7 days; [SYNC-8.1]).
    pub retention_secs: u64,
    /// Maximum messages kept per conversation (default 0: no count limit).
    pub max_messages_per_conversation: u64,
    /// Seconds between retention passes (default 60; [SYNC-8.1]).
    pub retention_interval_secs: u64,
    /// Clock skew allowed on token times, seconds (default 300; [AUTH-3.3]).
    pub clock_skew_secs: u64,
    /// Longest token lifetime accepted, seconds (default 30 days).
    pub max_token_ttl_secs: u64,
    /// Resume token lifetime, seconds (default 7 days; [AUTH-5.1]).
    pub resume_ttl_secs: u64,
    /// Events per SYNC page at most (default 500; [SYNC-4.1]).
    pub sync_page: u32,
    /// Packets queued per session before it counts as a slow reader (default 1,024; [SESSION-6.1]).
    pub session_queue: usize,
    /// Seconds a write to a client may block before the session counts as a slow reader and is
    /// dropped (default 30; [SESSION-6.1]).
    pub write_timeout_secs: u64,
    /// Users one session may watch (default 1,000; [SESSION-7.1]).
    pub max_watched: usize,
    /// Members of one group at most, and users waiting for approval (default 3,000; E5,
    /// [GROUP-1.3]).
    pub max_group_members: usize,
    /// Longest group name in bytes (default 128, at most 1,024; [GROUP-1.2]).
    pub max_group_name: usize,
    /// Users one GROUP request may name (default 100; [GROUP-1.3]): bounds the size of a notice.
    pub max_group_request_users: usize,
    /// Longest group `mute` in seconds (default 2,592,000: 30 days; [GROUP-2.6]).
    pub max_group_mute_secs: u32,
    /// Longest group avatar URL in bytes (default 1,024; [GROUP-1.6]).
    pub max_group_avatar_url: usize,
    /// Longest group announcement in bytes (default 4,096; [GROUP-1.6]).
    pub max_group_announcement: usize,
    /// Attributes of one group at most (default 16; [GROUP-1.6]).
    pub max_group_attributes: usize,
    /// Longest group attribute, key and value together, in bytes (default 256; [GROUP-1.6]).
    ///
    /// The profile's limits (name, avatar URL, announcement, attributes) together may come to
    /// at most [`Settings::MAX_GROUP_PROFILE`] bytes, so that `info` fits the smallest frame
    /// a client may ask for ([WIRE-6]); the server refuses to start otherwise.
    pub max_group_attribute_bytes: usize,
    /// Writes per group commit at most (default 256).
    pub max_commit_batch: usize,
    /// Threads of the async runtime the `magpied` binary starts (default 0: one per core less
    /// the one the store's commit thread keeps busy under load, at least 1). On 2 cores a second
    /// worker made pairs 5-10% slower: it only competes with the commit thread and adds
    /// cross-thread wakeups (A/B in the message of commit 1d0e01a). A server embedded with
    /// `Server::start` runs on its caller's runtime.
    pub worker_threads: usize,
    /// Heartbeat interval when the client asks for none, seconds (default 30).
    pub default_heartbeat_secs: u64,
    /// Handshake timeout, seconds (default 10).
    pub handshake_timeout_secs: u64,
    /// Compress only frames of at least this many bytes when the client negotiated compression
    /// (default 8,192; [WIRE-7.4]). Live traffic reaches that size only in bursts (a container
    /// of ~60 merged messages), when CPU is what the server is short of; SYNC and HISTORY pages
    /// (up to 500 messages) are where the bytes are, and they compress.
    pub compression_threshold: usize,
    /// DEFLATE level of the frames the server compresses, 0 ..= 9 (default 2). With the zlib-rs
    /// backend, level 1 is a static-Huffman quick mode that barely shrinks chat traffic (SYNC of
    /// 10,000 messages: 1.04 wire bytes per body byte against 0.81 at level 2), and levels above
    /// 2 cost more CPU for little more (see `benches/RESULTS.md`).
    pub compression_level: u32,
    /// Request errors per minute before a session is closed with BAD_REQUEST_FLOOD (default 100;
    /// [SESSION-6.2]).
    pub max_request_errors: u32,
    /// SENDs (and group changes) a user may make a second on average, over all of the user's
    /// sessions and every class; past it one is answered RATE_LIMITED ([SESSION-6.4]). 1 to
    /// 10^9; default 20.
    pub send_rate: u32,
    /// SENDs a user may make at once before `send_rate` applies (default 100).
    pub send_burst: u32,
    /// Packets (and skipped frames) a connection may send a second on average before it is
    /// closed with BAD_REQUEST_FLOOD ([SESSION-6.6]). Default 1,000; at least twice `send_rate`.
    pub packet_rate: u32,
    /// Packets a connection may send at once before `packet_rate` applies (default 2,000; at
    /// least twice `send_burst`).
    pub packet_burst: u32,
    /// Deliberate faults (feature `faults` only).
    #[cfg(feature = "faults")]
    pub faults: Faults,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            ws_listen: None,
            admin_listen: None,
            data_dir: PathBuf::from("magpie-data"),
            apps: Vec::new(),
            durability: DurabilityMode::Immediate,
            flush_interval_ms: 200,
            max_content_size: 16 * 1024,
            retention_secs: 7 * 24 * 3600,
            max_messages_per_conversation: 0,
            retention_interval_secs: 60,
            clock_skew_secs: 300,
            max_token_ttl_secs: 30 * 24 * 3600,
            resume_ttl_secs: 7 * 24 * 3600,
            sync_page: 500,
            session_queue: 1024,
            write_timeout_secs: 30,
            max_watched: 1000,
            max_group_members: 3000,
            max_group_name: 128,
            max_group_request_users: 100,
            max_group_mute_secs: 30 * 24 * 3600,
            max_group_avatar_url: 1024,
            max_group_announcement: 4096,
            max_group_attributes: 16,
            max_group_attribute_bytes: 256,
            max_commit_batch: 256,
            worker_threads: 0,
            default_heartbeat_secs: 30,
            handshake_timeout_secs: 10,
            max_request_errors: 100,
            send_rate: 20,
            send_burst: 100,
            packet_rate: 1000,
            packet_burst: 2000,
            compression_threshold: 8192,
            compression_level: 2,
            #[cfg(feature = "faults")]
            faults: Faults::default(),
        }
    }
}

impl Settings {
    /// The most bytes a group's profile may take by the settings' limits: 12 KiB, which leaves
    /// room for the rest of an `info` answer in the smallest `max_frame_size` (16 KiB, [WIRE-6]).
    pub const MAX_GROUP_PROFILE: usize = 12 * 1024;

    /// Whether the settings can work together: an error says which do not.
    pub fn check(&self) -> Result<(), String> {
        self.send_rate()?;
        self.packet_rate()?;
        // [SESSION-6.6]: the packet rate never cuts off what the send rate allows, with room
        // for the packets that go with SENDs (READs, SYNCs, PINGs).
        if self.packet_rate / 2 < self.send_rate || self.packet_burst / 2 < self.send_burst {
            return Err(format!(
                "packet_rate {}/s with a burst of {} is below twice send_rate {}/s with a burst \
                 of {}: a user's allowed SENDs, with the READs and SYNCs that go with them, on \
                 one connection would close it",
                self.packet_rate, self.packet_burst, self.send_rate, self.send_burst
            ));
        }
        let profile = self.group_profile_bound();
        if profile > Self::MAX_GROUP_PROFILE {
            return Err(format!(
                "a group profile may take {profile} bytes by max_group_name, \
                 max_group_avatar_url, max_group_announcement, max_group_attributes and \
                 max_group_attribute_bytes; at most {} fit an info answer",
                Self::MAX_GROUP_PROFILE
            ));
        }
        Ok(())
    }

    /// The most bytes the group profile takes in an `info` answer: each text, and each
    /// attribute with its map entry's tags and lengths (at most 8 bytes).
    fn group_profile_bound(&self) -> usize {
        let attribute = self.max_group_attribute_bytes.saturating_add(8);
        self.max_group_name
            .saturating_add(self.max_group_avatar_url)
            .saturating_add(self.max_group_announcement)
            .saturating_add(self.max_group_attributes.saturating_mul(attribute))
    }

    /// Settings for a server embedded in a program or a test: the defaults, listening on a free
    /// loopback port, keeping its data in `data_dir` and serving the one app `id` (its devices
    /// under the default policy).
    pub fn embedded(data_dir: impl Into<PathBuf>, id: &str, secret: &str) -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            apps: vec![AppConfig {
                id: id.to_owned(),
                secret: secret.to_owned(),
                devices: DevicePolicy::default(),
            }],
            ..Settings::default()
        }
    }

    /// The worker threads to start: [`Settings::worker_threads`], or when that is 0 one per core
    /// less one for the commit thread, at least 1.
    pub fn runtime_workers(&self) -> usize {
        if self.worker_threads > 0 {
            return self.worker_threads;
        }
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1)
    }

    /// Reads a TOML file.
    pub fn from_toml(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// [SESSION-6.4]: `send_rate` with `send_burst`.
    pub fn send_rate(&self) -> Result<magpie_session::Rate, String> {
        magpie_session::Rate::new(self.send_rate, self.send_burst)
            .map_err(|e| format!("send_rate, send_burst: {e}"))
    }

    /// [SESSION-6.6]: `packet_rate` with `packet_burst`.
    pub fn packet_rate(&self) -> Result<magpie_session::Rate, String> {
        magpie_session::Rate::new(self.packet_rate, self.packet_burst)
            .map_err(|e| format!("packet_rate, packet_burst: {e}"))
    }

    /// The session-layer settings (after [`Settings::check`]; a packet rate it would refuse is
    /// the session layer's default).
    pub fn session_config(&self) -> magpie_session::ServerConfig {
        magpie_session::ServerConfig {
            packet_rate: self
                .packet_rate()
                .unwrap_or(magpie_session::ServerConfig::DEFAULT_PACKET_RATE),
            default_heartbeat: Duration::from_secs(self.default_heartbeat_secs),
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs),
            max_request_errors: self.max_request_errors,
            compression_threshold: self.compression_threshold,
            compression_level: self.compression_level,
            ..magpie_session::ServerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_group_profile_fits_and_a_larger_one_is_refused() {
        let mut s = Settings::default();
        assert_eq!(s.check(), Ok(()));
        s.max_group_attributes = 64;
        let e = s.check().expect_err("64 attributes of 256 bytes");
        assert!(e.contains("max_group_attributes"), "{e}");
        s.max_group_attributes = usize::MAX;
        assert!(s.check().is_err(), "no overflow");
    }

    #[test]
    fn rates_are_at_least_one_and_packets_allow_the_sends() {
        let ok = Settings::default();
        assert_eq!(ok.check(), Ok(()));
        for bad in [
            Settings {
                send_rate: 0,
                ..Settings::default()
            },
            Settings {
                packet_burst: 0,
                ..Settings::default()
            },
        ] {
            let e = bad.check().expect_err("a zero rate");
            assert!(e.contains("at least 1"), "{e}");
        }
        let e = Settings {
            send_burst: 1001,
            ..Settings::default()
        }
        .check()
        .expect_err("a send burst past half the packet burst");
        assert!(e.contains("packet_rate"), "{e}");
        let e = Settings {
            send_rate: 2_000_000_000,
            packet_rate: u32::MAX,
            ..Settings::default()
        }
        .check()
        .expect_err("past one a nanosecond");
        assert!(e.contains("send_rate"), "{e}");
    }
}
