//! The client role of the HTTP/1.1 codec: requests out, responses in.
//!
//! Sans-IO like the server role: no sockets, no clock. [`RequestEncoder`]
//! writes a request head into a `Vec<u8>` (a chunked body continues with
//! [`chunk`] and [`last_chunk`], shared with the server role's response
//! encoding). [`ResponseReader`] is fed the bytes received, in whatever
//! pieces they arrive, and reports each response as events: its head
//! ([`ResponseHead`], owned), its body as ranges of the input (decoded by the
//! same [`Decoder`](crate::http::body::Decoder) that reads request bodies),
//! and its end, with whether the connection may be reused. Interim 1xx
//! responses are skipped, 101 is reported; framing follows RFC 9112 §6.3.
//!
//! ```
//! use peregrine::http::client::{Event, RequestEncoder, ResponseReader};
//! let mut request = Vec::new();
//! RequestEncoder::new("GET", "/", "example.com").encode(&mut request).unwrap();
//!
//! let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
//! let mut reader = ResponseReader::default();
//! let (mut rest, mut body) = (&input[..], Vec::new());
//! loop {
//!     let p = reader.feed(rest).unwrap();
//!     match p.event {
//!         Event::Body(r) => body.extend_from_slice(&rest[r]),
//!         Event::Complete { reuse } => assert!(reuse),
//!         Event::NeedInput => break,
//!         _ => {}
//!     }
//!     rest = &rest[p.consumed..];
//! }
//! assert_eq!((reader.head().status, &body[..]), (200, &b"hello"[..]));
//! ```

mod error;
mod head;
mod reader;
mod request;

pub use error::ClientError;
pub use head::ResponseHead;
pub use reader::{Event, Progress, ResponseLimits, ResponseReader};
pub use request::{RequestBody, RequestEncoder, is_token};

pub use super::encode::{chunk, chunk_size, last_chunk};

#[cfg(test)]
mod tests;
