//! Host matching for one listener: exact names, then one-label wildcards,
//! then the listener's default site. Nothing is allocated per request: a
//! name is lowercased into a stack buffer before it is looked up.

use std::collections::HashMap;

/// The longest DNS name looked up (longer ones match no name).
const MAX_NAME: usize = 253;

/// Which site answers which host name on one listener.
#[derive(Clone, Debug, Default)]
pub struct HostMap {
    exact: HashMap<Box<str>, u16>,
    /// Keyed by the parent of `*.`: `shop.example.com` for `*.shop.example.com`.
    wildcard: HashMap<Box<str>, u16>,
    default: Option<u16>,
}

/// Why a name cannot be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Another site has the name already.
    Name(u16),
    /// Another site is the default already.
    Default(u16),
}

impl HostMap {
    /// An empty map: no names, no default.
    pub fn new() -> HostMap {
        HostMap::default()
    }

    /// Adds a name (lowercase; exact or `*.parent`) for `site`.
    pub fn add(&mut self, name: &str, site: u16) -> Result<(), Conflict> {
        let (map, key) = match name.strip_prefix("*.") {
            Some(parent) => (&mut self.wildcard, parent),
            None => (&mut self.exact, name),
        };
        match map.get(key) {
            Some(&other) if other != site => Err(Conflict::Name(other)),
            Some(_) => Ok(()),
            None => {
                map.insert(key.into(), site);
                Ok(())
            }
        }
    }

    /// Makes `site` the default.
    pub fn set_default(&mut self, site: u16) -> Result<(), Conflict> {
        match self.default {
            Some(other) if other != site => Err(Conflict::Default(other)),
            _ => {
                self.default = Some(site);
                Ok(())
            }
        }
    }

    /// The default site, if any.
    pub fn default_site(&self) -> Option<u16> {
        self.default
    }

    /// Whether no site has a name here (every request goes to the default).
    pub fn nameless(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// The site named `host` (a `Host` value or SNI name: any case, with or
    /// without a port or a trailing dot), without the default.
    pub fn named(&self, host: &str) -> Option<u16> {
        if self.nameless() {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        let name = lower(name_of(host), &mut buf)?;
        if let Some(&s) = self.exact.get(name) {
            return Some(s);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).copied()
    }

    /// The site for `host`: named, else the default.
    pub fn site_for(&self, host: Option<&str>) -> Option<u16> {
        host.and_then(|h| self.named(h)).or(self.default)
    }
}

/// The name part of a `Host` value: without a port or a trailing dot.
fn name_of(host: &str) -> &str {
    let name = match crate::http::host::parse(host.as_bytes()) {
        // The host part is a prefix of the value, so this is a char boundary.
        Some(a) => &host[..a.host.len()],
        None => host,
    };
    name.strip_suffix('.').unwrap_or(name)
}

/// `name` in lowercase, in `buf`; `None` when too long.
fn lower<'b>(name: &str, buf: &'b mut [u8; MAX_NAME]) -> Option<&'b str> {
    let out = buf.get_mut(..name.len())?;
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b.to_ascii_lowercase();
    }
    // ASCII lowercasing keeps UTF-8 valid.
    std::str::from_utf8(out).ok()
}

/// Whether certificate name `pattern` (exact or `*.parent`, any case)
/// covers host name `host` (exact or `*.parent`).
pub fn covers(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    if p == h {
        return true;
    }
    match (p.strip_prefix("*."), h.strip_prefix("*.")) {
        (Some(parent), None) => h.split_once('.').is_some_and(|(_, hp)| hp == parent),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> HostMap {
        let mut m = HostMap::new();
        m.add("shop.test", 0).unwrap();
        m.add("*.shop.test", 1).unwrap();
        m.add("a.shop.test", 2).unwrap();
        m.add("blog.test", 3).unwrap();
        m
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let mut m = map();
        assert_eq!(m.named("shop.test"), Some(0));
        assert_eq!(m.named("a.shop.test"), Some(2), "exact beats wildcard");
        assert_eq!(m.named("b.shop.test"), Some(1));
        assert_eq!(m.named("x.b.shop.test"), None, "one label only");
        assert_eq!(m.named("other.test"), None);
        assert_eq!(m.site_for(Some("other.test")), None);
        m.set_default(3).unwrap();
        assert_eq!(m.site_for(Some("other.test")), Some(3));
        assert_eq!(m.site_for(None), Some(3));
        assert_eq!(m.site_for(Some("shop.test")), Some(0));
    }

    #[test]
    fn case_ports_and_trailing_dots() {
        let m = map();
        assert_eq!(m.named("SHOP.Test"), Some(0));
        assert_eq!(m.named("shop.test:8080"), Some(0));
        assert_eq!(m.named("shop.test."), Some(0));
        assert_eq!(m.named("B.Shop.Test.:443"), Some(1));
        assert_eq!(m.named("[::1]:8080"), None);
        assert_eq!(m.named("127.0.0.1"), None);
        assert_eq!(m.named(&"a".repeat(300)), None);
    }

    #[test]
    fn conflicts() {
        let mut m = map();
        assert_eq!(m.add("shop.test", 5), Err(Conflict::Name(0)));
        assert_eq!(m.add("*.shop.test", 5), Err(Conflict::Name(1)));
        assert_eq!(m.add("shop.test", 0), Ok(()));
        m.set_default(1).unwrap();
        assert_eq!(m.set_default(2), Err(Conflict::Default(1)));
        assert!(HostMap::new().nameless());
    }

    #[test]
    fn certificate_names_cover_hosts() {
        assert!(covers("shop.test", "SHOP.test"));
        assert!(covers("*.shop.test", "a.shop.test"));
        assert!(!covers("*.shop.test", "shop.test"));
        assert!(!covers("*.shop.test", "a.b.shop.test"));
        assert!(covers("*.shop.test", "*.shop.test"));
        assert!(!covers("a.shop.test", "*.shop.test"));
    }
}
