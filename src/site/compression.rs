//! A site's `[site.compression]`: which responses are compressed on the fly
//! and how, decided from the request's `Accept-Encoding` and the response's
//! head. Files are not compressed here (that would read them on the worker):
//! their precompressed sidecars are served by the file handler.

use std::rc::Rc;

use super::compressed::Compressed;
use crate::compress::{Choice, Coding, Encoder, MimeTypes, compress, negotiate};
use crate::exchange::{Io, Reply, RequestBody, RequestHead, Task};
use crate::http::response::Text;
use crate::http::{Body, Response};

/// Compression levels by coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    /// Brotli, 0–11.
    pub br: u32,
    /// Zstandard, 1–19.
    pub zstd: u32,
    /// gzip, 1–9.
    pub gzip: u32,
}

impl Default for Levels {
    fn default() -> Levels {
        Levels {
            br: 4,
            zstd: 3,
            gzip: 5,
        }
    }
}

impl Levels {
    /// The level for `c`.
    pub fn of(&self, c: Coding) -> u32 {
        match c {
            Coding::Br => self.br,
            Coding::Zstd => self.zstd,
            Coding::Gzip => self.gzip,
        }
    }
}

/// `[site.compression]` as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressionSpec {
    /// Codings offered for dynamic compression, in the server's preference.
    pub encodings: Vec<Coding>,
    /// Bodies shorter than this are sent as they are.
    pub min_length: u64,
    /// Media types compressed (`text/*` for a whole type).
    pub mime_types: Vec<String>,
    /// Levels for dynamic compression.
    pub levels: Levels,
    /// Sidecar files looked for (`app.js.br` beside `app.js`), in preference.
    pub precompressed: Vec<Coding>,
}

impl Default for CompressionSpec {
    fn default() -> CompressionSpec {
        CompressionSpec {
            encodings: vec![Coding::Br, Coding::Zstd, Coding::Gzip],
            min_length: 1024,
            mime_types: DEFAULT_TYPES.iter().map(|s| s.to_string()).collect(),
            levels: Levels::default(),
            precompressed: Vec::new(),
        }
    }
}

/// The media types compressed unless `mime_types` says otherwise.
pub const DEFAULT_TYPES: &[&str] = &[
    "text/*",
    "application/json",
    "application/javascript",
    "application/xml",
    "image/svg+xml",
    "application/wasm",
];

/// A body in memory at most this long is compressed at once, in the
/// handler's turn; a longer one is compressed as it is sent, a piece per
/// turn of the loop.
const AT_ONCE: u64 = 32 * 1024;

/// Compression ready to apply, shared by a site's routes.
#[derive(Debug)]
pub struct Compression {
    spec: CompressionSpec,
    types: MimeTypes,
}

impl Compression {
    /// Compression as `spec` configures it.
    pub fn new(spec: CompressionSpec) -> Rc<Compression> {
        let types = MimeTypes::new(&spec.mime_types);
        Rc::new(Compression { spec, types })
    }

    /// The coding `req` gets among `offered`, if any.
    pub fn choose(req: &RequestHead, offered: &[Coding]) -> Option<Coding> {
        match negotiate(accept_encoding(req).as_deref(), offered) {
            Choice::Coding(c) => Some(c),
            Choice::Identity | Choice::NotAcceptable => None,
        }
    }

    /// `reply` compressed for `req` where that applies: now, or when a
    /// pending answer comes. `Accept-Encoding` is read only for an answer
    /// that is a candidate (or may be one, later).
    pub fn reply(self: &Rc<Self>, req: &RequestHead, reply: Reply) -> Reply {
        // A tunnel's bytes are no representation to encode.
        if req.method == crate::http::Method::Connect {
            return reply;
        }
        self.apply(reply, || {
            if req.method == crate::http::Method::Head {
                // A HEAD answer describes the identity body it would send
                // (its length stays true); `Vary` still says it depends.
                None
            } else {
                Compression::choose(req, &self.spec.encodings)
            }
        })
    }

    fn apply(self: &Rc<Self>, reply: Reply, coding: impl FnOnce() -> Option<Coding>) -> Reply {
        match reply {
            Reply::Ready(r) => self.ready(r, coding),
            Reply::Stream(head, source) => {
                if !self.candidate(&head, None) {
                    return Reply::Stream(head, source);
                }
                let head = vary(head);
                match coding() {
                    Some(c) => Reply::Stream(
                        encoded(head, c),
                        Box::new(Compressed::source(source, self.encoder(c))),
                    ),
                    None => Reply::Stream(head, source),
                }
            }
            Reply::Pending(task) => Reply::Pending(Box::new(Later {
                task,
                coding: coding(),
                compression: self.clone(),
            })),
        }
    }

    fn encoder(&self, c: Coding) -> Encoder {
        Encoder::new(c, self.spec.levels.of(c))
    }

    fn ready(&self, mut r: Response, coding: impl FnOnce() -> Option<Coding>) -> Reply {
        let len = match &r.body {
            Body::Static(_) | Body::Bytes(_) | Body::Shared(_) => r.body.len(),
            // A file is read through the ring as it is sent: its compressed
            // forms are sidecars, found by the file handler.
            Body::File(_) | Body::Empty => return Reply::Ready(r),
        };
        if !self.candidate(&r, Some(len)) {
            return Reply::Ready(r);
        }
        r = vary(r);
        let Some(c) = coding() else {
            return Reply::Ready(r);
        };
        let body = std::mem::take(&mut r.body);
        let r = encoded(r, c);
        let bytes: Rc<[u8]> = match body {
            Body::Static(b) => Rc::from(b),
            Body::Bytes(b) => Rc::from(b),
            Body::Shared(b) => b,
            Body::File(_) | Body::Empty => unreachable!("kept above"),
        };
        if len <= AT_ONCE {
            let z = compress(c, self.spec.levels.of(c), &bytes);
            return Reply::Ready(r.body(Body::Bytes(z)));
        }
        Reply::Stream(r, Box::new(Compressed::bytes(bytes, self.encoder(c))))
    }

    /// Whether a response with `head` (and a body of `len` bytes, when
    /// known) is one this site compresses: if not, it is sent as it is,
    /// with no `Vary`.
    fn candidate(&self, head: &Response, len: Option<u64>) -> bool {
        // Success with a body, and error pages; not 1xx, 3xx, 204 or 206.
        let candidate = match head.status() {
            204 | 206 => false,
            s => (200..300).contains(&s) || s >= 400,
        };
        // The cheapest test first: most small answers stop here.
        if !candidate || len.is_some_and(|n| n < self.spec.min_length) {
            return false;
        }
        if head.header_value("content-encoding").is_some()
            || head.header_value("content-range").is_some()
        {
            return false;
        }
        if head
            .header_value("cache-control")
            .is_some_and(|v| has_token(v, "no-transform"))
        {
            return false;
        }
        let Some(ct) = head.header_value("content-type") else {
            return false;
        };
        self.types.matches(ct)
    }
}

/// The request's `Accept-Encoding` (several fields joined).
pub fn accept_encoding(req: &RequestHead) -> Option<std::borrow::Cow<'_, str>> {
    let mut all = req
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"))
        .map(|(_, v)| String::from_utf8_lossy(v));
    let first = all.next()?;
    match all.next() {
        None => Some(first),
        Some(second) => {
            let mut s = format!("{first}, {second}");
            for v in all {
                s.push_str(", ");
                s.push_str(&v);
            }
            Some(s.into())
        }
    }
}

/// Whether the comma-separated `list` has `token` (case-insensitive).
fn has_token(list: &str, token: &str) -> bool {
    list.split(',').any(|t| {
        t.split('=')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(token)
    })
}

/// `r` with `Accept-Encoding` in its `Vary`.
pub fn vary(r: Response) -> Response {
    match r.header_value("vary") {
        Some(v) if has_token(v, "accept-encoding") || v.trim() == "*" => r,
        Some(v) => {
            let v = format!("{v}, Accept-Encoding");
            r.set_header("Vary", v)
        }
        None => r.header("Vary", "Accept-Encoding"),
    }
}

/// `r`'s head for its body in coding `c`: the coding named, a strong
/// validator made weak (the bytes differ from the identity body's), and
/// no length (the framing follows the compressed body).
pub fn encoded(r: Response, c: Coding) -> Response {
    let etag = r.header_value("etag").map(str::to_string);
    let mut r = r
        .remove_header("content-length")
        .header("Content-Encoding", Text::Borrowed(c.name()));
    if let Some(t) = etag
        && !t.starts_with("W/")
    {
        r = r.set_header("ETag", format!("W/{t}"));
    }
    r
}

/// A pending answer compressed when it comes.
struct Later {
    task: Box<dyn Task>,
    coding: Option<Coding>,
    compression: Rc<Compression>,
}

impl Task for Later {
    fn poll(&mut self, io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        let coding = self.coding;
        self.task
            .poll(io, body)
            .map(|r| self.compression.apply(r, || coding))
    }

    fn cancel(&mut self) {
        self.task.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn a_tunnel_is_never_encoded() {
        let c = Compression::new(CompressionSpec::default());
        let answer = || {
            Response::new(200)
                .content_type("text/html")
                .body(Body::Bytes(vec![b'a'; 4096]))
        };
        let coding = |method: Method| {
            let mut req = RequestHead::new(method, "/");
            req.push_header("Accept-Encoding", b"gzip");
            match c.reply(&req, Reply::Ready(answer())) {
                Reply::Ready(r) => r.header_value("content-encoding").map(str::to_owned),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(coding(Method::Get).as_deref(), Some("gzip"));
        assert_eq!(coding(Method::Connect), None);
    }
}
