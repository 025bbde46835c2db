//! Redirect targets with placeholders, parsed once from the configuration:
//! `https://{host}/new{rest}`.

/// A part of the request a placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// `{host}`: the host name the request is for, without the port.
    Host,
    /// `{path}`: the whole path, as sent (percent-encoded).
    Path,
    /// `{rest}`: the path below the route's prefix.
    Rest,
    /// `{query}`: the query with its `?`, or nothing.
    Query,
    /// `{uri}`: path and query, as sent.
    Uri,
    /// `{scheme}`: `http` or `https`.
    Scheme,
}

/// The placeholders, as written.
pub const PLACEHOLDERS: &[(&str, Part)] = &[
    ("host", Part::Host),
    ("path", Part::Path),
    ("rest", Part::Rest),
    ("query", Part::Query),
    ("uri", Part::Uri),
    ("scheme", Part::Scheme),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Part),
}

/// A parsed target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// The values a template is filled with.
#[derive(Clone, Copy, Debug)]
pub struct Values<'a> {
    /// For `{host}`.
    pub host: &'a str,
    /// For `{path}`.
    pub path: &'a str,
    /// For `{rest}`.
    pub rest: &'a str,
    /// For `{query}` (without the `?`).
    pub query: Option<&'a str>,
    /// For `{scheme}`.
    pub scheme: &'a str,
}

impl Template {
    /// Parses `s`. Errors name an unknown placeholder or an unclosed `{`.
    pub fn parse(s: &str) -> Result<Template, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.bytes().any(|b| b.is_ascii_control()) {
            return Err("must not contain control characters".into());
        }
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| {
                format!(
                    "{s:?}: '{{' at byte {} is not closed",
                    s.len() - rest.len() + open
                )
            })?;
            let name = &after[..close];
            let part = PLACEHOLDERS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| *p)
                .ok_or_else(|| {
                    let known: Vec<String> = PLACEHOLDERS
                        .iter()
                        .map(|(n, _)| format!("{{{n}}}"))
                        .collect();
                    format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        known.join(" ")
                    )
                })?;
            pieces.push(Piece::Var(part));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// The target as written.
    pub fn source(&self) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(part) => {
                    let name = PLACEHOLDERS
                        .iter()
                        .find(|(_, q)| q == part)
                        .map_or("", |(n, _)| n);
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            }
        }
        out
    }

    /// Whether the target has placeholder `part`.
    pub fn uses(&self, part: Part) -> bool {
        self.pieces.contains(&Piece::Var(part))
    }

    /// The target for one request.
    pub fn render(&self, v: &Values<'_>) -> String {
        let mut out = String::with_capacity(64);
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(Part::Host) => out.push_str(v.host),
                Piece::Var(Part::Path) => out.push_str(v.path),
                Piece::Var(Part::Rest) => out.push_str(v.rest),
                Piece::Var(Part::Scheme) => out.push_str(v.scheme),
                Piece::Var(Part::Query) => {
                    if let Some(q) = v.query {
                        out.push('?');
                        out.push_str(q);
                    }
                }
                Piece::Var(Part::Uri) => {
                    out.push_str(v.path);
                    if let Some(q) = v.query {
                        out.push('?');
                        out.push_str(q);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Values<'static> = Values {
        host: "shop.test",
        path: "/old/a%20b",
        rest: "/a%20b",
        query: Some("x=1"),
        scheme: "http",
    };

    #[test]
    fn renders_every_placeholder() {
        let t = Template::parse("https://{host}/new{rest}{query}").unwrap();
        assert_eq!(t.render(&V), "https://shop.test/new/a%20b?x=1");
        let t = Template::parse("{scheme}://x{uri}|{path}").unwrap();
        assert_eq!(t.render(&V), "http://x/old/a%20b?x=1|/old/a%20b");
        let none = Values { query: None, ..V };
        assert_eq!(Template::parse("/n{query}").unwrap().render(&none), "/n");
        assert_eq!(Template::parse("/plain").unwrap().render(&V), "/plain");
    }

    #[test]
    fn source_is_what_was_written() {
        for s in [
            "https://{host}/new{rest}{query}",
            "/plain",
            "{scheme}://x{uri}",
        ] {
            assert_eq!(Template::parse(s).unwrap().source(), s);
        }
    }

    #[test]
    fn refuses_unknown_and_unclosed() {
        let e = Template::parse("https://{hots}/").unwrap_err();
        assert!(
            e.starts_with("unknown placeholder {hots} (known: {host}"),
            "{e}"
        );
        assert!(
            Template::parse("/a{rest")
                .unwrap_err()
                .contains("is not closed")
        );
        assert!(Template::parse("").is_err());
        assert!(Template::parse("/a\r\nX: y").is_err());
    }
}
