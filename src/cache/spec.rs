//! What the configuration says about caching: the server's `[cache]`
//! store and a route's `cache = { … }` rule.

use std::time::Duration;

/// `[cache]`: the response store, for the whole server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// Bytes kept in memory, all workers together (each keeps its share).
    pub max_size: u64,
    /// A response with a larger body is not stored.
    pub max_object_size: u64,
}

impl Default for StoreSpec {
    fn default() -> StoreSpec {
        StoreSpec {
            max_size: 256 << 20,
            max_object_size: 1 << 20,
        }
    }
}

/// A condition under which a request neither uses nor fills the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bypass {
    /// `header:Name`: the request has that field.
    Header(String),
    /// `cookie:name`: the request's `Cookie` has that cookie.
    Cookie(String),
    /// `query:name`: the query has that parameter.
    Query(String),
}

/// A route's `cache = { … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRule {
    /// Lifetimes by status for responses that give none themselves
    /// (`Cache-Control: max-age`/`s-maxage`, `Expires`); `None`: any status.
    pub ttl: Vec<(Option<u16>, Duration)>,
    /// The query parameters that make up the key (`None`: the whole query,
    /// as sent).
    pub vary_by_query: Option<Vec<String>>,
    /// How long past its freshness a response is served while one request
    /// in the background revalidates it.
    pub stale_while_revalidate: Duration,
    /// How long past its freshness a response is served when the upstream
    /// fails (an error status, or no answer).
    pub stale_if_error: Duration,
    /// Concurrent misses for one key wait for the first one's response.
    pub lock: bool,
    /// How long they wait before asking themselves.
    pub lock_timeout: Duration,
    /// Requests that bypass the cache.
    pub bypass_if: Vec<Bypass>,
    /// Responses with `Set-Cookie` are stored (without that field).
    pub store_set_cookie: bool,
}

impl Default for CacheRule {
    fn default() -> CacheRule {
        CacheRule {
            ttl: Vec::new(),
            vary_by_query: None,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            lock: true,
            lock_timeout: Duration::from_secs(5),
            bypass_if: Vec::new(),
            store_set_cookie: false,
        }
    }
}

impl CacheRule {
    /// The configured lifetime for `status`: its own entry, else `any`.
    pub fn ttl_for(&self, status: u16) -> Option<Duration> {
        self.ttl
            .iter()
            .find(|(s, _)| *s == Some(status))
            .or_else(|| self.ttl.iter().find(|(s, _)| s.is_none()))
            .map(|(_, d)| *d)
    }
}
