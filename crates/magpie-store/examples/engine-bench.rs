//! Compares storage engines for `magpie-store` by durable commit throughput.
//!
//! ```sh
//! cargo run --release -p magpie-store --features engine-bench --example engine-bench [-- SECONDS]
//! ```
//!
//! Every commit is made durable before the next starts (redb `Durability::Immediate`, fjall
//! `PersistMode::SyncAll`, SQLite WAL with `synchronous = FULL`). One "write" is what storing a
//! 1:1 message costs: one ≈200-byte message record keyed by (app, conversation, seq) and one small
//! event record for each of the two participants keyed by (app, user, offset). A commit holds 1, 16
//! or 128 such writes (group commit). Each case runs for a few seconds (3 by default) in a fresh
//! temporary directory on the machine's disk.

use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes of a message record.
const MESSAGE_VALUE_LEN: usize = 200;
/// The batch sizes measured.
const BATCHES: [usize; 3] = [1, 16, 128];

/// One write's keys and values.
struct Record {
    message_key: Vec<u8>,
    message: Vec<u8>,
    events: [(Vec<u8>, Vec<u8>); 2],
}

/// Makes the `i`th write: realistic keys, incompressible values.
fn record(i: u64, rng: &mut u64) -> Record {
    let mut message = vec![0u8; MESSAGE_VALUE_LEN];
    for chunk in message.chunks_mut(8) {
        // xorshift64: cheap, incompressible filler.
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let bytes = rng.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    let conversation = format!("u:alice-{:04}:bob-{:04}", i % 1000, (i / 7) % 1000);
    let key = |parts: &[&[u8]], n: u64| {
        let mut k = Vec::with_capacity(48);
        for p in parts {
            k.extend_from_slice(p);
            k.push(0);
        }
        k.extend_from_slice(&n.to_be_bytes());
        k
    };
    let event = |user: &str| {
        let mut v = conversation.as_bytes().to_vec();
        v.extend_from_slice(&i.to_be_bytes());
        (key(&[b"demo", user.as_bytes()], i), v)
    };
    Record {
        message_key: key(&[b"demo", conversation.as_bytes()], i),
        events: [
            event(&format!("alice-{:04}", i % 1000)),
            event(&format!("bob-{:04}", (i / 7) % 1000)),
        ],
        message,
    }
}

/// A storage engine under test.
trait Engine {
    /// Commits `records` in one durable transaction.
    fn commit(&mut self, records: &[Record]);
}

struct Redb {
    db: redb::Database,
}

const MESSAGES: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("messages");
const EVENTS: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("events");

impl Redb {
    fn open(dir: &Path) -> Self {
        let db = redb::Database::create(dir.join("bench.redb")).expect("redb open");
        Self { db }
    }
}

impl Engine for Redb {
    fn commit(&mut self, records: &[Record]) {
        let mut tx = self.db.begin_write().expect("begin");
        tx.set_durability(redb::Durability::Immediate)
            .expect("durability");
        {
            let mut messages = tx.open_table(MESSAGES).expect("table");
            let mut events = tx.open_table(EVENTS).expect("table");
            for r in records {
                messages
                    .insert(r.message_key.as_slice(), r.message.as_slice())
                    .expect("insert");
                for (k, v) in &r.events {
                    events.insert(k.as_slice(), v.as_slice()).expect("insert");
                }
            }
        }
        tx.commit().expect("commit");
    }
}

struct Fjall {
    db: fjall::Database,
    messages: fjall::Keyspace,
    events: fjall::Keyspace,
}

impl Fjall {
    fn open(dir: &Path) -> Self {
        let db = fjall::Database::builder(dir.join("bench.fjall"))
            .open()
            .expect("fjall open");
        let messages = db
            .keyspace("messages", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        let events = db
            .keyspace("events", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        Self {
            db,
            messages,
            events,
        }
    }
}

impl Engine for Fjall {
    fn commit(&mut self, records: &[Record]) {
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for r in records {
            batch.insert(&self.messages, r.message_key.clone(), r.message.clone());
            for (k, v) in &r.events {
                batch.insert(&self.events, k.clone(), v.clone());
            }
        }
        batch.commit().expect("commit");
    }
}

struct Sqlite {
    conn: rusqlite::Connection,
}

impl Sqlite {
    fn open(dir: &Path) -> Self {
        let conn = rusqlite::Connection::open(dir.join("bench.sqlite")).expect("sqlite open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE messages (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE events (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;",
        )
        .expect("sqlite setup");
        Self { conn }
    }
}

impl Engine for Sqlite {
    fn commit(&mut self, records: &[Record]) {
        let tx = self.conn.transaction().expect("begin");
        {
            let mut m = tx
                .prepare_cached("INSERT OR REPLACE INTO messages (k, v) VALUES (?1, ?2)")
                .expect("prepare");
            let mut e = tx
                .prepare_cached("INSERT OR REPLACE INTO events (k, v) VALUES (?1, ?2)")
                .expect("prepare");
            for r in records {
                m.execute((&r.message_key, &r.message)).expect("insert");
                for (k, v) in &r.events {
                    e.execute((k, v)).expect("insert");
                }
            }
        }
        tx.commit().expect("commit");
    }
}

/// One measured case.
struct Row {
    engine: &'static str,
    batch: usize,
    commits: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn run(engine: &'static str, e: &mut dyn Engine, batch: usize, secs: f64) -> Row {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = 0u64;
    let mut latencies = Vec::new();
    let start = Instant::now();
    let budget = Duration::from_secs_f64(secs);
    while start.elapsed() < budget {
        let records: Vec<Record> = (0..batch)
            .map(|_| {
                next += 1;
                record(next, &mut rng)
            })
            .collect();
        let t = Instant::now();
        e.commit(&records);
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Row {
        engine,
        batch,
        commits: latencies.len(),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS must be a number"))
        .unwrap_or(3.0);
    let mut rows = Vec::new();
    for batch in BATCHES {
        for engine in ["redb", "fjall", "sqlite"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut e: Box<dyn Engine> = match engine {
                "redb" => Box::new(Redb::open(dir.path())),
                "fjall" => Box::new(Fjall::open(dir.path())),
                _ => Box::new(Sqlite::open(dir.path())),
            };
            let row = run(engine, e.as_mut(), batch, secs);
            eprintln!("{engine} batch {batch}: {} commits", row.commits);
            rows.push(row);
        }
    }
    println!(
        "durable commits (fsync per commit), {secs} s per case; a write = 1 message (200 B) + 2 events"
    );
    println!(
        "| engine | writes/commit | commits/s | writes/s | p50 commit | p99 commit |\n|---|---:|---:|---:|---:|---:|"
    );
    for r in &rows {
        let cps = r.commits as f64 / r.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} ms | {:.2} ms |",
            r.engine,
            r.batch,
            cps,
            cps * r.batch as f64,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3
        );
    }
}
