//! One file per ring operation: each builds its submission entry and decodes
//! its completion. An operation that points the kernel at memory owns that
//! memory (`Send` its buffer or buffers, `Read` its buffer and file) until its completion
//! hands it back, so nothing the kernel writes to can be freed or moved
//! early (monoio's `driver/op/*.rs`).

pub mod accept;
pub mod cancel;
pub mod connect;
pub mod poll;
pub mod read;
pub mod recv;
pub mod send;
pub mod splice;
pub mod timeout;
