//! The connection preface and version negotiation ([WIRE-2]).
//!
//! ```text
//! client → server   4D 41 47 50 01          "MAGP", version 1
//! server → client   4D 41 47 50 01          accepted
//!                or 4D 41 47 50 00 N v..    rejected: the N versions it speaks; then it closes
//! ```

use bytes::{Buf, BufMut, BytesMut};

use crate::error::Error;

/// The four magic bytes, ASCII "MAGP" ([WIRE-2.1]).
pub const MAGIC: [u8; 4] = *b"MAGP";
/// Wire version 1, defined by `spec/wire.md`.
pub const VERSION_1: u8 = 1;
/// The versions this crate speaks, most preferred first.
pub const SUPPORTED_VERSIONS: &[u8] = &[VERSION_1];
/// Bytes in a preface.
pub const PREFACE_LEN: usize = 5;
/// The version byte that marks a version rejection ([WIRE-2.4]).
const REJECTION: u8 = 0;

/// Writes the preface for `version` (client side, and the server's acceptance) ([WIRE-2.1],
/// [WIRE-2.3]).
pub fn write_preface(version: u8, dst: &mut BytesMut) {
    dst.put_slice(&MAGIC);
    dst.put_u8(version);
}

/// Checks the magic as far as it has arrived ([WIRE-2.2]): the first wrong byte fails at once.
fn check_magic(src: &[u8]) -> Result<(), Error> {
    for (i, (got, want)) in src.iter().zip(MAGIC.iter()).enumerate() {
        if got != want {
            return Err(Error::BadMagic {
                offset: i as u64,
                byte: *got,
            });
        }
    }
    Ok(())
}

/// Server side: reads the client preface. `Ok(Some(version))` once all five bytes are there (they
/// are consumed); `Ok(None)`: more bytes needed; `Err(BadMagic)`: not Magpie, close without a
/// reply ([WIRE-2.2]).
pub fn read_client_preface(src: &mut BytesMut) -> Result<Option<u8>, Error> {
    check_magic(src)?;
    if src.len() < PREFACE_LEN {
        return Ok(None);
    }
    let version = src[4];
    src.advance(PREFACE_LEN);
    Ok(Some(version))
}

/// Server side: answers an offered version ([WIRE-2.3], [WIRE-2.4]). Writes the acceptance and
/// returns the version, or writes a version rejection listing `supported` and returns
/// `Err(UnsupportedVersion)`, after which the server closes the stream.
pub fn answer_client_preface(
    offered: u8,
    supported: &[u8],
    dst: &mut BytesMut,
) -> Result<u8, Error> {
    // [WIRE-2.5]: version 0 is never a wire version.
    if offered != REJECTION && supported.contains(&offered) {
        write_preface(offered, dst);
        return Ok(offered);
    }
    let listed = &supported[..supported.len().min(255)];
    dst.put_slice(&MAGIC);
    dst.put_u8(REJECTION);
    dst.put_u8(listed.len() as u8);
    dst.put_slice(listed);
    Err(Error::UnsupportedVersion {
        offered,
        supported: listed.to_vec(),
    })
}

/// Client side: reads the server's reply to `offered` ([WIRE-2.6]). `Ok(Some(version))` when
/// accepted (the bytes are consumed); `Err(UnsupportedVersion)` with the server's list when
/// rejected; `Err(BadMagic | BadServerPreface)` for anything else.
pub fn read_server_preface(src: &mut BytesMut, offered: u8) -> Result<Option<u8>, Error> {
    check_magic(src)?;
    let Some(&version) = src.get(4) else {
        return Ok(None);
    };
    if version == offered {
        src.advance(PREFACE_LEN);
        return Ok(Some(version));
    }
    if version != REJECTION {
        return Err(Error::BadServerPreface { version, offered });
    }
    let Some(&count) = src.get(5) else {
        return Ok(None);
    };
    let end = 6 + usize::from(count);
    if src.len() < end {
        return Ok(None);
    }
    let supported = src[6..end].to_vec();
    src.advance(end);
    Err(Error::UnsupportedVersion { offered, supported })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_and_reject_worked_examples() {
        // spec/wire.md §2 worked examples.
        let mut out = BytesMut::new();
        assert_eq!(
            answer_client_preface(1, SUPPORTED_VERSIONS, &mut out).ok(),
            Some(1)
        );
        assert_eq!(&out[..], [0x4D, 0x41, 0x47, 0x50, 0x01]);
        assert_eq!(read_server_preface(&mut out, 1).ok().flatten(), Some(1));
        assert!(out.is_empty());

        let mut out = BytesMut::new();
        assert!(answer_client_preface(7, SUPPORTED_VERSIONS, &mut out).is_err());
        assert_eq!(&out[..], [0x4D, 0x41, 0x47, 0x50, 0x00, 0x01, 0x01]);
        match read_server_preface(&mut out, 7) {
            Err(Error::UnsupportedVersion {
                offered: 7,
                supported,
            }) => {
                assert_eq!(supported, [1]);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn stray_traffic_fails_at_the_first_wrong_byte() {
        let mut src = BytesMut::from(&b"GE"[..]);
        assert!(matches!(
            read_client_preface(&mut src),
            Err(Error::BadMagic {
                offset: 0,
                byte: b'G'
            })
        ));
        let mut src = BytesMut::from(&b"MA"[..]);
        assert!(matches!(read_client_preface(&mut src), Ok(None)));
        let mut src = BytesMut::from(&b"MAGX"[..]);
        assert!(matches!(
            read_client_preface(&mut src),
            Err(Error::BadMagic { offset: 3, .. })
        ));
    }

    #[test]
    fn version_zero_is_rejected() {
        let mut out = BytesMut::new();
        assert!(answer_client_preface(0, SUPPORTED_VERSIONS, &mut out).is_err());
        assert_eq!(out[4], 0);
    }
}
