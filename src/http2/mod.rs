//! Sans-IO HTTP/2 (RFC 9113), server role: frames in, frames out, each
//! stream an exchange under the same [`crate::http::Service`] as HTTP/1.1.
//! No sockets, no clock reads.
//!
//! - [`frame`] reads frame headers and writes every frame a server sends.
//! - [`hpack`] decodes request header blocks (bounded) and encodes
//!   response heads.
//! - [`request`] checks a decoded block against RFC 9113 §8 and builds the
//!   protocol-neutral [`crate::exchange::RequestHead`].
//! - [`stream`] produces one stream's response under flow control.
//! - [`conn`] is the connection: preface, settings, flow-control windows,
//!   stream lifecycle, GOAWAY, and the defences against floods.
#![forbid(unsafe_code)]

pub mod conn;
pub mod frame;
pub mod hpack;
mod hpack_decode;
mod huffman;
pub mod request;
mod stream;

pub use conn::H2Conn;
pub use stream::FileRead;

/// The HTTP/2 settings of a server (the `[http2]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Offer `h2` by ALPN on TLS listeners.
    pub enabled: bool,
    /// Take cleartext HTTP/2 by prior knowledge on plain listeners.
    pub h2c: bool,
    /// Streams a client may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_concurrent_streams: u32,
    /// Request body bytes a client may send on a stream before it is
    /// credited again (`SETTINGS_INITIAL_WINDOW_SIZE`).
    pub initial_stream_window: u32,
    /// Request body bytes a client may send on the whole connection before
    /// it is credited again.
    pub initial_connection_window: u32,
    /// Largest frame payload accepted (`SETTINGS_MAX_FRAME_SIZE`).
    pub max_frame_size: u32,
    /// Largest decoded request header list (`SETTINGS_MAX_HEADER_LIST_SIZE`;
    /// larger ones are answered 431).
    pub max_header_list_size: u32,
    /// Streams a client may reset per second before the connection is
    /// closed with `ENHANCE_YOUR_CALM` (Rapid Reset, CVE-2023-44487).
    pub max_resets_per_second: u32,
    /// Frames that cost work but carry no request (PING, SETTINGS,
    /// PRIORITY, empty DATA, unknown types) a client may send per second.
    pub max_control_frames_per_second: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            h2c: true,
            max_concurrent_streams: 128,
            initial_stream_window: 256 * 1024,
            initial_connection_window: 1024 * 1024,
            max_frame_size: frame::DEFAULT_MAX_FRAME,
            max_header_list_size: 32 * 1024,
            max_resets_per_second: 200,
            max_control_frames_per_second: 1000,
        }
    }
}

#[cfg(test)]
mod tests;
