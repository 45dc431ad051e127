//! Who is online: open sessions per user, the device policy, presence watchers, and the fan-out of
//! pushes to sessions. Critical sections are short and never await.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use magpie_auth::Platform;
use magpie_session::{close, pb};
use magpie_wire::ErrorCode;

use crate::auth::Identity;
use crate::config::{DevicePolicy, OverflowRule};

pub(crate) use crate::mailbox::Mailbox;

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    /// The user's stream epoch, fixed for the stream's life ([SYNC-3.3]): stamped on every push
    /// so no push needs a store read.
    epoch: u64,
    device: String,
    platform: Platform,
    mailbox: Mailbox,
}

type UserKey = (String, String);

#[derive(Default)]
struct Inner {
    sessions: HashMap<UserKey, Vec<Entry>>,
    /// Watched user → sessions watching them (session id → mailbox).
    watchers: HashMap<UserKey, HashMap<u64, Mailbox>>,
    /// Session id → users it watches, to clean up.
    watching: HashMap<u64, HashSet<UserKey>>,
    last_seen_ms: HashMap<UserKey, u64>,
}

/// The registry of open sessions.
#[derive(Default)]
pub(crate) struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
}

/// A session the hub refused ([SESSION-5.2] `refuse-new`).
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than losing the whole server; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an authenticated session, applying [SESSION-5.1] and [SESSION-5.2].
    pub(crate) fn register(
        &self,
        who: &Identity,
        epoch: u64,
        policy: &DevicePolicy,
        mailbox: Mailbox,
        now_ms: u64,
    ) -> Result<u64, Refused> {
        let (app, user, device, platform) = (
            who.app.as_str(),
            who.user.as_str(),
            who.device.as_str(),
            who.platform,
        );
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let key = (app.to_owned(), user.to_owned());
        let mut inner = self.lock();
        let list = inner.sessions.entry(key.clone()).or_default();
        // [SESSION-5.1]: the same device again replaces its old session.
        if let Some(pos) = list.iter().position(|e| e.device == device) {
            let old = list.remove(pos);
            old.mailbox.close(
                close::SESSION_REPLACED,
                format!("device {device} connected again"),
            );
        }
        let max = policy
            .max_per_platform
            .get(platform.as_str())
            .copied()
            .unwrap_or(0) as usize;
        if max > 0 {
            let same: Vec<usize> = (0..list.len())
                .filter(|i| list[*i].platform == platform)
                .collect();
            if same.len() >= max {
                match policy.overflow {
                    OverflowRule::RefuseNew => {
                        return Err(Refused(format!(
                            "{} allows {max} {} session(s) per user",
                            app,
                            platform.as_str()
                        )));
                    }
                    OverflowRule::KickOldest => {
                        let oldest = same[0];
                        let old = list.remove(oldest);
                        old.mailbox.close(
                            close::DEVICE_KICKED,
                            format!("device {device} took the place of {}", old.device),
                        );
                    }
                }
            }
        }
        let was_offline = list.is_empty();
        list.push(Entry {
            id,
            epoch,
            device: device.to_owned(),
            platform,
            mailbox,
        });
        if was_offline {
            inner.last_seen_ms.remove(&key);
            notify_presence(&inner, &key, true, platform, now_ms);
        }
        Ok(id)
    }

    /// Removes a session; the last one of a user makes them offline ([SESSION-7.2]).
    pub(crate) fn unregister(&self, app: &str, user: &str, id: u64, now_ms: u64) {
        let key = (app.to_owned(), user.to_owned());
        let mut inner = self.lock();
        if let Some(watched) = inner.watching.remove(&id) {
            for w in watched {
                if let Some(m) = inner.watchers.get_mut(&w) {
                    m.remove(&id);
                }
            }
        }
        let Some(list) = inner.sessions.get_mut(&key) else {
            return;
        };
        let Some(pos) = list.iter().position(|e| e.id == id) else {
            return;
        };
        let gone = list.remove(pos);
        if list.is_empty() {
            inner.sessions.remove(&key);
            inner.last_seen_ms.insert(key.clone(), now_ms);
            notify_presence(&inner, &key, false, gone.platform, now_ms);
        }
    }

    /// Pushes to every open session of a user, stamped with the user's stream epoch. The last
    /// session gets `push` itself: a user with one device costs no copy.
    pub(crate) fn push_to_user(&self, app: &str, user: &str, push: pb::Push, except: Option<u64>) {
        let mut push = Some(push);
        self.push_each(app, [user], except, |_, last| copy_or_take(&mut push, last));
    }

    /// Pushes to every open session of each of `users` (but `except`) under one lock, stamped
    /// with the session's stream epoch. `make(i, last)` builds the push for `users[i]` and is
    /// called only for a session that is open, so a group's offline members cost nothing;
    /// `last` marks the final call, which can hand over the caller's own copy.
    pub(crate) fn push_each<'a>(
        &self,
        app: &str,
        users: impl IntoIterator<Item = &'a str>,
        except: Option<u64>,
        mut make: impl FnMut(usize, bool) -> pb::Push,
    ) {
        let inner = self.lock();
        // One key for every lookup, instead of two new strings per user.
        let mut key: UserKey = (app.to_owned(), String::new());
        let mut targets = Vec::new();
        for (i, user) in users.into_iter().enumerate() {
            key.1.clear();
            key.1.push_str(user);
            if let Some(list) = inner.sessions.get(&key) {
                targets.extend(list.iter().filter(|e| Some(e.id) != except).map(|e| (i, e)));
            }
        }
        let n = targets.len();
        for (k, (i, e)) in targets.into_iter().enumerate() {
            let mut push = make(i, k + 1 == n);
            push.epoch = e.epoch;
            e.mailbox.push(push);
        }
    }

    /// Watches or unwatches users.
    pub(crate) fn watch(
        &self,
        app: &str,
        session: u64,
        mailbox: &Mailbox,
        users: &[String],
        unwatch: bool,
    ) {
        let mut inner = self.lock();
        for u in users {
            let key = (app.to_owned(), u.clone());
            if unwatch {
                if let Some(m) = inner.watchers.get_mut(&key) {
                    m.remove(&session);
                }
                if let Some(s) = inner.watching.get_mut(&session) {
                    s.remove(&key);
                }
            } else {
                inner
                    .watchers
                    .entry(key.clone())
                    .or_default()
                    .insert(session, mailbox.clone());
                inner.watching.entry(session).or_default().insert(key);
            }
        }
    }

    /// How many users a session watches.
    pub(crate) fn watched_count(&self, session: u64) -> usize {
        self.lock().watching.get(&session).map_or(0, HashSet::len)
    }

    /// Current status of users ([SESSION-7.3]).
    pub(crate) fn presence(&self, app: &str, users: &[String]) -> Vec<pb::PresenceStatus> {
        let inner = self.lock();
        users
            .iter()
            .map(|u| {
                let key = (app.to_owned(), u.clone());
                let list = inner.sessions.get(&key);
                let mut platforms: Vec<i32> = list
                    .map(|l| l.iter().map(|e| e.platform.to_proto_i32()).collect())
                    .unwrap_or_default();
                platforms.sort_unstable();
                platforms.dedup();
                pb::PresenceStatus {
                    user_id: u.clone(),
                    online: list.is_some_and(|l| !l.is_empty()),
                    platforms,
                    last_seen_ms: inner.last_seen_ms.get(&key).copied().unwrap_or(0),
                }
            })
            .collect()
    }

    /// Closes every session of one user (revocation, [AUTH-3.4]).
    pub(crate) fn close_user(&self, app: &str, user: &str, code: ErrorCode, reason: &str) {
        let inner = self.lock();
        if let Some(list) = inner.sessions.get(&(app.to_owned(), user.to_owned())) {
            for e in list {
                e.mailbox.close(code, reason.to_owned());
            }
        }
    }

    /// Number of open sessions.
    pub(crate) fn session_count(&self) -> usize {
        self.lock().sessions.values().map(Vec::len).sum()
    }
}

fn notify_presence(inner: &Inner, key: &UserKey, online: bool, platform: Platform, now_ms: u64) {
    if let Some(watchers) = inner.watchers.get(key) {
        let push = pb::Push {
            presence: vec![pb::PresenceEvent {
                user_id: key.1.clone(),
                online,
                platform: platform.to_proto_i32(),
                at_ms: now_ms,
            }],
            ..Default::default()
        };
        for m in watchers.values() {
            m.push(push.clone());
        }
    }
}

/// A copy of what `slot` holds, or on the `last` call the value itself.
pub(crate) fn copy_or_take<T: Clone + Default>(slot: &mut Option<T>, last: bool) -> T {
    if last {
        slot.take().unwrap_or_default()
    } else {
        slot.clone().unwrap_or_default()
    }
}
