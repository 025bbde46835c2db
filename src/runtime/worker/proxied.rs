//! A PROXY protocol header (v1 or v2) before a connection's own bytes, on
//! listeners that expect one: the address it names replaces the peer's.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;

use crate::guard::Guards;

use crate::ipnet::proxy_protocol::{MAX_HEADER, parse};

/// What the bytes received so far come to.
pub(super) enum Taken<'a> {
    /// The header is not complete yet.
    Wait,
    /// Not a valid header: the connection is closed.
    Bad,
    /// The header is complete.
    Done {
        /// The client it names (`None`: a health check's `LOCAL`, or an
        /// address family without one; the peer stays the peer).
        source: Option<SocketAddr>,
        /// The connection's own bytes after it.
        rest: Cow<'a, [u8]>,
    },
}

/// Adds `data` to what `buf` holds of the header and looks again.
pub(super) fn take<'a>(buf: &mut Vec<u8>, data: &'a [u8]) -> Taken<'a> {
    if buf.is_empty() {
        return match parse(data) {
            Ok(Some((h, n))) => Taken::Done {
                source: h.source,
                rest: Cow::Borrowed(&data[n..]),
            },
            Ok(None) if data.len() < MAX_HEADER => {
                buf.extend_from_slice(data);
                Taken::Wait
            }
            _ => Taken::Bad,
        };
    }
    buf.extend_from_slice(data);
    match parse(buf) {
        Ok(Some((h, n))) => Taken::Done {
            source: h.source,
            rest: Cow::Owned(buf[n..].to_vec()),
        },
        Ok(None) if buf.len() < MAX_HEADER => Taken::Wait,
        _ => Taken::Bad,
    }
}

/// The connection's own bytes in `data` (`Ok(None)`: none yet), for the
/// connection in `slot` on `listener`; `parts` holds the headers still
/// arriving, by slot. The address a header names becomes `peer`. `Err`:
/// the header is bad, or names an address refused on this listener — the
/// connection is closed.
pub(super) fn input<'a>(
    parts: &mut HashMap<usize, Vec<u8>>,
    guards: Option<&Guards>,
    (slot, listener, peer): (usize, u16, &mut Option<Box<SocketAddr>>),
    data: &'a [u8],
) -> Result<Option<Cow<'a, [u8]>>, ()> {
    let waiting = match parts.is_empty() {
        true => None,
        false => parts.get_mut(&slot),
    };
    let Some(buf) = waiting else {
        return Ok(Some(Cow::Borrowed(data)));
    };
    match take(buf, data) {
        Taken::Wait => Ok(None),
        Taken::Bad => {
            parts.remove(&slot);
            Err(())
        }
        Taken::Done { source, rest } => {
            parts.remove(&slot);
            if let Some(s) = source {
                *peer = Some(Box::new(s));
            }
            let l = usize::from(listener);
            let refused = peer
                .as_deref()
                .is_some_and(|p| guards.is_some_and(|g| g.refuse_at_accept(l, p.ip())));
            if refused { Err(()) } else { Ok(Some(rest)) }
        }
    }
}
