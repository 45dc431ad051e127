//! Token vectors (`spec/auth.md` §2, §3, §5): the worked example of §2.1 with every
//! intermediate value, and the cases a verifier must accept or refuse. Built field by field
//! with HMAC-SHA256 directly, independently of `magpie-auth`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

/// The HELLO a token arrives in ([AUTH-2.2]).
#[derive(Serialize, Clone, Debug)]
pub(crate) struct Context {
    device_id: &'static str,
    platform: &'static str,
    /// The HELLO field holding the token: "token" (login, §2) or "resume_token" (§5).
    credential: &'static str,
}

/// Server settings the vector assumes ([AUTH-3.3]).
#[derive(Serialize, Clone, Debug)]
pub(crate) struct Policy {
    clock_skew: u64,
    max_token_ttl: u64,
}

/// What a verifier reports for an accepted token.
#[derive(Serialize, Clone, Debug)]
pub(crate) struct Accept {
    /// "login" or "resume".
    kind: &'static str,
    user_id: &'static str,
    /// The token's device field: a device id or `*`.
    device: &'static str,
    platform: &'static str,
    not_before: u64,
    expires: u64,
    nonce: &'static str,
}

/// One token vector: a server of app `app_id` with `secret` and `policy`, at Unix time `now`,
/// reads `token` from a HELLO with `context`, and accepts it (`accept`) or closes with the code
/// named in `error` (`spec/errors.md` §2).
#[derive(Serialize, Clone, Debug)]
pub(crate) struct TokenVector {
    id: &'static str,
    description: &'static str,
    clauses: Vec<&'static str>,
    app_id: &'static str,
    secret: &'static str,
    context: Context,
    policy: Policy,
    now: u64,
    /// The user's "revoked before" time ([AUTH-3.4]); absent means 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_before: Option<u64>,
    /// The payload the token was built from, as text (fields separated by LF).
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    /// The payload bytes, lowercase hex (worked examples only).
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_hex: Option<String>,
    /// The HMAC key, lowercase hex, for resume tokens: HMAC-SHA256(secret, "magpie-resume/1")
    /// (worked examples only).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_hex: Option<String>,
    /// The tag, lowercase hex (worked examples only).
    #[serde(skip_serializing_if = "Option::is_none")]
    tag_hex: Option<String>,
    token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    accept: Option<Accept>,
    /// TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_NOT_YET_VALID or TOKEN_REVOKED.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

const APP: &str = "demo";
const SECRET: &str = "magpie-demo-secret-0001";
const USER: &str = "alice";
const DEVICE: &str = "phone-1";
const PLATFORM: &str = "ios";
const NOT_BEFORE: u64 = 1_767_225_600;
const EXPIRES: u64 = 1_767_312_000;
const NONCE: &str = "n0nce-AAAA";
const RESUME_NONCE: &str = "r3sume-BBBB";
const RESUME_TTL: u64 = 7 * 24 * 3600;
const CLOCK_SKEW: u64 = 300;
const MAX_TOKEN_TTL: u64 = 30 * 24 * 3600;
/// A time well inside the example's validity, for cases about something else.
const NOW: u64 = NOT_BEFORE + 3600;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The resume key of [AUTH-5.1].
fn resume_key(secret: &str) -> Vec<u8> {
    hmac_sha256(secret.as_bytes(), b"magpie-resume/1")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The eight fields of §2, as text so that cases can break any of them.
#[derive(Clone)]
struct Fields {
    version: &'static str,
    app_id: &'static str,
    user_id: &'static str,
    device: &'static str,
    platform: &'static str,
    not_before: String,
    expires: String,
    nonce: &'static str,
}

impl Fields {
    fn example() -> Fields {
        Fields {
            version: "magpie-token/1",
            app_id: APP,
            user_id: USER,
            device: DEVICE,
            platform: PLATFORM,
            not_before: NOT_BEFORE.to_string(),
            expires: EXPIRES.to_string(),
            nonce: NONCE,
        }
    }

    fn resume() -> Fields {
        Fields {
            version: "magpie-resume/1",
            expires: (NOT_BEFORE + RESUME_TTL).to_string(),
            nonce: RESUME_NONCE,
            ..Fields::example()
        }
    }

    fn list(&self) -> Vec<&str> {
        vec![
            self.version,
            self.app_id,
            self.user_id,
            self.device,
            self.platform,
            &self.not_before,
            &self.expires,
            self.nonce,
        ]
    }

    /// `payload` of §2: the fields joined with LF.
    fn payload(&self) -> String {
        self.list().join("\n")
    }
}

/// A token as a minter builds it: prefix, base64url payload, ".", base64url tag.
struct Minted {
    payload: String,
    tag: Vec<u8>,
    token: String,
}

fn sign(prefix: &str, key: &[u8], payload: String) -> Minted {
    let tag = hmac_sha256(key, payload.as_bytes());
    let token = format!("{prefix}{}.{}", b64(payload.as_bytes()), b64(&tag));
    Minted {
        payload,
        tag,
        token,
    }
}

fn login(fields: &Fields) -> Minted {
    sign("mt1.", SECRET.as_bytes(), fields.payload())
}

fn resume(fields: &Fields) -> Minted {
    sign("mr1.", &resume_key(SECRET), fields.payload())
}

fn accept_example() -> Accept {
    Accept {
        kind: "login",
        user_id: USER,
        device: DEVICE,
        platform: PLATFORM,
        not_before: NOT_BEFORE,
        expires: EXPIRES,
        nonce: NONCE,
    }
}

/// Builds a vector; by default the example's HELLO and server, at `NOW`.
struct Case {
    v: TokenVector,
}

impl Case {
    fn new(id: &'static str, description: &'static str, clauses: &[&'static str]) -> Case {
        Case {
            v: TokenVector {
                id,
                description,
                clauses: clauses.to_vec(),
                app_id: APP,
                secret: SECRET,
                context: Context {
                    device_id: DEVICE,
                    platform: PLATFORM,
                    credential: "token",
                },
                policy: Policy {
                    clock_skew: CLOCK_SKEW,
                    max_token_ttl: MAX_TOKEN_TTL,
                },
                now: NOW,
                revoked_before: None,
                payload: None,
                payload_hex: None,
                key_hex: None,
                tag_hex: None,
                token: String::new(),
                accept: None,
                error: None,
            },
        }
    }

    fn minted(mut self, m: &Minted) -> Case {
        self.v.payload = Some(m.payload.clone());
        self.v.token = m.token.clone();
        self
    }

    /// Adds every intermediate value (worked examples).
    fn intermediates(mut self, m: &Minted, key: Option<&[u8]>) -> Case {
        self.v.payload_hex = Some(hex::encode(m.payload.as_bytes()));
        self.v.key_hex = key.map(hex::encode);
        self.v.tag_hex = Some(hex::encode(&m.tag));
        self
    }

    fn token(mut self, token: String) -> Case {
        self.v.token = token;
        self
    }

    fn now(mut self, now: u64) -> Case {
        self.v.now = now;
        self
    }

    fn app(mut self, app_id: &'static str) -> Case {
        self.v.app_id = app_id;
        self
    }

    fn device(mut self, device_id: &'static str) -> Case {
        self.v.context.device_id = device_id;
        self
    }

    fn platform(mut self, platform: &'static str) -> Case {
        self.v.context.platform = platform;
        self
    }

    fn in_resume_field(mut self) -> Case {
        self.v.context.credential = "resume_token";
        self
    }

    fn revoked_before(mut self, t: u64) -> Case {
        self.v.revoked_before = Some(t);
        self
    }

    fn accept(mut self, accept: Accept) -> TokenVector {
        self.v.accept = Some(accept);
        self.v
    }

    fn error(mut self, name: &'static str) -> TokenVector {
        self.v.error = Some(name);
        self.v
    }
}

pub(crate) fn vectors() -> Vec<TokenVector> {
    let example = login(&Fields::example());
    let resume_example = resume(&Fields::resume());
    let (example_head, example_tag) = example.token.rsplit_once('.').expect("a token has a tag");

    let mut forged_tag = example.tag.clone();
    forged_tag[0] ^= 0x01;
    let mut flipped = example.payload.clone().into_bytes();
    let at = example.payload.find("alice").expect("user in payload") + 4;
    flipped[at] ^= 0x01; // "alice" -> "alicd"
    let flipped = String::from_utf8(flipped).expect("still ASCII");

    let with = |change: &dyn Fn(&mut Fields)| {
        let mut f = Fields::example();
        change(&mut f);
        login(&f)
    };
    let seven = {
        let f = Fields::example();
        sign("mt1.", SECRET.as_bytes(), f.list()[..7].join("\n"))
    };
    let nine = sign(
        "mt1.",
        SECRET.as_bytes(),
        format!("{}\nextra", Fields::example().payload()),
    );
    let resume_any = resume(&Fields {
        device: "*",
        ..Fields::resume()
    });

    vec![
        Case::new(
            "token/example",
            "the worked example of spec/auth.md §2.1, presented at its not_before",
            &["AUTH-2.1", "AUTH-3.2", "AUTH-3.3"],
        )
        .minted(&example)
        .intermediates(&example, None)
        .now(NOT_BEFORE)
        .accept(accept_example()),
        Case::new(
            "token/expiry-inside-skew",
            "299 s after expires is inside the 300 s skew window: accepted",
            &["AUTH-3.3"],
        )
        .minted(&example)
        .now(EXPIRES + CLOCK_SKEW - 1)
        .accept(accept_example()),
        Case::new(
            "token/expired",
            "expires <= now - clock_skew: 300 s after expires is expired",
            &["AUTH-3.3"],
        )
        .minted(&example)
        .now(EXPIRES + CLOCK_SKEW)
        .error("TOKEN_EXPIRED"),
        Case::new(
            "token/not-before-inside-skew",
            "300 s before not_before is inside the skew window: accepted",
            &["AUTH-3.3"],
        )
        .minted(&example)
        .now(NOT_BEFORE - CLOCK_SKEW)
        .accept(accept_example()),
        Case::new(
            "token/not-yet-valid",
            "not_before > now + clock_skew: 301 s before not_before",
            &["AUTH-3.3"],
        )
        .minted(&example)
        .now(NOT_BEFORE - CLOCK_SKEW - 1)
        .error("TOKEN_NOT_YET_VALID"),
        Case::new(
            "token/forged-tag",
            "the example with the first tag byte flipped",
            &["AUTH-2.1", "AUTH-2.2"],
        )
        .minted(&example)
        .token(format!("{example_head}.{}", b64(&forged_tag)))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/flipped-payload-byte",
            "one payload bit flipped (user alice -> alicd) under the example's tag",
            &["AUTH-2.1", "AUTH-2.2"],
        )
        .token(format!("mt1.{}.{example_tag}", b64(flipped.as_bytes())))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/wrong-secret",
            "the example payload tagged with another secret",
            &["AUTH-2.2"],
        )
        .minted(&sign(
            "mt1.",
            b"magpie-demo-secret-0002",
            Fields::example().payload(),
        ))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/wrong-app",
            "a token of app demo presented to app demo2, which has the same secret",
            &["AUTH-2.2"],
        )
        .minted(&example)
        .app("demo2")
        .error("TOKEN_INVALID"),
        Case::new(
            "token/wrong-device",
            "a token for device phone-1 in a HELLO from phone-2",
            &["AUTH-2.2"],
        )
        .minted(&example)
        .device("phone-2")
        .error("TOKEN_INVALID"),
        Case::new(
            "token/any-device",
            "device * is accepted from any device of the user",
            &["AUTH-2.2"],
        )
        .minted(&with(&|f| f.device = "*"))
        .device("tablet-9")
        .accept(Accept {
            device: "*",
            ..accept_example()
        }),
        Case::new(
            "token/wrong-platform",
            "an ios token in a HELLO from an android client",
            &["AUTH-2.2"],
        )
        .minted(&example)
        .platform("android")
        .error("TOKEN_INVALID"),
        Case::new(
            "token/malformed-7-fields",
            "a correctly tagged payload without its nonce field",
            &["AUTH-2.2"],
        )
        .minted(&seven)
        .error("TOKEN_INVALID"),
        Case::new(
            "token/malformed-9-fields",
            "a correctly tagged payload with a ninth field",
            &["AUTH-2.2"],
        )
        .minted(&nine)
        .error("TOKEN_INVALID"),
        Case::new(
            "token/non-canonical-time",
            "not_before with a leading zero, correctly tagged",
            &["AUTH-2.2"],
        )
        .minted(&with(&|f| f.not_before = format!("0{NOT_BEFORE}")))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/bad-user-id",
            "a user id with a colon, outside the charset of [AUTH-1.2], correctly tagged",
            &["AUTH-1.2", "AUTH-2.2"],
        )
        .minted(&with(&|f| f.user_id = "alice:admin"))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/bad-platform",
            "platform IOS: platforms are lowercase",
            &["AUTH-1.3", "AUTH-2.2"],
        )
        .minted(&with(&|f| f.platform = "IOS"))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/expires-not-after-not-before",
            "expires equal to not_before",
            &["AUTH-2.2"],
        )
        .minted(&with(&|f| f.expires = NOT_BEFORE.to_string()))
        .now(NOT_BEFORE)
        .error("TOKEN_INVALID"),
        Case::new(
            "token/lifetime-over-max",
            "a lifetime of 30 days and 1 s, over the default max_token_ttl (a server MAY refuse)",
            &["AUTH-3.3"],
        )
        .minted(&with(&|f| {
            f.expires = (NOT_BEFORE + MAX_TOKEN_TTL + 1).to_string();
        }))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/padded-tag",
            "base64url with padding is not the token's encoding",
            &["AUTH-2.2"],
        )
        .minted(&example)
        .token(format!("{}=", example.token))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/bad-prefix",
            "prefix mt2. is not a version-1 token",
            &["AUTH-2.2"],
        )
        .minted(&example)
        .token(example.token.replacen("mt1.", "mt2.", 1))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/resume-example",
            "a resume token (7-day lifetime), presented as HELLO's resume_token",
            &["AUTH-5.1", "AUTH-5.2"],
        )
        .minted(&resume_example)
        .intermediates(&resume_example, Some(&resume_key(SECRET)))
        .in_resume_field()
        .accept(Accept {
            kind: "resume",
            expires: NOT_BEFORE + RESUME_TTL,
            nonce: RESUME_NONCE,
            ..accept_example()
        }),
        Case::new(
            "token/resume-as-login",
            "a resume token presented as HELLO's (login) token",
            &["AUTH-5.1"],
        )
        .minted(&resume_example)
        .error("TOKEN_INVALID"),
        Case::new(
            "token/login-as-resume",
            "a login token presented as HELLO's resume_token",
            &["AUTH-5.1"],
        )
        .minted(&example)
        .in_resume_field()
        .error("TOKEN_INVALID"),
        Case::new(
            "token/resume-relabelled",
            "a resume token with its prefix changed to mt1.: the keys differ, so the tag fails",
            &["AUTH-5.1"],
        )
        .minted(&resume_example)
        .token(resume_example.token.replacen("mr1.", "mt1.", 1))
        .error("TOKEN_INVALID"),
        Case::new(
            "token/resume-any-device",
            "a correctly tagged resume token for device *, which resume tokens never are",
            &["AUTH-5.1"],
        )
        .minted(&resume_any)
        .in_resume_field()
        .error("TOKEN_INVALID"),
        Case::new(
            "token/revoked",
            "the user revoked tokens 1 s after the example's not_before",
            &["AUTH-3.4"],
        )
        .minted(&example)
        .revoked_before(NOT_BEFORE + 1)
        .error("TOKEN_REVOKED"),
        Case::new(
            "token/revoked-at-not-before",
            "revoked before exactly not_before: the token is not earlier, so it is accepted",
            &["AUTH-3.4"],
        )
        .minted(&example)
        .revoked_before(NOT_BEFORE)
        .accept(accept_example()),
    ]
}
