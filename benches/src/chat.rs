//! A representative chat message and a deterministic corpus of varied short messages.
//!
//! The message is a hand-written prost struct (no protoc) shaped like what a chat client sends in
//! a SEND body. The corpus mixes a few dozen English and Chinese sentence templates with names,
//! numbers, times and emoji, picked by a seeded xorshift, so that compression figures measured on
//! it are honest: no two messages are copies (ids and timestamps always differ) and texts repeat
//! only as much as a real burst of chat repeats its vocabulary.

use bytes::Bytes;
use magpie_wire::{FrameType, Packet, VarInt};
use prost::Message;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ContentType {
    /// Not set (proto3 default, never sent by the generator).
    Unspecified = 0,
    /// Plain text.
    Text = 1,
    /// A sticker reference in `text`.
    Sticker = 2,
    /// Text containing a link.
    Link = 3,
}

/// A chat message as a client sends it (the body of a SEND packet).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChatMessage {
    /// Conversation id, e.g. `c:alice:bob` or `g:7f3a:family`.
    #[prost(string, tag = "1")]
    pub conversation_id: String,
    /// Client-generated message id: 16 bytes, UUIDv7 layout (48-bit ms timestamp, then random).
    #[prost(bytes = "vec", tag = "2")]
    pub client_msg_id: Vec<u8>,
    /// Sender user id, e.g. `u:alice`.
    #[prost(string, tag = "3")]
    pub sender: String,
    /// Content type.
    #[prost(enumeration = "ContentType", tag = "4")]
    pub content_type: i32,
    /// The text (or sticker reference).
    #[prost(string, tag = "5")]
    pub text: String,
    /// Sent-at time, milliseconds since the Unix epoch (client clock).
    #[prost(int64, tag = "6")]
    pub sent_at_ms: i64,
    /// The client id of the message this one replies to.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub reply_to: Option<Vec<u8>>,
    /// Disappearing-message timer, seconds.
    #[prost(uint32, optional, tag = "8")]
    pub expires_in_s: Option<u32>,
}

/// xorshift64*: small, seeded, deterministic on every platform.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (0 is replaced by a fixed non-zero value).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 32) as usize) % n.max(1)
    }

    /// `true` with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Sentence templates: `{name}`, `{n}`, `{t}` (a time) and `{e}` (an emoji) are filled in.
const TEMPLATES: &[&str] = &[
    "ok 👍",
    "lol {e}",
    "on my way, be there in {n} min",
    "did you see what {name} posted? 😂",
    "can we move the call to {t}? something came up",
    "thanks {name}! 🙏",
    "the build is green again, merged #{n}",
    "who's bringing snacks on friday? 🍕",
    "running {n} minutes late, sorry!!",
    "happy birthday {name}!!! 🎉🎂",
    "I'll send the slides tonight, promise",
    "meeting moved to room {n}, second floor",
    "can you review my PR when you get a chance?",
    "sounds good, see you at {t} {e}",
    "haha no way",
    "just landed ✈️ grabbing a taxi now",
    "the wifi password is on the fridge",
    "does anyone have {name}'s new number?",
    "price went up to ${n}.99, still worth it?",
    "good morning ☀️",
    "let me check with {name} and get back to you",
    "❤️",
    "where are we meeting, {name}?",
    "train delayed again 🙄 eta {t}",
    "好的，没问题 👌",
    "我马上到，大概{n}分钟",
    "今天晚上一起吃饭吗？🍜",
    "{name}，明天的会议改到{t}了",
    "哈哈哈哈笑死我了 😂",
    "收到，谢谢！",
    "文件我已经发到群里了，请查收",
    "周末去爬山吗？天气预报说是晴天 ⛰️",
    "我在地铁上，信号不好，晚点回你",
    "生日快乐 {name}！{e}",
    "这个价格{n}块，你觉得贵吗？",
    "晚安 🌙",
    "刚才那个链接打不开，能再发一次吗？",
    "我们在{n}号门口等你",
    "辛苦了，早点休息 {e}",
    "明天几点出发？{t}可以吗？",
    "{name} 说 ok 👍",
    "PR #{n} 已经合并了 ✅",
    "see you at 星巴克 {t} ☕",
    "https://example.com/p/{n} check this out",
];

const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "小明", "小红", "王伟",
    "李娜", "Zoë", "Mateo",
];

const EMOJI: &[&str] = &["😂", "🎉", "👍", "🙏", "😅", "🔥", "💯", "🥲", "☕", "🤣"];

const STICKERS: &[&str] = &[
    "stk:cats/042",
    "stk:dogs/007",
    "stk:panda/113",
    "stk:hi/001",
];

/// Conversations: id and participants (user names).
const CONVERSATIONS: &[(&str, &[&str])] = &[
    ("c:alice:bob", &["alice", "bob"]),
    ("c:carol:dave", &["carol", "dave"]),
    ("g:7f3a:family", &["alice", "grace", "heidi", "frank"]),
    (
        "g:91c2:dev-team",
        &["bob", "carol", "erin", "dave", "frank"],
    ),
    ("c:xiaoming:xiaohong", &["xiaoming", "xiaohong"]),
    ("g:0b5e:周末爬山群", &["wangwei", "lina", "xiaoming", "zoe"]),
];

fn fill(template: &str, rng: &mut XorShift) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        match &rest[start + 1..start + len] {
            "name" => out.push_str(rng.pick(NAMES)),
            "n" => out.push_str(&(1 + rng.below(999)).to_string()),
            "t" => out.push_str(&format!("{}:{:02}", 8 + rng.below(14), 5 * rng.below(12))),
            "e" => out.push_str(rng.pick(EMOJI)),
            other => out.push_str(other),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// A UUIDv7-shaped id: 48-bit ms timestamp, version 7, variant 10, 74 random bits.
fn uuid_v7(ms: i64, rng: &mut XorShift) -> Vec<u8> {
    let mut id = Vec::with_capacity(16);
    id.extend_from_slice(&(ms as u64).to_be_bytes()[2..]);
    id.extend_from_slice(&rng.next_u64().to_be_bytes()[..2]);
    id.extend_from_slice(&rng.next_u64().to_be_bytes());
    id[6] = 0x70 | (id[6] & 0x0F);
    id[8] = 0x80 | (id[8] & 0x3F);
    id
}

/// `n` varied chat messages, deterministic for a seed. Bursts stay in one conversation for a while,
/// timestamps advance by 0–20 s, a third of the texts are two sentences, some messages reply to an
/// earlier one or carry a disappearing timer.
pub fn corpus(n: usize, seed: u64) -> Vec<ChatMessage> {
    let mut rng = XorShift::new(seed);
    let mut now: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let mut conv = 0;
    let mut out: Vec<ChatMessage> = Vec::with_capacity(n);
    for _ in 0..n {
        if rng.chance(25) {
            conv = rng.below(CONVERSATIONS.len());
        }
        let (conversation_id, members) = CONVERSATIONS[conv];
        now += rng.below(20_000) as i64;
        let (content_type, text) = match rng.below(100) {
            0..5 => (ContentType::Sticker, rng.pick(STICKERS).to_owned()),
            5..8 => (
                ContentType::Link,
                fill(TEMPLATES[TEMPLATES.len() - 1], &mut rng),
            ),
            _ => {
                let mut text = fill(rng.pick(TEMPLATES), &mut rng);
                if rng.chance(35) {
                    text.push(' ');
                    text.push_str(&fill(rng.pick(TEMPLATES), &mut rng));
                }
                (ContentType::Text, text)
            }
        };
        let reply_to = match out.len() {
            len if len > 0 && rng.chance(12) => {
                Some(out[len - 1 - rng.below(len.min(8))].client_msg_id.clone())
            }
            _ => None,
        };
        out.push(ChatMessage {
            conversation_id: conversation_id.to_owned(),
            client_msg_id: uuid_v7(now, &mut rng),
            sender: format!("u:{}", rng.pick(members)),
            content_type: content_type as i32,
            text,
            sent_at_ms: now,
            reply_to,
            expires_in_s: rng.chance(8).then_some(86_400),
        });
    }
    out
}

/// The prost encoding of each message.
pub fn encode_bodies(messages: &[ChatMessage]) -> Vec<Bytes> {
    messages
        .iter()
        .map(|m| Bytes::from(m.encode_to_vec()))
        .collect()
}

/// SEND packets carrying `bodies`, with ids counting up from `first_id`.
pub fn to_packets(bodies: &[Bytes], first_id: u32) -> Vec<Packet> {
    bodies
        .iter()
        .zip(first_id..)
        .map(|(body, id)| Packet::new(FrameType::SEND, body.clone()).with_id(VarInt::from_u32(id)))
        .collect()
}
