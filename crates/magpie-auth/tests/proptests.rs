//! Property tests: mint→verify round trips for arbitrary valid claims; arbitrary input never
//! panics the verifier.

use magpie_auth::{
    AppSecret, Device, LoginContext, Platform, TokenClaims, VerifyPolicy, mint, mint_resume,
    verify, verify_resume,
};
use proptest::prelude::*;

fn platform() -> impl Strategy<Value = Platform> {
    prop::sample::select(Platform::ALL.to_vec())
}

fn claims() -> impl Strategy<Value = TokenClaims> {
    (
        "[A-Za-z0-9_-]{1,32}",
        "[A-Za-z0-9_.@=-]{1,64}",
        prop::option::of("[A-Za-z0-9_.@=-]{1,64}"),
        platform(),
        any::<u64>(),
        1..=u64::MAX,
        "[A-Za-z0-9_-]{8,64}",
    )
        .prop_map(|(app_id, user_id, device, platform, nb, span, nonce)| {
            let not_before = nb.min(u64::MAX - 1);
            TokenClaims {
                app_id,
                user_id,
                device: device.map_or(Device::Any, Device::Id),
                platform,
                not_before,
                expires: not_before.saturating_add(span),
                nonce,
            }
        })
}

fn lax() -> VerifyPolicy {
    VerifyPolicy {
        clock_skew: 300,
        max_ttl: None,
    }
}

proptest! {
    #[test]
    fn login_round_trip(c in claims(), secret in ".{16,40}", other in "[A-Za-z0-9_.@=-]{1,64}") {
        prop_assume!(secret.len() >= 16);
        let secret = AppSecret::new(secret).unwrap();
        let token = mint(&c, &secret).unwrap();
        let device = match &c.device {
            Device::Any => other.as_str(),
            Device::Id(id) => id.as_str(),
        };
        let hello = LoginContext::new(&c.app_id, device, c.platform).unwrap();
        let v = verify(&token, &secret, &hello, c.not_before, &lax()).unwrap();
        prop_assert_eq!(&v.claims, &c);
        // A resume token of the same claims never passes as a login token, nor the reverse.
        if matches!(c.device, Device::Id(_)) {
            let resume = mint_resume(&c, &secret).unwrap();
            let r = verify_resume(&resume, &secret, &hello, c.not_before, &lax()).unwrap();
            prop_assert_eq!(&r.claims, &c);
            prop_assert!(verify(&resume, &secret, &hello, c.not_before, &lax()).is_err());
            prop_assert!(verify_resume(&token, &secret, &hello, c.not_before, &lax()).is_err());
        }
    }

    #[test]
    fn any_string_never_panics(token in ".{0,600}", now in any::<u64>()) {
        let secret = AppSecret::new("magpie-demo-secret-0001").unwrap();
        let hello = LoginContext::new("demo", "phone-1", Platform::Ios).unwrap();
        let e = verify(&token, &secret, &hello, now, &VerifyPolicy::default());
        prop_assert!(e.is_err());
        prop_assert!(verify_resume(&token, &secret, &hello, now, &VerifyPolicy::default()).is_err());
    }

    #[test]
    fn prefixed_garbage_never_panics(body in "[A-Za-z0-9_.=+/-]{0,450}", resume in any::<bool>()) {
        let secret = AppSecret::new("magpie-demo-secret-0001").unwrap();
        let hello = LoginContext::new("demo", "phone-1", Platform::Ios).unwrap();
        let token = format!("{}{body}", if resume { "mr1." } else { "mt1." });
        let e = verify(&token, &secret, &hello, 1_767_225_600, &VerifyPolicy::default());
        prop_assert!(e.is_err());
    }

    #[test]
    fn mutated_tokens_are_refused(c in claims(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let secret = AppSecret::new("magpie-demo-secret-0001").unwrap();
        let token = mint(&c, &secret).unwrap();
        let mut bytes = token.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        // Any single-bit change is refused (or is no longer UTF-8 text at all).
        if let Ok(t) = String::from_utf8(bytes) {
            let device = match &c.device { Device::Any => "x", Device::Id(id) => id.as_str() };
            let hello = LoginContext::new(&c.app_id, device, c.platform).unwrap();
            let r = verify(&t, &secret, &hello, c.not_before, &lax());
            prop_assert!(r.is_err(), "{:?}", r);
        }
    }
}
