//! Login tokens (`spec/auth.md` §2), their verification (§3) and resume tokens (§5).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{AuthError, TokenError};
use crate::ids::{
    Platform, check_app_id, check_nonce, check_user_id, validate_app_id, validate_device_id,
};
use crate::secret::AppSecret;

/// Prefix of login tokens (`spec/auth.md` §2).
pub const LOGIN_PREFIX: &str = "mt1.";
/// First payload field of login tokens (`spec/auth.md` §2).
pub const LOGIN_VERSION: &str = "magpie-token/1";
/// Prefix of resume tokens ([AUTH-5.1]).
pub const RESUME_PREFIX: &str = "mr1.";
/// First payload field of resume tokens, and the message that derives their key from the app
/// secret ([AUTH-5.1]).
pub const RESUME_VERSION: &str = "magpie-resume/1";
/// Default `clock_skew`, in seconds ([AUTH-3.3]).
pub const DEFAULT_CLOCK_SKEW: u64 = 300;
/// Default `max_token_ttl`: 30 days, in seconds ([AUTH-3.3]).
pub const DEFAULT_MAX_TTL: u64 = 30 * 24 * 3600;
/// Tokens longer than this are refused before any decoding. The longest valid token is 439
/// bytes (a resume token with every field at its longest, 20-digit times).
pub const MAX_TOKEN_LEN: usize = 512;

/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A login token (`mt1.`, §2) or a resume token (`mr1.`, §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `mt1.`, minted by the app's server, single use ([AUTH-3.5]).
    Login,
    /// `mr1.`, issued in WELCOME, reusable until it expires ([AUTH-5.2]).
    Resume,
}

impl TokenKind {
    /// `mt1.` or `mr1.`.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Login => LOGIN_PREFIX,
            TokenKind::Resume => RESUME_PREFIX,
        }
    }

    /// The first payload field: `magpie-token/1` or `magpie-resume/1`.
    pub fn version(self) -> &'static str {
        match self {
            TokenKind::Login => LOGIN_VERSION,
            TokenKind::Resume => RESUME_VERSION,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Login => "login",
            TokenKind::Resume => "resume",
        })
    }
}

/// The `device` field of a token: one device id, or `*` for any device of the user (§2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// `*`: any device of the user. Login tokens only ([AUTH-5.1]).
    Any,
    /// One device id ([AUTH-1.2]).
    Id(String),
}

impl Device {
    /// `*` or the device id, as written in the payload.
    pub fn as_str(&self) -> &str {
        match self {
            Device::Any => "*",
            Device::Id(id) => id,
        }
    }

    /// Whether a HELLO from `device_id` may use a token with this field ([AUTH-2.2]).
    pub fn allows(&self, device_id: &str) -> bool {
        match self {
            Device::Any => true,
            Device::Id(id) => id == device_id,
        }
    }
}

/// What a token says (the eight payload fields but the first, §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    /// The app ([AUTH-1.1]).
    pub app_id: String,
    /// The user ([AUTH-1.2]).
    pub user_id: String,
    /// The device, or any device.
    pub device: Device,
    /// The platform ([AUTH-1.3]).
    pub platform: Platform,
    /// Unix time, seconds, from which the token is valid.
    pub not_before: u64,
    /// Unix time, seconds, from which the token is no longer valid; after `not_before`.
    pub expires: u64,
    /// 8 to 64 bytes of `A-Z a-z 0-9 _ -`; see [`random_nonce`].
    pub nonce: String,
}

/// The HELLO a token is presented in: its `app_id`, `device_id` and `platform`, against which
/// the token is bound ([AUTH-2.2]). Built by [`LoginContext::new`], which checks the ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginContext<'a> {
    app_id: &'a str,
    device_id: &'a str,
    platform: Platform,
}

impl<'a> LoginContext<'a> {
    /// Checks the HELLO's app id ([AUTH-1.1]) and device id ([AUTH-1.2]). A HELLO that fails
    /// here never reaches token verification (the server answers `APP_UNKNOWN` for an app id it
    /// does not serve, and a device id that breaks [AUTH-1.2] is a bad HELLO).
    pub fn new(
        app_id: &'a str,
        device_id: &'a str,
        platform: Platform,
    ) -> Result<LoginContext<'a>, AuthError> {
        validate_app_id(app_id)?;
        validate_device_id(device_id)?;
        Ok(LoginContext {
            app_id,
            device_id,
            platform,
        })
    }

    /// The HELLO's app id.
    pub fn app_id(&self) -> &'a str {
        self.app_id
    }

    /// The HELLO's device id.
    pub fn device_id(&self) -> &'a str {
        self.device_id
    }

    /// The HELLO's platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }
}

/// Server settings for verification ([AUTH-3.3]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// `clock_skew`, in seconds (default 300).
    pub clock_skew: u64,
    /// `max_token_ttl`, in seconds (default 30 days): tokens whose `expires - not_before` is
    /// longer are refused with `TOKEN_INVALID`. `None` accepts any lifetime (the check is a MAY).
    pub max_ttl: Option<u64>,
}

impl Default for VerifyPolicy {
    fn default() -> VerifyPolicy {
        VerifyPolicy {
            clock_skew: DEFAULT_CLOCK_SKEW,
            max_ttl: Some(DEFAULT_MAX_TTL),
        }
    }
}

/// A token that passed [AUTH-3.2] and [AUTH-3.3]. Revocation ([AUTH-3.4], see
/// [`check_revocation`]) and, for login tokens, replay ([AUTH-3.5]) remain for the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// Login or resume.
    pub kind: TokenKind,
    /// The token's fields.
    pub claims: TokenClaims,
}

impl VerifiedToken {
    /// The user the token logs in.
    pub fn user_id(&self) -> &str {
        &self.claims.user_id
    }

    /// The token's `not_before`, for [`check_revocation`].
    pub fn not_before(&self) -> u64 {
        self.claims.not_before
    }

    /// The token's `expires`.
    pub fn expires(&self) -> u64 {
        self.claims.expires
    }

    /// The token's nonce, for the replay store ([AUTH-3.5]).
    pub fn nonce(&self) -> &str {
        &self.claims.nonce
    }

    /// Until when the server must remember the `(app, nonce)` of an accepted login token:
    /// `expires + clock_skew` ([AUTH-3.5]). Resume tokens are not single-use ([AUTH-5.2]).
    pub fn remember_nonce_until(&self, policy: &VerifyPolicy) -> u64 {
        self.claims.expires.saturating_add(policy.clock_skew)
    }
}

/// [AUTH-3.4]: a token whose `not_before` is earlier than the user's "revoked before" time
/// (0 by default) is refused with `TOKEN_REVOKED`. Applies to login and resume tokens.
pub fn check_revocation(not_before: u64, revoked_before: u64) -> Result<(), TokenError> {
    if not_before < revoked_before {
        return Err(TokenError::Revoked {
            not_before,
            revoked_before,
        });
    }
    Ok(())
}

/// A fresh nonce: 16 bytes from the operating system's random source (128 bits, [AUTH-2.3])
/// as 22 characters of base64url without padding.
pub fn random_nonce() -> Result<String, AuthError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(AuthError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn hmac(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (long ones are hashed).
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The MAC for a kind of token: keyed with the app secret (§2), or with
/// `HMAC-SHA256(app secret, "magpie-resume/1")` for resume tokens ([AUTH-5.1]).
fn keyed(kind: TokenKind, secret: &AppSecret) -> HmacSha256 {
    match kind {
        TokenKind::Login => hmac(secret.as_bytes()),
        TokenKind::Resume => {
            let key = hmac(secret.as_bytes())
                .chain_update(RESUME_VERSION.as_bytes())
                .finalize()
                .into_bytes();
            hmac(&key)
        }
    }
}

/// The payload of §2, LF-separated, exactly as a minter must build it ([AUTH-2.1]).
fn payload(kind: TokenKind, c: &TokenClaims) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        kind.version(),
        c.app_id,
        c.user_id,
        c.device.as_str(),
        c.platform.as_str(),
        c.not_before,
        c.expires,
        c.nonce
    )
}

fn mint_kind(kind: TokenKind, c: &TokenClaims, secret: &AppSecret) -> Result<String, AuthError> {
    // Refuse to mint what a verifier must refuse ([AUTH-2.2]).
    validate_app_id(&c.app_id)?;
    check_user_id(c.user_id.as_bytes()).map_err(AuthError::InvalidUserId)?;
    match &c.device {
        Device::Any if kind == TokenKind::Resume => return Err(AuthError::ResumeAnyDevice), // [AUTH-5.1]
        Device::Any => {}
        Device::Id(id) => validate_device_id(id)?,
    }
    check_nonce(c.nonce.as_bytes()).map_err(AuthError::InvalidNonce)?;
    if c.expires <= c.not_before {
        return Err(AuthError::ExpiresNotAfterNotBefore {
            not_before: c.not_before,
            expires: c.expires,
        });
    }
    let payload = payload(kind, c);
    let tag = keyed(kind, secret)
        .chain_update(payload.as_bytes())
        .finalize()
        .into_bytes();
    Ok(format!(
        "{}{}.{}",
        kind.prefix(),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    ))
}

/// Mints a login token (`mt1.`) exactly as `spec/auth.md` §2 describes ([AUTH-2.1]). Fails if
/// the claims break §1 or §2 (bad id, bad nonce, `expires` not after `not_before`).
pub fn mint(claims: &TokenClaims, secret: &AppSecret) -> Result<String, AuthError> {
    mint_kind(TokenKind::Login, claims, secret)
}

/// Mints a resume token (`mr1.`, [AUTH-5.1]): same format, first field `magpie-resume/1`,
/// keyed with `HMAC-SHA256(app secret, "magpie-resume/1")`. The device must be a device id,
/// never [`Device::Any`].
pub fn mint_resume(claims: &TokenClaims, secret: &AppSecret) -> Result<String, AuthError> {
    mint_kind(TokenKind::Resume, claims, secret)
}

/// Verifies a login token from HELLO's `token` field: [AUTH-3.2] (well formed, tag, bound to the
/// HELLO's app, device and platform) then [AUTH-3.3] (time, lifetime), in that order, returning
/// the first failure. `secret` is the secret of the HELLO's app ([AUTH-3.1] is the caller's:
/// an unknown app is `APP_UNKNOWN`). `now` is the server's Unix time in seconds.
pub fn verify(
    token: &str,
    secret: &AppSecret,
    hello: &LoginContext<'_>,
    now: u64,
    policy: &VerifyPolicy,
) -> Result<VerifiedToken, TokenError> {
    verify_kind(TokenKind::Login, token, secret, hello, now, policy)
}

/// Verifies a resume token from HELLO's `resume_token` field: as [`verify`] ([AUTH-5.2]), with
/// the resume prefix, first field and key of [AUTH-5.1].
pub fn verify_resume(
    token: &str,
    secret: &AppSecret,
    hello: &LoginContext<'_>,
    now: u64,
    policy: &VerifyPolicy,
) -> Result<VerifiedToken, TokenError> {
    verify_kind(TokenKind::Resume, token, secret, hello, now, policy)
}

fn verify_kind(
    kind: TokenKind,
    token: &str,
    secret: &AppSecret,
    hello: &LoginContext<'_>,
    now: u64,
    policy: &VerifyPolicy,
) -> Result<VerifiedToken, TokenError> {
    let claims = authenticate(kind, token, secret)?;
    let claims = parse_fields(kind, &claims)?;

    // [AUTH-2.2] Binding to the HELLO.
    if claims.app_id != hello.app_id {
        return Err(TokenError::AppMismatch {
            token: claims.app_id,
            hello: hello.app_id.to_owned(),
        });
    }
    if !claims.device.allows(hello.device_id) {
        return Err(TokenError::DeviceMismatch {
            token: claims.device.as_str().to_owned(),
            hello: hello.device_id.to_owned(),
        });
    }
    if claims.platform != hello.platform {
        return Err(TokenError::PlatformMismatch {
            token: claims.platform.as_str(),
            hello: hello.platform.as_str(),
        });
    }

    // [AUTH-3.3] Time, with the skew window, in u128 so that nothing overflows.
    let skew = u128::from(policy.clock_skew);
    let now_wide = u128::from(now);
    if u128::from(claims.not_before) > now_wide + skew {
        return Err(TokenError::NotYetValid {
            not_before: claims.not_before,
            now,
        });
    }
    if u128::from(claims.expires) + skew <= now_wide {
        return Err(TokenError::Expired {
            expires: claims.expires,
            now,
        });
    }
    // [AUTH-3.3] "MAY also refuse lifetimes longer than its max_token_ttl".
    let lifetime = claims.expires - claims.not_before; // expires > not_before, checked in parsing
    if let Some(max) = policy.max_ttl
        && lifetime > max
    {
        return Err(TokenError::TtlTooLong { lifetime, max });
    }
    Ok(VerifiedToken { kind, claims })
}

/// Splits the token, decodes it and checks the tag ([AUTH-2.1], [AUTH-3.2]); returns the
/// payload bytes as received.
fn authenticate(kind: TokenKind, token: &str, secret: &AppSecret) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong { len: token.len() });
    }
    let Some(rest) = token.strip_prefix(kind.prefix()) else {
        // [AUTH-5.1] "a resume token can never pass as a login token or the reverse".
        let other = match kind {
            TokenKind::Login => TokenKind::Resume,
            TokenKind::Resume => TokenKind::Login,
        };
        if token.starts_with(other.prefix()) {
            return Err(TokenError::WrongKind {
                expected: kind,
                found: other,
            });
        }
        return Err(TokenError::BadPrefix);
    };
    let Some((payload_b64, tag_b64)) = rest.split_once('.') else {
        return Err(TokenError::BadEncoding { part: "structure" });
    };
    // URL_SAFE_NO_PAD refuses padding and non-canonical final symbols, so each token has one
    // encoding.
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::BadEncoding { part: "payload" })?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag_b64)
        .map_err(|_| TokenError::BadEncoding { part: "tag" })?;
    if tag.len() != TAG_LEN {
        return Err(TokenError::BadTag);
    }
    // [AUTH-2.1] The tag over the payload bytes as received, compared in constant time
    // (`verify_slice`).
    keyed(kind, secret)
        .chain_update(&payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadTag)?;
    Ok(payload)
}

/// ASCII bytes (already checked against a charset) to a `String`.
fn ascii(bytes: &[u8]) -> String {
    bytes.iter().copied().map(char::from).collect()
}

/// A canonical decimal time: ASCII digits, no leading zero (but "0" itself), at most `u64`.
fn parse_time(bytes: &[u8], field: &'static str) -> Result<u64, TokenError> {
    let bad = TokenError::NonCanonicalTime { field };
    if bytes.is_empty() || (bytes.len() > 1 && bytes[0] == b'0') {
        return Err(bad);
    }
    bytes.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(bad.clone());
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| bad.clone())
    })
}

/// The eight fields of §2, each checked ([AUTH-2.2]).
fn parse_fields(kind: TokenKind, payload: &[u8]) -> Result<TokenClaims, TokenError> {
    let fields: Vec<&[u8]> = payload.split(|&b| b == b'\n').collect();
    let [
        version,
        app_id,
        user_id,
        device,
        platform,
        not_before,
        expires,
        nonce,
    ] = fields[..]
    else {
        return Err(TokenError::FieldCount {
            found: fields.len(),
        });
    };
    if version != kind.version().as_bytes() {
        return Err(TokenError::BadVersion {
            expected: kind.version(),
        });
    }
    let bad = |field| move |problem| TokenError::BadField { field, problem };
    check_app_id(app_id).map_err(bad("app_id"))?;
    check_user_id(user_id).map_err(bad("user_id"))?;
    let device = if device == b"*" {
        if kind == TokenKind::Resume {
            return Err(TokenError::ResumeAnyDevice); // [AUTH-5.1] never `*`
        }
        Device::Any
    } else {
        check_user_id(device).map_err(bad("device"))?;
        Device::Id(ascii(device))
    };
    let platform = Platform::ALL
        .into_iter()
        .find(|p| p.as_str().as_bytes() == platform)
        .ok_or(TokenError::BadPlatform)?;
    let not_before = parse_time(not_before, "not_before")?;
    let expires = parse_time(expires, "expires")?;
    check_nonce(nonce).map_err(bad("nonce"))?;
    if expires <= not_before {
        return Err(TokenError::ExpiresNotAfterNotBefore {
            not_before,
            expires,
        });
    }
    Ok(TokenClaims {
        app_id: ascii(app_id),
        user_id: ascii(user_id),
        device,
        platform,
        not_before,
        expires,
        nonce: ascii(nonce),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::IdProblem;

    const SECRET: &str = "magpie-demo-secret-0001";
    const NB: u64 = 1_767_225_600;
    const EXP: u64 = 1_767_312_000;

    fn secret() -> AppSecret {
        AppSecret::new(SECRET).unwrap()
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            app_id: "demo".into(),
            user_id: "alice".into(),
            device: Device::Id("phone-1".into()),
            platform: Platform::Ios,
            not_before: NB,
            expires: EXP,
            nonce: "n0nce-AAAA".into(),
        }
    }

    fn hello() -> LoginContext<'static> {
        LoginContext::new("demo", "phone-1", Platform::Ios).unwrap()
    }

    fn policy() -> VerifyPolicy {
        VerifyPolicy::default()
    }

    fn login(token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        verify(token, &secret(), &hello(), now, &policy())
    }

    /// Signs arbitrary payload bytes, bypassing the minter's checks.
    fn sign_raw(kind: TokenKind, payload: &[u8]) -> String {
        let tag = keyed(kind, &secret())
            .chain_update(payload)
            .finalize()
            .into_bytes();
        format!(
            "{}{}.{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The example payload with field `i` replaced.
    fn with_field(i: usize, value: &str) -> String {
        let p = payload(TokenKind::Login, &claims());
        let mut fields: Vec<&str> = p.split('\n').collect();
        fields[i] = value;
        sign_raw(TokenKind::Login, fields.join("\n").as_bytes())
    }

    fn invalid(r: Result<VerifiedToken, TokenError>) -> TokenError {
        let e = r.unwrap_err();
        assert_eq!(e.code_name(), "TOKEN_INVALID", "{e:?}");
        assert_eq!(e.code(), 0x0D);
        e
    }

    #[test]
    fn worked_example_payload() {
        let p = payload(TokenKind::Login, &claims());
        assert_eq!(
            p,
            "magpie-token/1\ndemo\nalice\nphone-1\nios\n1767225600\n1767312000\nn0nce-AAAA"
        );
        // spec/auth.md §2.1 says 78 bytes; the payload it spells out is 70.
        assert_eq!(p.len(), 70);
    }

    #[test]
    fn round_trip() {
        let token = mint(&claims(), &secret()).unwrap();
        assert!(token.starts_with("mt1."));
        let v = login(&token, NB).unwrap();
        assert_eq!(v.kind, TokenKind::Login);
        assert_eq!(v.claims, claims());
        assert_eq!(v.user_id(), "alice");
        assert_eq!(v.not_before(), NB);
        assert_eq!(v.expires(), EXP);
        assert_eq!(v.nonce(), "n0nce-AAAA");
        assert_eq!(v.remember_nonce_until(&policy()), EXP + 300);
    }

    #[test]
    fn resume_round_trip_and_key() {
        let token = mint_resume(&claims(), &secret()).unwrap();
        assert!(token.starts_with("mr1."));
        let v = verify_resume(&token, &secret(), &hello(), NB, &policy()).unwrap();
        assert_eq!(v.kind, TokenKind::Resume);
        assert_eq!(v.claims, claims());
        // The resume key is HMAC-SHA256(secret, "magpie-resume/1"), not the secret.
        let p = payload(TokenKind::Resume, &claims());
        let key = hmac(SECRET.as_bytes())
            .chain_update(b"magpie-resume/1")
            .finalize()
            .into_bytes();
        let tag = hmac(&key)
            .chain_update(p.as_bytes())
            .finalize()
            .into_bytes();
        let expected = format!(
            "mr1.{}.{}",
            URL_SAFE_NO_PAD.encode(&p),
            URL_SAFE_NO_PAD.encode(tag)
        );
        assert_eq!(token, expected);
    }

    #[test]
    fn forged_tag() {
        let token = mint(&claims(), &secret()).unwrap();
        let (head, tag) = token.rsplit_once('.').unwrap();
        let mut tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        tag[0] ^= 1;
        let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&tag));
        let e = invalid(login(&forged, NB));
        assert_eq!(e, TokenError::BadTag);
        // A truncated or empty tag too.
        let short = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&tag[..31]));
        assert_eq!(invalid(login(&short, NB)), TokenError::BadTag);
        assert_eq!(invalid(login(&format!("{head}."), NB)), TokenError::BadTag);
    }

    #[test]
    fn tag_message_does_not_reveal_the_tag() {
        let token = mint(&claims(), &secret()).unwrap();
        let (head, tag) = token.rsplit_once('.').unwrap();
        let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        let msg = login(&forged, NB).unwrap_err().to_string();
        assert!(!msg.contains(tag), "{msg}");
        let tag_hex: String = URL_SAFE_NO_PAD
            .decode(tag)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!msg.contains(&tag_hex), "{msg}");
    }

    #[test]
    fn flipped_payload_byte() {
        let token = mint(&claims(), &secret()).unwrap();
        let rest = token.strip_prefix("mt1.").unwrap();
        let (p, tag) = rest.split_once('.').unwrap();
        let payload = URL_SAFE_NO_PAD.decode(p).unwrap();
        for i in 0..payload.len() {
            let mut flipped = payload.clone();
            flipped[i] ^= 0x01;
            let t = format!("mt1.{}.{tag}", URL_SAFE_NO_PAD.encode(&flipped));
            assert_eq!(invalid(login(&t, NB)), TokenError::BadTag, "byte {i}");
        }
    }

    #[test]
    fn wrong_secret() {
        let other = AppSecret::new("another-secret-of-demo").unwrap();
        let token = mint(&claims(), &other).unwrap();
        assert_eq!(invalid(login(&token, NB)), TokenError::BadTag);
    }

    #[test]
    fn wrong_app() {
        let token = mint(&claims(), &secret()).unwrap();
        let hello = LoginContext::new("demo2", "phone-1", Platform::Ios).unwrap();
        let e = invalid(verify(&token, &secret(), &hello, NB, &policy()));
        assert_eq!(e.to_string(), "token is for app demo, HELLO says app demo2");
    }

    #[test]
    fn wrong_device() {
        let token = mint(&claims(), &secret()).unwrap();
        let hello = LoginContext::new("demo", "phone-2", Platform::Ios).unwrap();
        let e = invalid(verify(&token, &secret(), &hello, NB, &policy()));
        assert_eq!(
            e.to_string(),
            "token is for device phone-1, HELLO says device phone-2"
        );
    }

    #[test]
    fn wrong_platform() {
        let token = mint(&claims(), &secret()).unwrap();
        let hello = LoginContext::new("demo", "phone-1", Platform::Android).unwrap();
        let e = invalid(verify(&token, &secret(), &hello, NB, &policy()));
        assert_eq!(
            e.to_string(),
            "token is for platform ios, HELLO says platform android"
        );
    }

    #[test]
    fn any_device_accepted_for_every_device() {
        let c = TokenClaims {
            device: Device::Any,
            ..claims()
        };
        let token = mint(&c, &secret()).unwrap();
        for device in ["phone-1", "tablet-9", "x"] {
            let hello = LoginContext::new("demo", device, Platform::Ios).unwrap();
            let v = verify(&token, &secret(), &hello, NB, &policy()).unwrap();
            assert_eq!(v.claims.device, Device::Any);
        }
        // The platform still binds.
        let hello = LoginContext::new("demo", "tablet-9", Platform::Web).unwrap();
        invalid(verify(&token, &secret(), &hello, NB, &policy()));
    }

    #[test]
    fn expiry_with_skew() {
        let token = mint(&claims(), &secret()).unwrap();
        // expires <= now - 300 is expired: the last good second is EXP + 299.
        assert!(login(&token, EXP + 299).is_ok());
        let e = login(&token, EXP + 300).unwrap_err();
        assert_eq!(e.code_name(), "TOKEN_EXPIRED");
        assert_eq!(e.code(), 0x0E);
        assert_eq!(
            e.to_string(),
            format!("token expired at {EXP}, server time {}", EXP + 300)
        );
        let e = login(&token, 1_767_400_000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "token expired at 1767312000, server time 1767400000"
        );
        // No skew: expires == now is expired.
        let strict = VerifyPolicy {
            clock_skew: 0,
            ..policy()
        };
        assert!(verify(&token, &secret(), &hello(), EXP - 1, &strict).is_ok());
        assert!(matches!(
            verify(&token, &secret(), &hello(), EXP, &strict),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn not_yet_valid_with_skew() {
        let token = mint(&claims(), &secret()).unwrap();
        // not_before > now + 300 is not yet valid: the first good second is NB - 300.
        assert!(login(&token, NB - 300).is_ok());
        let e = login(&token, NB - 301).unwrap_err();
        assert_eq!(e.code_name(), "TOKEN_NOT_YET_VALID");
        assert_eq!(e.code(), 0x0F);
        assert_eq!(
            e.to_string(),
            format!("token not valid before {NB}, server time {}", NB - 301)
        );
        assert!(matches!(
            login(&token, 0),
            Err(TokenError::NotYetValid { .. })
        ));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let c = TokenClaims {
            not_before: u64::MAX - 1,
            expires: u64::MAX,
            ..claims()
        };
        let token = mint(&c, &secret()).unwrap();
        assert!(matches!(login(&token, u64::MAX), Ok(VerifiedToken { .. })));
        let huge = VerifyPolicy {
            clock_skew: u64::MAX,
            max_ttl: None,
        };
        let t = mint(&claims(), &secret()).unwrap();
        assert!(verify(&t, &secret(), &hello(), 0, &huge).is_ok());
        assert!(verify(&t, &secret(), &hello(), u64::MAX, &huge).is_ok());
        let c = TokenClaims {
            not_before: 0,
            expires: 1,
            ..claims()
        };
        let t = mint(&c, &secret()).unwrap();
        assert!(login(&t, 0).is_ok());
        assert!(login(&t, 300).is_ok());
        assert!(matches!(login(&t, 301), Err(TokenError::Expired { .. })));
    }

    #[test]
    fn expires_not_after_not_before() {
        for exp in [NB, NB - 1, 0] {
            let t = with_field(6, &exp.to_string());
            assert_eq!(
                invalid(login(&t, NB)),
                TokenError::ExpiresNotAfterNotBefore {
                    not_before: NB,
                    expires: exp
                }
            );
            let c = TokenClaims {
                expires: exp,
                ..claims()
            };
            assert!(matches!(
                mint(&c, &secret()),
                Err(AuthError::ExpiresNotAfterNotBefore { .. })
            ));
        }
    }

    #[test]
    fn non_canonical_times() {
        for (i, field) in [(5, "not_before"), (6, "expires")] {
            for bad in [
                "01767225600",
                "+1767225600",
                "1767225600 ",
                "1_767_225_600",
                "",
                "-1",
                "1.5",
                "18446744073709551616", // u64::MAX + 1
                "0x69558000",
                "١٢",
            ] {
                let t = with_field(i, bad);
                assert_eq!(
                    invalid(login(&t, NB)),
                    TokenError::NonCanonicalTime { field },
                    "{field} = {bad:?}"
                );
            }
        }
        // "0" is canonical.
        let t = with_field(5, "0");
        assert!(matches!(login(&t, NB), Err(TokenError::TtlTooLong { .. })));
        assert!(parse_time(b"0", "x").is_ok());
        assert_eq!(parse_time(b"18446744073709551615", "x"), Ok(u64::MAX));
        assert!(parse_time(b"00", "x").is_err());
    }

    #[test]
    fn field_counts() {
        let p = payload(TokenKind::Login, &claims());
        let seven = p.rsplit_once('\n').unwrap().0.to_owned();
        assert_eq!(
            invalid(login(&sign_raw(TokenKind::Login, seven.as_bytes()), NB)),
            TokenError::FieldCount { found: 7 }
        );
        let nine = format!("{p}\nextra");
        assert_eq!(
            invalid(login(&sign_raw(TokenKind::Login, nine.as_bytes()), NB)),
            TokenError::FieldCount { found: 9 }
        );
        let trailing = format!("{p}\n");
        assert_eq!(
            invalid(login(&sign_raw(TokenKind::Login, trailing.as_bytes()), NB)),
            TokenError::FieldCount { found: 9 }
        );
        let crlf = p.replace('\n', "\r\n");
        invalid(login(&sign_raw(TokenKind::Login, crlf.as_bytes()), NB));
        assert_eq!(
            invalid(login(&sign_raw(TokenKind::Login, b""), NB)),
            TokenError::FieldCount { found: 1 }
        );
    }

    #[test]
    fn bad_charsets() {
        let cases: [(usize, &str, &str); 11] = [
            (1, "de.mo", "app_id"),
            (1, "", "app_id"),
            (2, "al ice", "user_id"),
            (2, "al:ice", "user_id"),
            (2, "alice/x", "user_id"),
            (2, "", "user_id"),
            (3, "phone 1", "device"),
            (3, "**", "device"),
            (7, "n0nce", "nonce"),
            (7, "n0nce.AAAA", "nonce"),
            (7, "n0nce=AAAA", "nonce"),
        ];
        for (i, value, field) in cases {
            let e = invalid(login(&with_field(i, value), NB));
            assert!(
                matches!(e, TokenError::BadField { field: f, .. } if f == field),
                "{value:?}: {e:?}"
            );
        }
        let e = invalid(login(&with_field(2, "al ice"), NB));
        assert_eq!(
            e.to_string(),
            "token field user_id has byte 0x20 at offset 2, which is not allowed"
        );
        assert_eq!(
            e,
            TokenError::BadField {
                field: "user_id",
                problem: IdProblem::Byte { byte: b' ', at: 2 }
            }
        );
        for p in ["IOS", "iOS", "", "unspecified", "ios "] {
            assert_eq!(
                invalid(login(&with_field(4, p), NB)),
                TokenError::BadPlatform,
                "{p:?}"
            );
        }
        // Non-UTF-8 bytes in a field.
        let mut raw = payload(TokenKind::Login, &claims()).into_bytes();
        raw[16] = 0xff;
        invalid(login(&sign_raw(TokenKind::Login, &raw), NB));
    }

    #[test]
    fn first_field() {
        for v in ["magpie-token/2", "magpie-resume/1", "", "Magpie-token/1"] {
            assert_eq!(
                invalid(login(&with_field(0, v), NB)),
                TokenError::BadVersion {
                    expected: "magpie-token/1"
                }
            );
        }
    }

    #[test]
    fn resume_and_login_never_cross() {
        let resume = mint_resume(&claims(), &secret()).unwrap();
        let login_token = mint(&claims(), &secret()).unwrap();
        assert_eq!(
            invalid(login(&resume, NB)),
            TokenError::WrongKind {
                expected: TokenKind::Login,
                found: TokenKind::Resume
            }
        );
        assert_eq!(
            invalid(verify_resume(
                &login_token,
                &secret(),
                &hello(),
                NB,
                &policy()
            )),
            TokenError::WrongKind {
                expected: TokenKind::Resume,
                found: TokenKind::Login
            }
        );
        // Relabelled prefixes fail the tag: the keys differ.
        let relabelled = resume.replacen("mr1.", "mt1.", 1);
        assert_eq!(invalid(login(&relabelled, NB)), TokenError::BadTag);
        let relabelled = login_token.replacen("mt1.", "mr1.", 1);
        assert_eq!(
            invalid(verify_resume(
                &relabelled,
                &secret(),
                &hello(),
                NB,
                &policy()
            )),
            TokenError::BadTag
        );
        // A login payload under the resume key still fails on its first field.
        let p = payload(TokenKind::Login, &claims());
        let t = sign_raw(TokenKind::Resume, p.as_bytes());
        assert_eq!(
            invalid(verify_resume(&t, &secret(), &hello(), NB, &policy())),
            TokenError::BadVersion {
                expected: "magpie-resume/1"
            }
        );
    }

    #[test]
    fn resume_never_any_device() {
        let c = TokenClaims {
            device: Device::Any,
            ..claims()
        };
        assert!(matches!(
            mint_resume(&c, &secret()),
            Err(AuthError::ResumeAnyDevice)
        ));
        let mut p = payload(TokenKind::Resume, &claims());
        p = p.replace("\nphone-1\n", "\n*\n");
        let t = sign_raw(TokenKind::Resume, p.as_bytes());
        assert_eq!(
            invalid(verify_resume(&t, &secret(), &hello(), NB, &policy())),
            TokenError::ResumeAnyDevice
        );
    }

    #[test]
    fn max_ttl() {
        let c = TokenClaims {
            expires: NB + DEFAULT_MAX_TTL,
            ..claims()
        };
        let t = mint(&c, &secret()).unwrap();
        assert!(login(&t, NB).is_ok());
        let c = TokenClaims {
            expires: NB + DEFAULT_MAX_TTL + 1,
            ..claims()
        };
        let t = mint(&c, &secret()).unwrap();
        assert_eq!(
            invalid(login(&t, NB)),
            TokenError::TtlTooLong {
                lifetime: DEFAULT_MAX_TTL + 1,
                max: DEFAULT_MAX_TTL
            }
        );
        let lax = VerifyPolicy {
            max_ttl: None,
            ..policy()
        };
        assert!(verify(&t, &secret(), &hello(), NB, &lax).is_ok());
    }

    #[test]
    fn malformed_structure() {
        let token = mint(&claims(), &secret()).unwrap();
        let (head, tag) = token.rsplit_once('.').unwrap();
        for (bad, want) in [
            ("".to_owned(), TokenError::BadPrefix),
            ("mt1".to_owned(), TokenError::BadPrefix),
            ("MT1.abc.def".to_owned(), TokenError::BadPrefix),
            ("mt2.abc.def".to_owned(), TokenError::BadPrefix),
            (
                "mt1.abc".to_owned(),
                TokenError::BadEncoding { part: "structure" },
            ),
            (
                format!("{head}.{tag}="),
                TokenError::BadEncoding { part: "tag" },
            ),
            (
                format!("{head}.{tag}.x"),
                TokenError::BadEncoding { part: "tag" },
            ),
            (
                format!("{head}+.{tag}"),
                TokenError::BadEncoding { part: "payload" },
            ),
            (format!(" {token}"), TokenError::BadPrefix),
            (format!("{token} "), TokenError::BadEncoding { part: "tag" }),
            (
                "x".repeat(MAX_TOKEN_LEN + 1),
                TokenError::TooLong {
                    len: MAX_TOKEN_LEN + 1,
                },
            ),
        ] {
            assert_eq!(invalid(login(&bad, NB)), want, "{bad:?}");
        }
        // Standard base64 (`+`, `/`) is not base64url: swap a `-`/`_` if present.
        let std_tag = tag.replace('-', "+").replace('_', "/");
        if std_tag != tag {
            invalid(login(&format!("{head}.{std_tag}"), NB));
        }
        // The tag is 32 bytes: 43 symbols whose last carries 2 spare bits that must be zero.
        assert_eq!(tag.len(), 43);
        let last = tag.as_bytes()[42];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.iter().position(|&c| c == last).unwrap();
        let sloppy = char::from(alphabet[idx | 1]);
        if idx & 1 == 0 {
            let t = format!("{}{sloppy}", &token[..token.len() - 1]);
            assert_eq!(
                invalid(login(&t, NB)),
                TokenError::BadEncoding { part: "tag" }
            );
        }
    }

    #[test]
    fn longest_valid_token_fits() {
        let c = TokenClaims {
            app_id: "a".repeat(32),
            user_id: "u".repeat(64),
            device: Device::Id("d".repeat(64)),
            platform: Platform::Android,
            not_before: u64::MAX - 1,
            expires: u64::MAX,
            nonce: "n".repeat(64),
        };
        let t = mint_resume(&c, &secret()).unwrap();
        assert_eq!(t.len(), 439);
        assert!(t.len() <= MAX_TOKEN_LEN);
        assert!(mint(&c, &secret()).unwrap().len() <= MAX_TOKEN_LEN);
    }

    #[test]
    fn mint_refuses_bad_claims() {
        let bad = [
            TokenClaims {
                app_id: "de.mo".into(),
                ..claims()
            },
            TokenClaims {
                user_id: "al ice".into(),
                ..claims()
            },
            TokenClaims {
                device: Device::Id("*".into()),
                ..claims()
            },
            TokenClaims {
                device: Device::Id(String::new()),
                ..claims()
            },
            TokenClaims {
                nonce: "short".into(),
                ..claims()
            },
        ];
        for c in bad {
            assert!(mint(&c, &secret()).is_err(), "{c:?}");
        }
    }

    #[test]
    fn revocation() {
        assert!(check_revocation(NB, 0).is_ok());
        assert!(check_revocation(NB, NB).is_ok());
        let e = check_revocation(NB, NB + 1).unwrap_err();
        assert_eq!(e.code_name(), "TOKEN_REVOKED");
        assert_eq!(e.code(), 0x11);
    }

    #[test]
    fn nonces_are_random_and_valid() {
        let a = random_nonce().unwrap();
        let b = random_nonce().unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        crate::validate_nonce(&a).unwrap();
        let c = TokenClaims {
            nonce: a,
            ..claims()
        };
        assert!(login(&mint(&c, &secret()).unwrap(), NB).is_ok());
    }

    #[test]
    fn context_is_checked() {
        assert!(LoginContext::new("demo", "", Platform::Ios).is_err());
        assert!(LoginContext::new("demo", "*", Platform::Ios).is_err());
        assert!(LoginContext::new("de mo", "phone-1", Platform::Ios).is_err());
        let h = hello();
        assert_eq!(
            (h.app_id(), h.device_id(), h.platform()),
            ("demo", "phone-1", Platform::Ios)
        );
    }
}
