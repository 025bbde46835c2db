//! Minimum data rates in `[limits]`: `min_request_body_data_rate` and
//! `min_response_data_rate`, as a number of bytes per second (Kestrel's 5 s
//! grace period) or `{ bytes_per_second = 240, grace = "5s" }`; 0 turns the
//! check off.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::{Ctx, Secs, secs_of};
use crate::http::MinRate;

/// A rate as written in the file.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawRate {
    /// Bytes per second, with the default grace period.
    Bytes(i64),
    /// Both parts.
    Table(RawRateTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateTable {
    bytes_per_second: Option<i64>,
    grace: Option<Secs>,
}

/// Most bytes per second a minimum may ask for (1 GiB/s).
const MAX_RATE: i64 = 1 << 30;

/// Checks a rate; errors name `key` and the line.
pub(super) fn rate(cx: &Ctx<'_>, v: &Spanned<RawRate>, key: &str) -> Result<MinRate, ConfigError> {
    let (bytes, grace) = match v.get_ref() {
        RawRate::Bytes(n) => (*n, None),
        RawRate::Table(t) => (
            t.bytes_per_second
                .ok_or_else(|| cx.err(v.span(), key, "needs bytes_per_second"))?,
            t.grace.as_ref(),
        ),
    };
    if !(0..=MAX_RATE).contains(&bytes) {
        return Err(cx.err(
            v.span(),
            key,
            format!("bytes_per_second must be between 0 (off) and {MAX_RATE} (got {bytes})"),
        ));
    }
    let grace = match grace {
        Some(g) => secs_of(g)
            .filter(|d| *d <= Duration::from_secs(86_400))
            .ok_or_else(|| {
                cx.err(
                    v.span(),
                    key,
                    "grace must be a duration up to a day, like \"5s\"",
                )
            })?,
        None => MinRate::KESTREL.grace,
    };
    Ok(MinRate {
        bytes_per_second: bytes as u64,
        grace,
    })
}
