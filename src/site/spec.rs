//! The configuration model of sites and routes: plain, validated, immutable
//! data (`Send + Sync`), as parsed from `[[site]]` and `[[site.route]]`.
//! Workers build their handlers from it (see [`super::Sites`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::template::Template;
use crate::http::Methods;

/// Where a site or route was written, for messages: `p.toml:12: site[0].route[1]: …`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The configuration file, when there is one.
    pub file: Option<PathBuf>,
    /// 1-based line of the table's first key, when known.
    pub line: Option<usize>,
    /// The table's dotted key, e.g. `site[0].route[1]`.
    pub key: String,
    /// Lines of the table's keys that later checks may point at (`hosts`,
    /// `default`, `tls`, …).
    pub lines: Vec<(&'static str, usize)>,
}

impl Origin {
    /// The line of `key` (its first segment) when recorded, else the table's.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let first = key.split('.').next().unwrap_or("");
        self.lines
            .iter()
            .find(|(k, _)| *k == first)
            .map(|(_, l)| *l)
            .or(self.line)
    }

    /// A configuration error about `key` below this table (`""`: the table).
    pub fn err(&self, key: &str, message: impl Into<String>) -> crate::config::ConfigError {
        let line = self.line_of(key);
        let key = match (self.key.as_str(), key) {
            ("", "") => None,
            (t, "") => Some(t.to_string()),
            ("", k) => Some(k.to_string()),
            (t, k) => Some(format!("{t}.{k}")),
        };
        crate::config::ConfigError {
            file: self.file.clone(),
            line,
            key,
            message: message.into(),
        }
    }
}

/// A certificate and key for a site's host names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteTls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// One site: the host names it answers, where, and its routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// Its name (for messages, logs and metrics).
    pub name: String,
    /// Host names, lowercase: exact (`shop.example.com`) or one-label
    /// wildcards (`*.shop.example.com`).
    pub hosts: Vec<String>,
    /// Plain listeners it is on; `None`: every plain listener.
    pub listen: Option<Vec<SocketAddr>>,
    /// TLS listeners it is on; `None`: every TLS listener.
    pub tls_listen: Option<Vec<SocketAddr>>,
    /// Its own certificate, chosen by SNI for its host names.
    pub tls: Option<SiteTls>,
    /// Files for paths no route claims.
    pub root: Option<PathBuf>,
    /// Index files tried for a directory, in order.
    pub index: Vec<String>,
    /// The site for a `Host` no site on the listener names.
    pub default: bool,
    /// Whether it is served over HTTP/2 (`false`: its HTTP/2 requests are
    /// reset with `HTTP_1_1_REQUIRED`, and browsers retry over HTTP/1.1).
    pub http2: bool,
    /// Header rules and error pages for all its responses.
    pub rules: Rules,
    /// IP restrictions, request filtering and limits for its requests.
    pub security: crate::guard::spec::Security,
    /// `[site.compression]`, when on.
    pub compression: Option<super::compression::CompressionSpec>,
    /// Its routes, in file order.
    pub routes: Vec<Route>,
    /// Where its access-log lines go.
    pub access_log: SiteLog,
    /// Where it was written.
    pub origin: Origin,
}

/// Where a site's access-log lines go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SiteLog {
    /// To the global `[access_log]` (nowhere when it is off).
    #[default]
    Global,
    /// Nowhere.
    Off,
    /// To its own file (or standard output), in its own format.
    Own(crate::accesslog::Config),
}

/// One route of a site: which requests, and the handler that answers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The path prefix (`/api` matches `/api` and `/api/x`, not `/apix`), or
    /// the whole path when `exact`.
    pub path: String,
    /// Only the path itself matches.
    pub exact: bool,
    /// Methods the route takes; `None`: whatever its handler takes.
    pub methods: Option<Methods>,
    /// What answers.
    pub handler: HandlerSpec,
    /// Header rules and error pages, applied before the site's.
    pub rules: Rules,
    /// Guards that replace the site's, key by key.
    pub security: crate::guard::spec::Security,
    /// Whether its answers get the site's compression (`compression =
    /// false` turns it off for the route).
    pub compression: bool,
    /// Its response cache (`cache = { … }`).
    pub cache: Option<crate::cache::CacheRule>,
    /// Where it was written.
    pub origin: Origin,
}

/// A route's handler and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerSpec {
    /// Files under a directory.
    Files(Files),
    /// A redirect to a URL built from the request.
    Redirect {
        /// The target, with placeholders.
        to: Template,
        /// 301, 302, 303, 307 or 308.
        status: u16,
    },
    /// A fixed response.
    Respond {
        /// Its status.
        status: u16,
        /// Its body.
        body: String,
        /// Its header fields (`Content-Type` among them).
        headers: Vec<(String, String)>,
    },
    /// The built-in handlers (`/plaintext`, `/json`, …) under the route's path.
    Builtins,
    /// A handler registered by name with [`crate::Server::handler`].
    Named {
        /// The registered name.
        name: String,
        /// The route's `options` table, handed to the factory.
        options: Options,
    },
    /// Requests sent on to a server of an `[[upstream]]` group.
    Proxy(crate::upstream::spec::ProxySpec),
    /// A FastCGI application: the `[[fastcgi]]` table's name.
    FastCgi {
        /// The `[[fastcgi]]` name.
        upstream: String,
    },
}

/// Settings of the `files` handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    /// The directory served.
    pub root: PathBuf,
    /// Index files tried for a directory, in order.
    pub index: Vec<String>,
    /// List directories without an index file (HTML, or JSON when asked).
    pub browse: bool,
    /// Glob patterns of names (or paths below the root) never served nor listed.
    pub hide: Vec<String>,
    /// Serve and list names starting with `.` (`.well-known` always is).
    pub dotfiles: bool,
}

/// A named handler's `options` table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options(pub toml::Table);

// Options come from TOML, where a NaN float is the only value unequal to
// itself; configurations are compared for equality, never hashed.
impl Eq for Options {}

/// Response header rules and error pages of a site or route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Header fields replaced (or added when missing).
    pub set: Vec<(String, String)>,
    /// Header fields added beside any already there.
    pub add: Vec<(String, String)>,
    /// Header fields removed.
    pub remove: Vec<String>,
    /// Error pages by status.
    pub errors: Vec<(StatusMatch, String)>,
}

impl Rules {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
            && self.errors.is_empty()
    }

    /// These rules, then `outer`'s (a route's, then its site's): header rules
    /// of both apply in that order; an error page of the inner wins.
    pub fn then(&self, outer: &Rules) -> Rules {
        let mut r = self.clone();
        r.set.extend(
            outer
                .set
                .iter()
                .filter(|(n, _)| !self.set.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)))
                .cloned(),
        );
        r.add.extend(outer.add.iter().cloned());
        r.remove.extend(outer.remove.iter().cloned());
        r.errors.extend(outer.errors.iter().cloned());
        r
    }
}

/// Which statuses an error page is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    /// One status, e.g. `404`.
    Code(u16),
    /// A class, e.g. `5xx` (stored as 5).
    Class(u16),
}

impl StatusMatch {
    /// Whether `status` is one of these.
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Code(c) => c == status,
            StatusMatch::Class(c) => status / 100 == c,
        }
    }
}
