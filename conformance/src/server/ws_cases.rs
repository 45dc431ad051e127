//! WebSocket transport cases ([WIRE-2.8]): the same bytes in binary messages.

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::case::{Case, Level, Outcome, Verdict};
use crate::conn::Conn;
use crate::server::{claims, fresh, hello, mint_with, server};

/// Connects to `url` and bridges a byte stream to binary messages of at most `chunk` bytes.
async fn connect_ws(url: &str, chunk: usize) -> Result<Conn, String> {
    let (ws, _) = tokio::time::timeout(crate::conn::WAIT, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| format!("WebSocket connect to {url} timed out"))?
        .map_err(|e| format!("WebSocket connect to {url}: {e}"))?;
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (mut sink, mut stream) = ws.split();
    let (mut rd, mut wr) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for piece in buf[..n].chunks(chunk.max(1)) {
                        if sink
                            .send(Message::Binary(piece.to_vec().into()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let ok = match m {
                Message::Binary(b) => wr.write_all(&b).await.is_ok(),
                Message::Close(_) => false,
                _ => true,
            };
            if !ok {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    Ok(Conn::over(Box::new(ours)))
}

fn ws_case(path: &str, req: &str, chunk: usize) -> Case {
    Case::new(path, &["WIRE-2.8"], Level::Must, req, move |t| async move {
        let s = server(&t);
        let Some(url) = s.ws.clone() else {
            return Verdict::new(
                Outcome::Unimplemented,
                "a WebSocket URL (--ws)",
                "none given",
            );
        };
        let expected =
            format!("WELCOME and a PONG over WebSocket, bytes sent in messages of {chunk} bytes");
        let mut c = match connect_ws(&url, chunk).await {
            Ok(c) => c,
            Err(e) => return Verdict::fail(expected, e),
        };
        let user = fresh("ws");
        let h = hello(
            s,
            mint_with(&claims(s, &user, "d1"), &s.secret),
            "d1",
            magpie_auth::Platform::Web,
        );
        match c.handshake(&h).await {
            Ok(w) if w.user_id == user => {}
            Ok(w) => return Verdict::fail(expected, format!("WELCOME for {:?}", w.user_id)),
            Err(seen) => return Verdict::fail(expected, seen.describe()),
        }
        let v = match c.ping(b"over-ws").await {
            Ok(()) => Verdict::pass(expected, "WELCOME, then the PONG echoed the body"),
            Err(e) => Verdict::fail(expected, e),
        };
        c.close().await;
        v
    })
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        ws_case(
            "ws/2.8/1",
            "Over WebSocket (B1) the preface is the first binary message's first bytes; message boundaries carry no meaning and frames MAY span messages.",
            65_536,
        ),
        ws_case(
            "ws/2.8/2",
            "message boundaries carry no meaning and frames MAY span messages.",
            3,
        ),
    ]
}
