//! Request rates: parsing `"20r/s"`, and the GCRA decision for one request.
//!
//! GCRA keeps one number per key, the theoretical arrival time `tat`: when
//! the key's next request would be on time at the rate. A request at `now`
//! waits `tat - now` (0 when `tat` is past); it is refused when that wait
//! is more than `burst` emission intervals, else `tat` moves one interval
//! on. This is nginx's leaky bucket in other units: nginx keeps the excess
//! in thousandths of a request, decays it by the rate and refuses past
//! `burst`; our wait is that excess times the interval, in nanoseconds. So
//! `burst = B` lets B + 1 requests through at once, as nginx does, and a
//! steady load above the rate is let through at the rate.

/// How requests within the burst are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// Delayed until they conform to the rate (nginx without `nodelay`).
    Default,
    /// Let through at once (`nodelay`).
    NoDelay,
    /// The first N past the rate at once, later ones delayed (`delay=N`).
    After(u32),
}

/// A rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Nanoseconds between requests at the rate.
    pub emission_ns: u64,
    /// Requests allowed past the rate.
    pub burst: u32,
    /// Treatment of those.
    pub delay: Delay,
}

/// What a rate limit says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Now.
    Allow,
    /// After this many nanoseconds.
    Delay(u64),
    /// Not at all; a retry after this long would pass.
    Reject {
        /// Nanoseconds until a retry passes.
        retry_after_ns: u64,
    },
}

/// The interval of a rate written `N r/s` or `N r/m` (nginx's syntax; N may
/// have a fraction: `0.5r/s`).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "{s:?} is not a rate: write requests per second or minute, like \"20r/s\" or \"600r/m\""
        )
    };
    let (n, per) = if let Some(n) = t.strip_suffix("r/s") {
        (n, 1e9)
    } else if let Some(n) = t.strip_suffix("r/m") {
        (n, 60e9)
    } else {
        return Err(bad());
    };
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("{s:?}: the rate must be more than zero"));
    }
    if n > 1e9 {
        return Err(format!("{s:?}: at most 1000000000 requests per second"));
    }
    let ns = (per / n).round();
    Ok((ns as u64).max(1))
}

impl Rate {
    /// The decision for a request at `now` given the stored `tat`, and the
    /// `tat` to store (`None`: unchanged, the request is refused).
    pub(super) fn judge(&self, tat: u64, now: u64) -> (Decision, Option<u64>) {
        let base = tat.max(now);
        let wait = base - now;
        let tau = self.emission_ns.saturating_mul(u64::from(self.burst));
        if wait > tau {
            return (
                Decision::Reject {
                    retry_after_ns: wait - tau,
                },
                None,
            );
        }
        let next = base.saturating_add(self.emission_ns);
        let d = match self.delay {
            Delay::NoDelay => Decision::Allow,
            Delay::After(n) => {
                let free = self.emission_ns.saturating_mul(u64::from(n));
                if wait <= free {
                    Decision::Allow
                } else {
                    Decision::Delay(wait - free)
                }
            }
            Delay::Default if wait == 0 => Decision::Allow,
            Delay::Default => Decision::Delay(wait),
        };
        (d, Some(next))
    }
}
