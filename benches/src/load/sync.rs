//! `sync` (Magpie only): two devices of user B go offline, A sends B K messages, then each
//! device reconnects with the cursor it had and pulls what it missed. Device 1 reconnects
//! directly and is timed; device 2 reconnects through a counting TCP proxy in this process, which
//! gives the bytes the sync took on the wire (the client library does not count them).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::magpie::{Magpie, MagpieRx};
use super::proc::Meter;
use super::scenarios::{Ctx, Received, merge, receive, record, send_windowed};
use super::stats::{Progress, Record, add_usage};
use super::transport::{Inbox, Transport, now_ns};

/// Runs it.
pub(crate) async fn sync(t: &Magpie, ctx: &Ctx, messages: u64, window: usize) -> Result<Record> {
    let mut rec = record(t, "sync", t.addr());
    rec.params = BTreeMap::from([
        ("messages".into(), json!(messages)),
        ("window".into(), json!(window)),
        ("body_bytes".into(), json!(ctx.body_len)),
    ]);
    let a = ctx.name("sync-a");
    let b = ctx.name("sync-b");
    // Both devices of B log in once, so each has a session and a cursor, then go offline.
    let mut cursors = Vec::new();
    for device in ["d1", "d2"] {
        let (tx, _rx) = t.connect_with(t.options(&b, device, t.addr())?).await?;
        cursors.push(tx.cursor());
        tx.close().await;
    }
    let (sender, _own) = t.connect(&a, Inbox::None).await?;
    let progress = Progress::default();
    let filled = tokio::time::timeout(
        ctx.timeout,
        send_windowed(
            sender.clone(),
            b.clone(),
            0,
            messages,
            window,
            ctx.body_len,
            progress.clone(),
        ),
    )
    .await
    .context("sending the messages to sync timed out")?;
    filled.context("sending the messages to sync")?;
    sender.close().await;

    // Device 1, direct: connect start until every message is in.
    let mut options = t.options(&b, "d1", t.addr())?;
    options.cursor = cursors.first().copied().flatten();
    let meter = Meter::start(ctx.server_pid)?;
    let start = now_ns();
    let (d1, rx1) = t.connect_with(options).await?;
    let first = pull(rx1, messages, ctx, &progress).await;
    let direct_ns = first.last_ns.saturating_sub(start);
    let usage = meter.stop()?;
    d1.close().await;

    // Device 2, through the counting proxy.
    let proxy = Proxy::start(t.addr()).await?;
    let mut options = t.options(&b, "d2", &proxy.addr)?;
    options.cursor = cursors.get(1).copied().flatten();
    let start = now_ns();
    let (d2, rx2) = t.connect_with(options).await?;
    let second = pull(rx2, messages, ctx, &progress).await;
    let down = proxy.down.load(Ordering::Relaxed);
    let up = proxy.up.load(Ordering::Relaxed);
    let proxied_ns = second.last_ns.saturating_sub(start);
    d2.close().await;

    let (check, _, _) = merge(vec![first, second], &mut rec.notes);
    let body_bytes = messages * ctx.body_len as u64;
    let f = &mut rec.figures;
    f.insert("messages".into(), messages as f64);
    f.insert("sync_ms".into(), direct_ns as f64 / 1e6);
    f.insert(
        "sync_msgs_per_s".into(),
        messages as f64 / (direct_ns.max(1) as f64 / 1e9),
    );
    f.insert("proxied_sync_ms".into(), proxied_ns as f64 / 1e6);
    f.insert("wire_bytes_down".into(), down as f64);
    f.insert("wire_bytes_up".into(), up as f64);
    f.insert("body_bytes".into(), body_bytes as f64);
    f.insert(
        "wire_to_body_ratio".into(),
        down as f64 / body_bytes.max(1) as f64,
    );
    add_usage(
        &mut rec.figures,
        &mut rec.notes,
        &usage,
        "msgs",
        messages as f64,
    );
    rec.notes.push(
        "sync_ms: from the start of connect (TCP, HELLO/WELCOME, SYNC pages) until the last \
         message reached the application, device 1, direct; wire bytes: server to client, \
         device 2 through an in-process counting proxy, handshake included"
            .into(),
    );
    rec.check = Some(check);
    Ok(rec)
}

/// Receives one device's missed messages, bounded by the run's timeout.
async fn pull(rx: MagpieRx, messages: u64, ctx: &Ctx, progress: &Progress) -> Received {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    receive(rx, 0, messages, deadline, u64::MAX, progress.clone()).await
}

/// A TCP proxy on 127.0.0.1 that forwards to the server and counts bytes each way.
struct Proxy {
    addr: String,
    /// Server to client.
    down: Arc<AtomicU64>,
    /// Client to server.
    up: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &str) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the counting proxy")?;
        let addr = listener.local_addr()?.to_string();
        let down = Arc::new(AtomicU64::new(0));
        let up = Arc::new(AtomicU64::new(0));
        let upstream = upstream.to_owned();
        let task = {
            let (down, up) = (down.clone(), up.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(copy(sr, cw, down.clone()));
                    tokio::spawn(copy(cr, sw, up.clone()));
                }
            })
        };
        Ok(Proxy {
            addr,
            down,
            up,
            task,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies until EOF or an error, counting.
async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::Relaxed);
                let Some(chunk) = buf.get(..n) else { break };
                if to.write_all(chunk).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
