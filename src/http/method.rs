//! Request methods and method sets (for `Allow`).

use std::fmt;

/// An HTTP request method this server knows. Anything else is answered 501.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `PATCH`
    Patch,
}

/// Every method, in the order `Allow` lists them.
pub const ALL: [Method; 9] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Delete,
    Method::Connect,
    Method::Options,
    Method::Trace,
    Method::Patch,
];

impl Method {
    /// Parses a method token (case-sensitive, as RFC 9110 says).
    pub fn parse(token: &str) -> Option<Method> {
        Some(match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            _ => return None,
        })
    }

    /// The method's token.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of methods, used for routing decisions and the `Allow` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Methods(u16);

impl Methods {
    /// The empty set.
    pub const NONE: Methods = Methods(0);
    /// `GET` and `HEAD`: what read-only resources support.
    pub const GET_HEAD: Methods = Methods(1 << Method::Get as u16 | 1 << Method::Head as u16);
    /// Every method but `CONNECT` (and `OPTIONS`, which routing answers):
    /// what a handler that answers any request takes.
    pub const ANY: Methods = Methods(
        1 << Method::Get as u16
            | 1 << Method::Head as u16
            | 1 << Method::Post as u16
            | 1 << Method::Put as u16
            | 1 << Method::Delete as u16
            | 1 << Method::Trace as u16
            | 1 << Method::Patch as u16,
    );

    /// A set holding exactly `methods`.
    pub fn of(methods: &[Method]) -> Methods {
        methods.iter().fold(Methods::NONE, |s, m| s.with(*m))
    }

    /// This set plus `m`.
    pub fn with(self, m: Method) -> Methods {
        Methods(self.0 | m.bit())
    }

    /// Whether `m` is in the set.
    pub fn contains(self, m: Method) -> bool {
        self.0 & m.bit() != 0
    }

    /// The union of two sets.
    pub fn union(self, other: Methods) -> Methods {
        Methods(self.0 | other.0)
    }

    /// The methods in both sets.
    pub fn intersect(self, other: Methods) -> Methods {
        Methods(self.0 & other.0)
    }

    /// The set as an `Allow` header value, e.g. `GET, HEAD, OPTIONS`.
    pub fn allow_header(self) -> String {
        let mut s = String::new();
        for m in ALL.iter().filter(|m| self.contains(**m)) {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(m.as_str());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips() {
        for m in ALL {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
        assert_eq!(Method::parse("get"), None);
        assert_eq!(Method::parse("BREW"), None);
    }

    #[test]
    fn allow_header_lists_in_order() {
        let s = Methods::of(&[Method::Post, Method::Get]).with(Method::Options);
        assert_eq!(s.allow_header(), "GET, POST, OPTIONS");
        assert!(s.contains(Method::Post));
        assert!(!s.contains(Method::Head));
    }
}
