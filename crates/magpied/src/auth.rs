//! Authenticating a HELLO (`spec/auth.md` §3) and building the WELCOME.

use magpie_auth::{
    Device, LoginContext, Platform, TokenClaims, TokenKind, VerifiedToken, check_revocation,
    mint_resume, random_nonce, verify, verify_resume,
};
use magpie_session::{close, pb};
use magpie_store::{StoreError, Write, WriteResult};
use magpie_wire::ErrorCode;

use std::future::Future;
use std::pin::Pin;

use crate::{Shared, unix_now};

/// An authenticated session's identity.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) app: String,
    pub(crate) user: String,
    pub(crate) device: String,
    pub(crate) platform: Platform,
}

/// A refusal: the CLOSE code and reason ([AUTH-4.1]).
pub(crate) type Refusal = (ErrorCode, String);

/// The answer to a login token's nonce write ([AUTH-3.5]), still in the group commit.
type NonceUse = Pin<Box<dyn Future<Output = Result<WriteResult, StoreError>> + Send>>;

/// A HELLO whose checks have passed up to the last, the login token's single use
/// ([AUTH-3.5]), which is queued for group commit: the session can queue its own writes behind
/// it (a new user's stream) before [`Authenticating::confirm`] waits for it.
pub(crate) struct Authenticating {
    identity: Identity,
    nonce: Option<NonceUse>,
}

impl Authenticating {
    /// Who the HELLO says it is, not yet confirmed.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Waits for the nonce write: the identity, or the refusal of a replayed token.
    pub(crate) async fn confirm(self) -> Result<Identity, Refusal> {
        let Some(nonce) = self.nonce else {
            return Ok(self.identity);
        };
        match nonce.await {
            Ok(WriteResult::NonceAccepted) => Ok(self.identity),
            Ok(WriteResult::NonceReplayed) => Err((
                close::TOKEN_REPLAYED,
                "this login token was already used".into(),
            )),
            Ok(other) => Err((
                ErrorCode::INTERNAL_ERROR,
                format!("store answered {other:?}"),
            )),
            Err(e) => Err((ErrorCode::INTERNAL_ERROR, format!("store: {e}"))),
        }
    }
}

/// Checks a HELLO in the order of [AUTH-3], queuing a login token's nonce write.
pub(crate) fn authenticate(shared: &Shared, hello: &pb::Hello) -> Result<Authenticating, Refusal> {
    // [AUTH-3.1]
    let app = shared.apps.get(&hello.app_id).ok_or_else(|| {
        (
            close::APP_UNKNOWN,
            format!("no app {:?} on this server", hello.app_id),
        )
    })?;
    let platform = Platform::from_proto_i32(hello.platform)
        .map_err(|e| (close::HANDSHAKE_INVALID, format!("platform: {e}")))?;
    let context = LoginContext::new(&hello.app_id, &hello.device_id, platform)
        .map_err(|e| (close::HANDSHAKE_INVALID, e.to_string()))?;
    let now = unix_now();
    let policy = &shared.verify_policy;
    let token_error = |e: magpie_auth::TokenError| (ErrorCode(e.code()), e.to_string());
    // [AUTH-3.2], [AUTH-3.3]
    let verified: VerifiedToken = match &hello.credential {
        Some(pb::hello::Credential::Token(t)) => {
            verify(t, &app.secret, &context, now, policy).map_err(token_error)?
        }
        Some(pb::hello::Credential::ResumeToken(t)) => {
            verify_resume(t, &app.secret, &context, now, policy).map_err(token_error)?
        }
        None => return Err((close::TOKEN_INVALID, "HELLO carries no token".into())),
    };
    let user = verified.user_id().to_owned();
    // [AUTH-3.4]
    let revoked_before = shared
        .store
        .revoked_before(&hello.app_id, &user)
        .map_err(|e| (ErrorCode::INTERNAL_ERROR, format!("store: {e}")))?;
    check_revocation(verified.not_before(), revoked_before).map_err(token_error)?;
    // [AUTH-3.5]: a login token is good once, remembered durably.
    let nonce = if verified.kind == TokenKind::Login {
        let write = Write::UseNonce {
            app: hello.app_id.clone(),
            nonce: verified.nonce().to_owned(),
            expires_at: verified.remember_nonce_until(policy),
        };
        let used = shared
            .committer
            .enqueue(write)
            .map_err(|e| (ErrorCode::INTERNAL_ERROR, format!("store: {e}")))?;
        Some(Box::pin(used) as NonceUse)
    } else {
        None
    };
    let identity = Identity {
        app: hello.app_id.clone(),
        user,
        device: hello.device_id.clone(),
        platform,
    };
    Ok(Authenticating { identity, nonce })
}

/// A fresh resume token for the session ([AUTH-5.1]); empty if minting fails (the client then
/// needs a new login token to reconnect, which is safe).
pub(crate) fn resume_token(shared: &Shared, id: &Identity) -> (String, u64) {
    let Some(app) = shared.apps.get(&id.app) else {
        return (String::new(), 0);
    };
    let now = unix_now();
    let expires = now + shared.settings.resume_ttl_secs;
    let claims = random_nonce().map(|nonce| TokenClaims {
        app_id: id.app.clone(),
        user_id: id.user.clone(),
        device: Device::Id(id.device.clone()),
        platform: id.platform,
        not_before: now,
        expires,
        nonce,
    });
    match claims.and_then(|c| mint_resume(&c, &app.secret)) {
        Ok(token) => (token, expires),
        Err(e) => {
            tracing::warn!("cannot mint a resume token: {e}");
            (String::new(), 0)
        }
    }
}
