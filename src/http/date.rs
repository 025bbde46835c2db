//! The `Date` header value, formatted at most once a second per worker.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// A per-worker cache of the current `Date` value.
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: u64,
    text: [u8; DATE_LEN],
}

impl DateCache {
    /// A cache holding the date of `now`.
    pub fn new(now: SystemTime) -> DateCache {
        let mut d = DateCache {
            secs: u64::MAX,
            text: [b' '; DATE_LEN],
        };
        d.update(now);
        d
    }

    /// Re-formats the date if `now` is in a different second. Cheap otherwise.
    pub fn update(&mut self, now: SystemTime) {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.secs {
            self.secs = secs;
            let s = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs));
            self.text.copy_from_slice(&s.as_bytes()[..DATE_LEN]);
        }
    }

    /// The formatted date.
    pub fn get(&self) -> &[u8; DATE_LEN] {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_and_refreshes() {
        let t = UNIX_EPOCH + Duration::from_secs(784111777);
        let mut d = DateCache::new(t);
        assert_eq!(d.get(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        d.update(t + Duration::from_millis(500));
        assert_eq!(d.get(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        d.update(t + Duration::from_secs(1));
        assert_eq!(d.get(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
