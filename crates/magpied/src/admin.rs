//! The app server's admin API over HTTP (H1; its first endpoint): revoking a user's tokens
//! ([AUTH-6.1]).
//!
//! `POST /v1/apps/{app}/users/{user}/revoke`, signed with the app secret:
//! `x-magpie-timestamp: <unix seconds>` and
//! `x-magpie-signature: hex(HMAC-SHA256(secret, "POST\n" + path + "\n" + timestamp))`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use magpie_session::close;
use magpie_store::{Write, WriteResult};
use sha2::Sha256;

use crate::{Shared, unix_now};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/apps/{app}/users/{user}/revoke", post(revoke))
        .with_state(shared)
}

/// The signature an admin request carries ([AUTH-6.2]).
pub fn signature(secret: &str, method: &str, path: &str, timestamp: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{method}\n{path}\n{timestamp}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

type Reply = (StatusCode, String);

fn check_signature(
    shared: &Shared,
    app: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Reply> {
    let Some(entry) = shared.settings.apps.iter().find(|a| a.id == app) else {
        return Err((StatusCode::NOT_FOUND, format!("no app {app:?}")));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp: u64 = header("x-magpie-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "x-magpie-timestamp missing".to_owned(),
        ))?;
    if unix_now().abs_diff(timestamp) > shared.settings.clock_skew_secs {
        return Err((
            StatusCode::UNAUTHORIZED,
            "timestamp outside the clock-skew window".into(),
        ));
    }
    let given = header("x-magpie-signature")
        .and_then(|s| hex::decode(s).ok())
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(entry.secret.as_bytes())
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "bad secret".to_owned()))?;
    mac.update(format!("POST\n{path}\n{timestamp}").as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&given)
        .map_err(|_| (StatusCode::UNAUTHORIZED, "bad signature".to_owned()))
}

async fn revoke(
    State(shared): State<Arc<Shared>>,
    Path((app, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let path = format!("/v1/apps/{app}/users/{user}/revoke");
    if let Err(reply) = check_signature(&shared, &app, &path, &headers) {
        return reply;
    }
    if let Err(e) = magpie_auth::validate_user_id(&user) {
        return (StatusCode::BAD_REQUEST, e.to_string());
    }
    let at = unix_now();
    match shared
        .committer
        .submit(Write::Revoke {
            app: app.clone(),
            user: user.clone(),
            at,
        })
        .await
    {
        Ok(WriteResult::Revoked) => {
            // [AUTH-3.4]: open sessions of the user end too.
            shared.hub.close_user(
                &app,
                &user,
                close::TOKEN_REVOKED,
                "tokens revoked by the app",
            );
            (StatusCode::OK, format!("{{\"revoked_before\":{at}}}"))
        }
        Ok(other) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store answered {other:?}"),
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
    }
}
