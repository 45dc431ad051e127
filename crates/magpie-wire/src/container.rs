//! Container bodies ([WIRE-8]): validated whole before any packet is delivered ([WIRE-8.5]).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::error::{ContainerFault, Error};
use crate::header::{self, Place, Rules};
use crate::packet::Packet;
use crate::types::{Disposition, TypeRegistry};

/// Parses a container body into `out` (which must be empty), all or nothing.
///
/// `base` is the stream offset of `body[0]` for error context (for a compressed container, the
/// offset of the container frame).
pub(crate) fn parse(
    body: &Bytes,
    types: &TypeRegistry,
    cap: u16,
    base: u64,
    out: &mut VecDeque<Packet>,
) -> Result<(), Error> {
    let result = parse_into(body, types, cap, base, out);
    if result.is_err() {
        out.clear();
    }
    result
}

fn parse_into(
    body: &Bytes,
    types: &TypeRegistry,
    cap: u16,
    base: u64,
    out: &mut VecDeque<Packet>,
) -> Result<(), Error> {
    let rules = Rules {
        types,
        place: Place::Container,
    };
    let fault = |fault, index| Error::Container {
        fault,
        index,
        offset: base,
    };
    let mut pos = 0usize;
    let mut index = 0usize;
    while pos < body.len() {
        // [WIRE-8.4]: stop at the first packet past the cap, before parsing it.
        if index == usize::from(cap) {
            return Err(fault(ContainerFault::TooManyPackets { limit: cap }, index));
        }
        let rest = &body[pos..];
        let head = match header::parse(rest, &rules, base + pos as u64) {
            Ok(Some(head)) => head,
            // [WIRE-8.1]: a header cut off by the end of the body.
            Ok(None) => return Err(fault(ContainerFault::Overrun, index)),
            Err(Error::Container { fault: f, .. }) => return Err(fault(f, index)),
            Err(e) => return Err(e),
        };
        let start = pos + head.header_len;
        let end = usize::try_from(head.len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|end| *end <= body.len())
            .ok_or_else(|| fault(ContainerFault::Overrun, index))?;
        if head.disposition == Disposition::Deliver {
            let mut packet = Packet::new(head.ty, body.slice(start..end));
            if let Some(id) = head.id {
                packet = packet.with_id(id);
            }
            out.push_back(packet);
        }
        pos = end;
        index += 1;
    }
    if index == 0 {
        return Err(fault(ContainerFault::Empty, 0));
    }
    Ok(())
}
