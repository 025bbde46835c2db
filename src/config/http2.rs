//! The `[http2]` table: whether HTTP/2 is offered, and its connection
//! settings.

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::Ctx;
use crate::http2::Settings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp2 {
    enabled: Option<bool>,
    h2c: Option<bool>,
    max_concurrent_streams: Option<Spanned<i64>>,
    initial_stream_window: Option<Spanned<i64>>,
    initial_connection_window: Option<Spanned<i64>>,
    max_frame_size: Option<Spanned<i64>>,
    max_header_list_size: Option<Spanned<i64>>,
    max_resets_per_second: Option<Spanned<i64>>,
    max_control_frames_per_second: Option<Spanned<i64>>,
}

/// A number key: its value, name, bounds and destination.
type IntKey<'a> = (
    &'a Option<Spanned<i64>>,
    &'static str,
    i64,
    i64,
    &'a mut u32,
);

/// Applies `raw` to `s`. `header_limit` is the HTTP/1 header limit, the
/// default header list size.
pub(super) fn apply(
    cx: &Ctx<'_>,
    raw: Option<&RawHttp2>,
    header_limit: usize,
    s: &mut Settings,
) -> Result<(), ConfigError> {
    s.max_header_list_size = header_limit.min(u32::MAX as usize) as u32;
    let Some(r) = raw else { return Ok(()) };
    let k = |n: &str| format!("http2.{n}");
    if let Some(b) = r.enabled {
        s.enabled = b;
    }
    if let Some(b) = r.h2c {
        s.h2c = b;
    }
    let max_window = (1i64 << 31) - 1;
    let ints: [IntKey<'_>; 7] = [
        (
            &r.max_concurrent_streams,
            "max_concurrent_streams",
            1,
            65_536,
            &mut s.max_concurrent_streams,
        ),
        (
            &r.initial_stream_window,
            "initial_stream_window",
            1024,
            max_window,
            &mut s.initial_stream_window,
        ),
        (
            &r.initial_connection_window,
            "initial_connection_window",
            65_535,
            max_window,
            &mut s.initial_connection_window,
        ),
        (
            &r.max_frame_size,
            "max_frame_size",
            16_384,
            (1 << 24) - 1,
            &mut s.max_frame_size,
        ),
        (
            &r.max_header_list_size,
            "max_header_list_size",
            1024,
            16 << 20,
            &mut s.max_header_list_size,
        ),
        (
            &r.max_resets_per_second,
            "max_resets_per_second",
            1,
            1 << 20,
            &mut s.max_resets_per_second,
        ),
        (
            &r.max_control_frames_per_second,
            "max_control_frames_per_second",
            10,
            1 << 20,
            &mut s.max_control_frames_per_second,
        ),
    ];
    for (v, name, min, max, dst) in ints {
        if let Some(n) = cx.int(v, &k(name), min, max)? {
            *dst = n as u32;
        }
    }
    Ok(())
}
