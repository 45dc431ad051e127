//! A small in-process Magpie server for the client's tests, built on the sans-IO
//! `ServerConnection`: enough of the spec (streams, SEND with dedup, SYNC, HISTORY, READ, WATCH,
//! PRESENCE) to drive a client, plus switches to misbehave on purpose (drop a connection before
//! an ack, skip pushes, close sessions with a code, reset the stream).
//!
//! Tokens: `ok:<user>` for tests, real `mt1.` login tokens of app `demo` (secret [`SECRET`]),
//! and the resume tokens it issues, `resume:<user>:<n>`.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use magpie_session::{
    Body, RequestCode, ServerConfig, ServerConnection, ServerEvent, close, compression_to_proto,
    limits_to_proto, pb, request_error,
};
use magpie_wire::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const APP: &str = "demo";
pub const SECRET: &str = "magpie-demo-secret-0001";

/// Bounds every wait of a test.
pub const LIMIT: Duration = Duration::from_secs(10);

enum Ctl {
    Push(pb::Push),
    Close(ErrorCode, String),
}

struct Session {
    user: String,
    device: String,
    ctl: mpsc::UnboundedSender<Ctl>,
}

#[derive(Default)]
pub struct State {
    pub epoch: u64,
    pub streams: HashMap<String, Vec<pb::Event>>,
    pub conversations: HashMap<String, Vec<pb::Message>>,
    sent: HashMap<(String, String), (pb::SendAck, Option<pb::Content>)>,
    sessions: HashMap<u64, Session>,
    next_session: u64,
    resumes: u64,
    /// Every HELLO received, in order.
    pub hellos: Vec<pb::Hello>,
    /// Every request received (`(user, body)`), in order.
    pub requests: Vec<(String, Body)>,
    /// Commit the next N SENDs, then drop the connection instead of acking.
    pub drop_before_ack: usize,
    /// Do not push the next N stored events (to any session).
    pub skip_pushes: usize,
    /// Refuse the next HELLOs with these codes.
    pub refuse: VecDeque<(ErrorCode, String)>,
    /// Page size of SYNC replies.
    pub page: usize,
    /// Every close the server got from a client: (code, reason).
    pub client_closes: Vec<(ErrorCode, String)>,
}

impl State {
    fn stream(&mut self, user: &str) -> &mut Vec<pb::Event> {
        self.streams.entry(user.to_owned()).or_default()
    }

    fn append(&mut self, user: &str, kind: pb::event::Kind) -> pb::Event {
        let stream = self.stream(user);
        let event = pb::Event {
            offset: stream.len() as u64 + 1,
            kind: Some(kind),
        };
        stream.push(event.clone());
        event
    }

    fn push_to(&mut self, user: &str, push: &pb::Push, except: Option<u64>) {
        for (id, s) in &self.sessions {
            if s.user == user && Some(*id) != except {
                let _ = s.ctl.send(Ctl::Push(push.clone()));
            }
        }
    }

    fn push_events(&mut self, user: &str, events: Vec<pb::Event>) {
        if self.skip_pushes > 0 {
            self.skip_pushes -= 1;
            return;
        }
        let push = pb::Push {
            epoch: self.epoch,
            events,
            ..Default::default()
        };
        self.push_to(user, &push, None);
    }

    pub fn online(&self, user: &str) -> bool {
        self.sessions.values().any(|s| s.user == user)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

pub struct FakeServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A real magpied in this process, listening on `listen`, serving [`APP`] with [`SECRET`] and
/// keeping its data in `dir`.
pub async fn start_magpied(dir: &std::path::Path, listen: SocketAddr) -> magpied::Server {
    start_magpied_with(dir, |s| s.listen = listen).await
}

/// [`start_magpied`] on a free port, with `tweak` applied to its settings.
#[allow(dead_code)] // not every test binary tweaks
pub async fn start_magpied_with(
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut magpied::Settings),
) -> magpied::Server {
    let mut settings = magpied::Settings::embedded(dir, APP, SECRET);
    tweak(&mut settings);
    magpied::Server::start(settings)
        .await
        .expect("magpied starts")
}

pub fn conversation(a: &str, b: &str) -> String {
    magpie_client::conversation_id(a, b)
}

fn valid_user(id: &str) -> bool {
    magpie_auth::validate_user_id(id).is_ok()
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            epoch: 7,
            page: 500,
            ..Default::default()
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        FakeServer { addr, state, task }
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }

    /// Closes every session of `user` with `code`.
    pub fn close_sessions(&self, user: &str, code: ErrorCode, reason: &str) {
        let state = self.state();
        for s in state.sessions.values() {
            if s.user == user {
                let _ = s.ctl.send(Ctl::Close(code, reason.to_owned()));
            }
        }
    }

    /// Loses every stream: a new epoch, streams rebuilt from the stored messages.
    pub fn reset_streams(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.streams.clear();
        let mut messages: Vec<pb::Message> =
            state.conversations.values().flatten().cloned().collect();
        messages.sort_by_key(|m| m.server_time_ms);
        for m in messages {
            let users: Vec<String> = m
                .conversation_id
                .trim_start_matches("d:")
                .split(':')
                .map(str::to_owned)
                .collect();
            let mut users = users;
            users.dedup();
            for u in users {
                state.append(&u, pb::event::Kind::Message(m.clone()));
            }
        }
    }

    /// Stores a message from `from` to `to` as if sent by another client.
    pub fn inject(&self, from: &str, to: &str, text: &str) -> pb::SendAck {
        let mut state = self.state();
        let send = pb::Send {
            to: to.into(),
            client_msg_id: format!("inject-{}", state.sent.len()),
            class: pb::MessageClass::Content as i32,
            content: Some(magpie_client::text(text)),
            to_members: Vec::new(),
        };
        match commit(&mut state, from, "server", send) {
            Ok(ack) => ack,
            Err(_) => panic!("inject failed"),
        }
    }

    pub async fn wait_for(&self, what: &str, mut f: impl FnMut(&State) -> bool) {
        let start = Instant::now();
        while !f(&self.state()) {
            assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Commits a SEND ([SYNC-5]): dedup, seq, events, pushes.
fn commit(
    state: &mut State,
    user: &str,
    device: &str,
    send: pb::Send,
) -> Result<pb::SendAck, (RequestCode, String)> {
    if !valid_user(&send.to) {
        return Err((
            RequestCode::INVALID_USER_ID,
            format!("bad user id {:?}", send.to),
        ));
    }
    if send.client_msg_id.is_empty() || send.client_msg_id.len() > 64 {
        return Err((
            RequestCode::INVALID_CLIENT_MSG_ID,
            "bad client_msg_id".into(),
        ));
    }
    let key = (user.to_owned(), send.client_msg_id.clone());
    if let Some((ack, content)) = state.sent.get(&key) {
        if *content != send.content {
            return Err((
                RequestCode::CLIENT_MSG_ID_REUSED,
                "client_msg_id reused".into(),
            ));
        }
        let mut ack = ack.clone();
        ack.duplicate = true;
        return Ok(ack);
    }
    let conv = conversation(user, &send.to);
    let class = pb::MessageClass::try_from(send.class).unwrap_or(pb::MessageClass::Content);
    let stored = !matches!(
        class,
        pb::MessageClass::Transient | pb::MessageClass::Status
    );
    let time = now_ms();
    let mut message = pb::Message {
        conversation_id: conv.clone(),
        seq: 0,
        message_id: String::new(),
        sender: user.to_owned(),
        sender_device: device.to_owned(),
        client_msg_id: send.client_msg_id.clone(),
        server_time_ms: time,
        class: send.class,
        content: send.content.clone(),
        tombstone: false,
        peer: String::new(),
        to_members: Vec::new(),
    };
    if !stored {
        let push = pb::Push {
            epoch: state.epoch,
            live: vec![message],
            ..Default::default()
        };
        state.push_to(&send.to, &push, None);
        return Ok(pb::SendAck {
            conversation_id: conv,
            seq: 0,
            message_id: String::new(),
            server_time_ms: time,
            duplicate: false,
        });
    }
    let messages = state.conversations.entry(conv.clone()).or_default();
    message.seq = messages.len() as u64 + 1;
    message.message_id = format!("{conv}/{}", message.seq);
    messages.push(message.clone());
    let ack = pb::SendAck {
        conversation_id: conv,
        seq: message.seq,
        message_id: message.message_id.clone(),
        server_time_ms: time,
        duplicate: false,
    };
    state.sent.insert(key, (ack.clone(), send.content.clone()));
    let mut users = vec![user.to_owned(), send.to.clone()];
    users.dedup();
    for u in users {
        let mut m = message.clone();
        m.peer = if u == user {
            send.to.clone()
        } else {
            user.to_owned()
        };
        let event = state.append(&u, pb::event::Kind::Message(m));
        if class != pb::MessageClass::Command {
            state.push_events(&u, vec![event]);
        }
    }
    Ok(ack)
}

fn authenticate(state: &mut State, hello: &pb::Hello) -> Result<String, (ErrorCode, String)> {
    if let Some(refusal) = state.refuse.pop_front() {
        return Err(refusal);
    }
    if hello.app_id != APP {
        return Err((close::APP_UNKNOWN, format!("no app {:?}", hello.app_id)));
    }
    match &hello.credential {
        Some(pb::hello::Credential::Token(t)) if t.starts_with("mt1.") => {
            let secret = magpie_auth::AppSecret::new(SECRET).expect("secret");
            let platform = magpie_auth::Platform::from_proto_i32(hello.platform)
                .map_err(|e| (close::HANDSHAKE_INVALID, e.to_string()))?;
            let context = magpie_auth::LoginContext::new(&hello.app_id, &hello.device_id, platform)
                .map_err(|e| (close::HANDSHAKE_INVALID, e.to_string()))?;
            let now = now_ms() / 1000;
            magpie_auth::verify(
                t,
                &secret,
                &context,
                now,
                &magpie_auth::VerifyPolicy::default(),
            )
            .map(|v| v.claims.user_id)
            .map_err(|e| {
                let code = match e.code_name() {
                    "TOKEN_EXPIRED" => close::TOKEN_EXPIRED,
                    "TOKEN_NOT_YET_VALID" => close::TOKEN_NOT_YET_VALID,
                    "TOKEN_REPLAYED" => close::TOKEN_REPLAYED,
                    "TOKEN_REVOKED" => close::TOKEN_REVOKED,
                    _ => close::TOKEN_INVALID,
                };
                (code, e.to_string())
            })
        }
        Some(pb::hello::Credential::Token(t)) => match t.strip_prefix("ok:") {
            Some(user) => Ok(user.to_owned()),
            None if t == "expired" => Err((
                close::TOKEN_EXPIRED,
                "token expired at 1767312000, server time 1767400000".into(),
            )),
            None => Err((close::TOKEN_INVALID, "not a test token".into())),
        },
        Some(pb::hello::Credential::ResumeToken(t)) => t
            .strip_prefix("resume:")
            .and_then(|rest| rest.split(':').next())
            .map(str::to_owned)
            .ok_or((close::TOKEN_INVALID, "bad resume token".into())),
        None => Err((close::HANDSHAKE_INVALID, "no credential".into())),
    }
}

/// Serves a request; `None` means "drop the connection now" (the misbehaviour switch).
fn handle(state: &mut State, user: &str, device: &str, body: Body) -> Option<Body> {
    state.requests.push((user.to_owned(), body.clone()));
    Some(match body {
        Body::Send(send) => match commit(state, user, device, send) {
            Ok(ack) => {
                if state.drop_before_ack > 0 {
                    state.drop_before_ack -= 1;
                    return None;
                }
                Body::SendAck(ack)
            }
            Err((code, message)) => request_error(code, message),
        },
        Body::Sync(sync) => {
            let epoch = state.epoch;
            let page = state.page;
            let after = sync.after.unwrap_or_default();
            let reset = after.epoch != epoch;
            let from = if reset { 0 } else { after.offset };
            let stream = state.stream(user);
            let head = stream.len() as u64;
            let events = stream
                .iter()
                .filter(|e| e.offset > from)
                .take(page)
                .cloned()
                .collect();
            Body::SyncReply(pb::SyncReply {
                epoch,
                events,
                head,
                reset,
            })
        }
        Body::History(h) => {
            let messages = state
                .conversations
                .get(&h.conversation_id)
                .cloned()
                .unwrap_or_default();
            let last_seq = messages.len() as u64;
            let limit = h.limit.clamp(1, 100) as usize;
            let page: Vec<pb::Message> = if h.backward {
                let top = if h.from_seq == 0 {
                    last_seq
                } else {
                    h.from_seq
                };
                messages
                    .into_iter()
                    .filter(|m| m.seq <= top)
                    .rev()
                    .take(limit)
                    .collect()
            } else {
                messages
                    .into_iter()
                    .filter(|m| m.seq >= h.from_seq)
                    .take(limit)
                    .collect()
            };
            Body::HistoryReply(pb::HistoryReply {
                messages: page,
                visible_from: 1,
                last_seq,
            })
        }
        Body::Read(r) => {
            let event = state.append(
                user,
                pb::event::Kind::Read(pb::ReadMarker {
                    conversation_id: r.conversation_id,
                    seq: r.seq,
                    device_id: device.to_owned(),
                }),
            );
            state.push_events(user, vec![event]);
            Body::Ok(pb::Ok {})
        }
        Body::Watch(w) => {
            if w.users.iter().any(|u| !valid_user(u)) {
                request_error(RequestCode::INVALID_USER_ID, "bad user id")
            } else {
                Body::Ok(pb::Ok {})
            }
        }
        Body::PresenceQuery(q) => Body::PresenceReply(pb::PresenceReply {
            statuses: q
                .users
                .iter()
                .map(|u| pb::PresenceStatus {
                    user_id: u.clone(),
                    online: state.online(u),
                    ..Default::default()
                })
                .collect(),
        }),
        _ => request_error(RequestCode::UNSUPPORTED, "not served"),
    })
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut conn = ServerConnection::new(ServerConfig::default(), Instant::now());
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
    let mut me: Option<(u64, String, String)> = None;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut kill = false;
    'conn: loop {
        while let Some(event) = conn.poll_event() {
            let mut state = state.lock().expect("state");
            match event {
                ServerEvent::Hello { id, hello } => {
                    state.hellos.push(hello.clone());
                    match authenticate(&mut state, &hello) {
                        Ok(user) => {
                            let negotiated = match conn.negotiate(&hello) {
                                Ok(n) => n,
                                Err(e) => {
                                    conn.reject(close::HANDSHAKE_INVALID, e);
                                    continue;
                                }
                            };
                            state.next_session += 1;
                            state.resumes += 1;
                            let session = state.next_session;
                            let head = pb::Cursor {
                                epoch: state.epoch,
                                offset: state.stream(&user).len() as u64,
                            };
                            let welcome = pb::Welcome {
                                user_id: user.clone(),
                                session_id: format!("s{session}"),
                                server_time_ms: now_ms(),
                                compression: compression_to_proto(negotiated.compression) as i32,
                                limits: Some(limits_to_proto(&magpie_wire::Limits::default())),
                                heartbeat_ms: negotiated.heartbeat.as_millis() as u32,
                                idle_timeout_ms: negotiated.idle_timeout.as_millis() as u32,
                                resume_token: format!("resume:{user}:{}", state.resumes),
                                resume_expires_at: 0,
                                head: Some(head),
                                max_content_size: 16 * 1024,
                            };
                            conn.accept(Instant::now(), id, welcome, &negotiated);
                            state.sessions.insert(
                                session,
                                Session {
                                    user: user.clone(),
                                    device: hello.device_id.clone(),
                                    ctl: ctl_tx.clone(),
                                },
                            );
                            me = Some((session, user, hello.device_id.clone()));
                        }
                        Err((code, reason)) => conn.reject(code, reason),
                    }
                }
                ServerEvent::Request { id, body } => {
                    let Some((_, user, device)) = me.clone() else {
                        continue;
                    };
                    match handle(&mut state, &user, &device, body) {
                        Some(reply) => conn.reply(id, reply),
                        None => {
                            kill = true;
                            break;
                        }
                    }
                }
                ServerEvent::Closed(closed) => {
                    if closed.initiator == magpie_session::Initiator::Peer {
                        state.client_closes.push((closed.code, closed.reason));
                    }
                }
            }
        }
        if kill {
            break 'conn;
        }
        while let Some(bytes) = conn.poll_transmit(Instant::now()) {
            if wr.write_all(&bytes).await.is_err() {
                break 'conn;
            }
        }
        if conn.is_done() {
            break;
        }
        let deadline = conn
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => { conn.handle_eof(); }
                Ok(_) => { conn.handle_bytes(Instant::now(), &buf); buf.clear(); }
            },
            ctl = ctl_rx.recv() => match ctl {
                Some(Ctl::Push(push)) => { conn.push(push); }
                Some(Ctl::Close(code, reason)) => conn.close(code, reason),
                None => {}
            },
            () = tokio::time::sleep_until(deadline) => conn.handle_timeout(Instant::now()),
        }
    }
    if let Some((session, _, _)) = me {
        state.lock().expect("state").sessions.remove(&session);
    }
    let _ = wr.shutdown().await;
}
