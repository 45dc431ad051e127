//! One connection: a thin tokio driver around the sans-IO `ServerConnection`.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use magpie_session::{
    Body, ServerConnection, ServerEvent, close, compression_to_proto, limits_to_proto, pb,
};
use magpie_store::{StoreError, StreamHead, Write, WriteResult};
use magpie_wire::{ErrorCode, VarInt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::auth::{self, Identity};
use crate::handlers::{self, SessionCtx};
use crate::hub::Refused;
use crate::mailbox::{Mailbox, Outbound};
use crate::{Shared, unix_now_ms};

/// TCP, or the same frames in WebSocket binary messages (B1, [WIRE-2.8]).
pub(crate) enum Transport {
    Tcp(TcpStream),
    Ws(Box<WebSocketStream<TcpStream>>),
}

impl Transport {
    /// The peer's address, for logs (looked up then, so that no connection carries it).
    fn peer(&self) -> Option<SocketAddr> {
        match self {
            Transport::Tcp(s) => s.peer_addr().ok(),
            Transport::Ws(ws) => ws.get_ref().peer_addr().ok(),
        }
    }

    /// Reads what has arrived; `None` at the end of the stream. Cancel-safe.
    async fn read(&mut self) -> Option<Bytes> {
        match self {
            Transport::Tcp(s) => loop {
                // poll_read_ready rather than readable(): the latter's future holds a waiter
                // node (~150 bytes) inside the task every idle connection keeps parked here.
                if std::future::poll_fn(|cx| s.poll_read_ready(cx))
                    .await
                    .is_err()
                {
                    return None;
                }
                match try_read(s) {
                    Ok(read) => return read,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
            },
            Transport::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Binary(data))) => return Some(data),
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                    // Text, close, errors: the stream is over for Magpie.
                    _ => return None,
                }
            },
        }
    }

    async fn write(&mut self, data: Bytes) -> std::io::Result<()> {
        match self {
            Transport::Tcp(s) => s.write_all(&data).await,
            Transport::Ws(ws) => ws
                .send(WsMessage::Binary(data))
                .await
                .map_err(std::io::Error::other),
        }
    }

    async fn shutdown(&mut self) {
        match self {
            Transport::Tcp(s) => {
                let _ = s.shutdown().await;
            }
            Transport::Ws(ws) => {
                let _ = SinkExt::close(ws).await;
            }
        }
    }
}

/// Reads what the socket holds now into a copy sized to it; `Ok(None)` at the end of the stream.
///
/// The read goes through one scratch buffer per runtime thread, so an idle connection holds no
/// read buffer of its own (the idle-memory target in `benches/`) and no read zeroes a fresh one.
fn try_read(s: &TcpStream) -> std::io::Result<Option<Bytes>> {
    const SCRATCH: usize = 64 * 1024;
    thread_local! {
        static SCRATCH_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SCRATCH]);
    }
    SCRATCH_BUF.with_borrow_mut(|chunk| match s.try_read(chunk)? {
        0 => Ok(None),
        n => Ok(Some(Bytes::copy_from_slice(&chunk[..n]))),
    })
}

/// The most requests of one session in flight at once; further requests wait in the backlog,
/// and the connection reads nothing more until the backlog is empty (backpressure on the client).
const MAX_IN_FLIGHT: usize = 64;

/// A request being served: its id and the reply it resolves to.
type InFlight = Pin<Box<dyn Future<Output = (VarInt, Body)> + Send>>;

/// Serves one accepted connection until it closes, after the WebSocket upgrade if `ws`.
///
/// Requests are started in the order they came, so two SENDs get seqs in that order
/// ([SYNC-5.4]), while up to [`MAX_IN_FLIGHT`] wait for their group commit together; replies
/// leave in request order. They run inside this task rather than a worker of their own, so an
/// idle session costs one task and no request channels. What the task holds while it waits is
/// what every idle connection costs (the idle-memory target in `benches/`), hence the boxes.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, ws: bool) {
    let mut transport = if ws {
        // Boxed: the upgrade's state is needed once and should not size the task.
        let peer = stream.peer_addr().ok();
        match Box::pin(tokio_tungstenite::accept_async(stream)).await {
            Ok(ws) => Transport::Ws(Box::new(ws)),
            Err(e) => {
                tracing::debug!(?peer, "websocket handshake failed: {e}");
                return;
            }
        }
    } else {
        Transport::Tcp(stream)
    };
    let mut conn = ServerConnection::new(Arc::clone(&shared.session_config), Instant::now());
    let mailbox = Mailbox::new(shared.settings.session_queue);
    let mut session: Option<Arc<SessionCtx>> = None;
    let mut backlog: VecDeque<(VarInt, Body)> = VecDeque::new();
    // Made on the first request: an empty FuturesOrdered still allocates its ready queue.
    let mut in_flight: Option<Box<FuturesOrdered<InFlight>>> = None;
    let mut stopping = shared.stopping.clone();
    let write_timeout = std::time::Duration::from_secs(shared.settings.write_timeout_secs.max(1));

    loop {
        // The HELLO is answered after the events at hand are taken, so that no event is held
        // across the await (it would size the task).
        let mut hello = None;
        loop {
            while let Some(event) = conn.poll_event() {
                match event {
                    ServerEvent::Hello { id, hello: h } => hello = Some((id, Box::new(h))),
                    ServerEvent::Request { id, body } => backlog.push_back((id, body)),
                    ServerEvent::Closed(closed) => {
                        tracing::debug!(peer = ?transport.peer(), code = %close::name(closed.code), reason = %closed.reason, "closed");
                    }
                }
            }
            let Some((id, h)) = hello.take() else { break };
            // Boxed: the handshake's state is large and needed once.
            match Box::pin(open(&shared, &mut conn, id, &h, &mailbox)).await {
                Some(ctx) => session = Some(Arc::new(ctx)),
                None => tracing::debug!(peer = ?transport.peer(), "handshake refused"),
            }
        }
        loop {
            if let Some(ctx) = &session {
                while !backlog.is_empty() {
                    let in_flight = in_flight.get_or_insert_with(Box::default);
                    if in_flight.len() >= MAX_IN_FLIGHT {
                        break;
                    }
                    let Some((id, body)) = backlog.pop_front() else {
                        break;
                    };
                    let reply = handlers::start(&shared, ctx, body);
                    in_flight.push_back(Box::pin(async move { (id, reply.await) }));
                }
            }
            // Replies that are ready already (reads, refusals) leave with this write.
            let mut answered = false;
            while let Some((id, body)) = ready_reply(&mut in_flight) {
                conn.reply(id, body);
                answered = true;
            }
            // Answers made room for more of the backlog. Go on until the backlog is empty or
            // what is in flight waits for something: a backlog whose requests were all answered
            // at once (refusals) would otherwise wait for nothing, as reading is off while it
            // is not empty.
            if !answered || backlog.is_empty() {
                break;
            }
        }
        while let Some(bytes) = conn.poll_transmit(Instant::now()) {
            // [SESSION-6.1]: a client that stops reading blocks only its own task, and not for
            // longer than the write timeout; it resumes later with SYNC and loses nothing.
            let written = tokio::time::timeout(write_timeout, transport.write(bytes)).await;
            if !matches!(written, Ok(Ok(()))) {
                if written.is_err() {
                    tracing::debug!(peer = ?transport.peer(), "slow reader: write timed out");
                }
                conn.handle_eof();
            }
        }
        if conn.is_done() {
            break;
        }
        // What an idle session keeps: no request queues once its requests are answered.
        if in_flight.as_ref().is_some_and(|f| f.is_empty()) {
            in_flight = None;
        }
        if backlog.is_empty() && backlog.capacity() > 0 {
            backlog = VecDeque::new();
        }
        let deadline = conn.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            data = transport.read(), if backlog.is_empty() => match data {
                Some(data) => conn.handle_bytes(Instant::now(), &data),
                None => conn.handle_eof(),
            },
            // An empty set was dropped above, so a set here has replies to wait for.
            Some((id, body)) = next_reply(&mut in_flight), if in_flight.is_some() => conn.reply(id, body),
            out = mailbox.next() => apply(&mut conn, out),
            () = sleep_until(deadline) => conn.handle_timeout(Instant::now()),
            Ok(()) = stopping.changed() => conn.close(ErrorCode::GOING_AWAY, "server shutting down".into()),
        }
        // Take what else is ready so it leaves in one write, merged ([WIRE-8.6]).
        for _ in 0..256 {
            let mut took = false;
            if let Some((id, body)) = ready_reply(&mut in_flight) {
                conn.reply(id, body);
                took = true;
            }
            if let Some(out) = mailbox.try_next() {
                apply(&mut conn, out);
                took = true;
            }
            if !took {
                break;
            }
        }
    }
    transport.shutdown().await;
    // Requests already started still complete: their writes are queued for commit, and an
    // acknowledged-or-not outcome must not depend on the client staying ([SYNC-5.2]).
    while next_reply(&mut in_flight).await.is_some() {}
    if let Some(ctx) = session {
        shared
            .hub
            .unregister(&ctx.id.app, &ctx.id.user, ctx.session, unix_now_ms());
    }
}

/// The next reply, once one is ready; `None` when nothing is in flight.
async fn next_reply(
    in_flight: &mut Option<Box<FuturesOrdered<InFlight>>>,
) -> Option<(VarInt, Body)> {
    in_flight.as_mut()?.next().await
}

/// A reply that is ready now, if any.
fn ready_reply(in_flight: &mut Option<Box<FuturesOrdered<InFlight>>>) -> Option<(VarInt, Body)> {
    in_flight.as_mut()?.next().now_or_never().flatten()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn apply(conn: &mut ServerConnection, out: Outbound) {
    match out {
        Outbound::Push(push) => {
            // A push too large for the client is dropped: it is a copy of stored events, and the
            // client pulls on the gap ([SYNC-4.2]).
            conn.push(push);
        }
        Outbound::Close(code, reason) => conn.close(code, reason),
    }
}

/// Queues the opening of a new user's stream ([SYNC-3.1]) through the group committer, so that
/// its epoch is durable before the client sees it and a storm of first logins shares fsyncs
/// instead of blocking a runtime thread on one each. `None` if the stream exists.
fn queue_stream_opening(
    shared: &Shared,
    id: &Identity,
) -> Result<Option<impl Future<Output = Result<WriteResult, StoreError>> + use<>>, String> {
    if shared
        .store
        .stream(&id.app, &id.user)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(None);
    }
    let open = Write::OpenStream {
        app: id.app.clone(),
        user: id.user.clone(),
    };
    shared
        .committer
        .enqueue(open)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The user's stream head: the answer of its `opening`, or else as the store has it.
async fn stream_head(
    shared: &Shared,
    id: &Identity,
    opening: Option<impl Future<Output = Result<WriteResult, StoreError>>>,
) -> Result<StreamHead, String> {
    match opening {
        Some(opening) => match opening.await {
            Ok(WriteResult::Stream(head)) => Ok(head),
            Ok(other) => Err(format!("the store answered {other:?}")),
            Err(e) => Err(e.to_string()),
        },
        // Streams are never deleted.
        None => shared
            .store
            .stream(&id.app, &id.user)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no stream for {}", id.user)),
    }
}

/// Authenticates the HELLO, applies the device policy and writes WELCOME ([SESSION-2.4]).
async fn open(
    shared: &Arc<Shared>,
    conn: &mut ServerConnection,
    id: VarInt,
    hello: &pb::Hello,
    mailbox: &Mailbox,
) -> Option<SessionCtx> {
    let authenticating = match auth::authenticate(shared, hello) {
        Ok(a) => a,
        Err((code, reason)) => {
            conn.reject(code, reason);
            return None;
        }
    };
    // Queued behind a login token's nonce, so that a first login takes one group commit.
    let opening = match queue_stream_opening(shared, authenticating.identity()) {
        Ok(opening) => opening,
        Err(e) => {
            conn.reject(ErrorCode::INTERNAL_ERROR, format!("store: {e}"));
            return None;
        }
    };
    let identity = match authenticating.confirm().await {
        Ok(identity) => identity,
        Err((code, reason)) => {
            conn.reject(code, reason);
            return None;
        }
    };
    let negotiated = match conn.negotiate(hello) {
        Ok(n) => n,
        Err(reason) => {
            conn.reject(close::HANDSHAKE_INVALID, reason);
            return None;
        }
    };
    let policy = shared
        .apps
        .get(&identity.app)
        .map(|a| a.policy.clone())
        .unwrap_or_default();
    let now_ms = unix_now_ms();
    let head = match stream_head(shared, &identity, opening).await {
        Ok(h) => h,
        Err(e) => {
            conn.reject(ErrorCode::INTERNAL_ERROR, format!("store: {e}"));
            return None;
        }
    };
    // The head may count events not durable yet; the client sees it once they are.
    if let Err(e) = shared.committer.settled().await {
        conn.reject(ErrorCode::INTERNAL_ERROR, format!("store: {e}"));
        return None;
    }
    let session = match shared
        .hub
        .register(&identity, head.epoch, &policy, mailbox.clone(), now_ms)
    {
        Ok(s) => s,
        Err(Refused(reason)) => {
            conn.reject(close::LOGIN_REFUSED, reason);
            return None;
        }
    };
    let (resume_token, resume_expires_at) = auth::resume_token(shared, &identity);
    let welcome = pb::Welcome {
        user_id: identity.user.clone(),
        session_id: format!("{session:x}"),
        server_time_ms: now_ms,
        compression: compression_to_proto(negotiated.compression) as i32,
        limits: Some(limits_to_proto(&shared.session_config.limits)),
        heartbeat_ms: u32::try_from(negotiated.heartbeat.as_millis()).unwrap_or(u32::MAX),
        idle_timeout_ms: u32::try_from(negotiated.idle_timeout.as_millis()).unwrap_or(u32::MAX),
        resume_token,
        resume_expires_at,
        head: Some(pb::Cursor {
            epoch: head.epoch,
            offset: head.last_offset,
        }),
        max_content_size: shared.settings.max_content_size,
    };
    conn.accept(Instant::now(), id, welcome, &negotiated);
    tracing::debug!(app = %identity.app, user = %identity.user, device = %identity.device, "session open");
    Some(SessionCtx {
        client_frame: negotiated.client_limits.max_frame_size() as usize,
        id: identity,
        session,
        mailbox: mailbox.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned_size<F, A, B, C, R>(_: &F) -> usize
    where
        F: Fn(A, B, C) -> R,
    {
        std::mem::size_of::<R>()
    }

    /// The connection task is most of what an idle connection costs (`benches/` idle memory):
    /// 1,032 bytes with rustc 1.95. A value held across an await (a HELLO, an event, a second
    /// copy of the arguments in a wrapper) has added 100 to 600 bytes before; the bound leaves
    /// room for compiler changes, not for those.
    #[test]
    fn the_connection_task_stays_small() {
        let size = returned_size(&serve);
        assert!(size <= 1_300, "serve's future is {size} bytes");
    }
}
