//! Static files under a root directory.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::conditional::{Outcome, Preconditions, Range, Validators, range};
use super::file_cache::{Entry, FileCache, Kind};
use super::file_compress::{FileCompressor, MAX_FILE};
use super::path::resolve;
use super::{Ctx, Handler};
use crate::compress::{Coding, MimeTypes};
use crate::exchange::{Reply, RequestHead};
use crate::http::{Body, FileBody, Response};
use crate::site::compression::{Compression, CompressionSpec, vary};

/// How long a cached open file is trusted before it is checked again.
pub const FILE_CACHE_VALID: Duration = Duration::from_secs(1);
/// Most open files cached per worker.
pub const FILE_CACHE_MAX: usize = 4096;

/// Serves files under a root: GET and HEAD, index files for directories (or
/// a listing, when browsing is on), validators with 304 and 412, single byte
/// ranges. Never leaves the root (`..`, encoded separators, NUL and symlinks
/// pointing outside are refused); hidden names are answered 404 and never
/// listed.
#[derive(Debug)]
pub struct StaticFiles {
    cache: FileCache,
    index: Vec<Box<[u8]>>,
    browse: bool,
    hide: Vec<String>,
    dotfiles: bool,
    /// Sidecar codings looked for beside a file, in preference.
    precompressed: Vec<Coding>,
    /// Compressed copies of files without sidecars.
    dynamic: Option<Dynamic>,
    /// Files found without a sidecar, and when.
    no_sidecar: std::collections::HashMap<Box<[u8]>, Instant>,
}

/// Compression of files without sidecars: what is compressed, and the
/// worker's copies.
#[derive(Debug)]
struct Dynamic {
    encodings: Vec<Coding>,
    types: MimeTypes,
    /// The last content type looked up in `types`, and the answer (most
    /// requests ask about the type the one before did).
    last_type: Option<(&'static str, bool)>,
    min_length: u64,
    copies: FileCompressor,
}

impl StaticFiles {
    /// A handler serving `root`, which must be a directory: `index.html` for
    /// directories, no listings, nothing hidden.
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        Ok(StaticFiles {
            cache: FileCache::new(root.as_ref(), FILE_CACHE_VALID, FILE_CACHE_MAX)?,
            index: vec![Box::from(&b"index.html"[..])],
            browse: false,
            hide: Vec::new(),
            dotfiles: true,
            precompressed: Vec::new(),
            dynamic: None,
            no_sidecar: Default::default(),
        })
    }

    /// Compression as a site's `[site.compression]` says: its sidecars
    /// (`app.js.br` for `app.js`, chosen among those present by the
    /// client's weights, then the list's order; a sidecar older than its
    /// file is ignored) and, for files without one, compressed copies made
    /// in the background and sent once ready.
    pub fn compression(mut self, spec: Option<&CompressionSpec>) -> StaticFiles {
        let Some(spec) = spec else { return self };
        self.precompressed = spec.precompressed.clone();
        self.dynamic = (!spec.encodings.is_empty()).then(|| Dynamic {
            encodings: spec.encodings.clone(),
            types: MimeTypes::new(&spec.mime_types),
            last_type: None,
            min_length: spec.min_length,
            copies: FileCompressor::default(),
        });
        self
    }

    /// Index files tried for a directory, in order.
    pub fn index(mut self, names: &[String]) -> StaticFiles {
        self.index = names.iter().map(|n| Box::from(n.as_bytes())).collect();
        self
    }

    /// Lists directories that have no index file.
    pub fn browse(mut self, on: bool) -> StaticFiles {
        self.browse = on;
        self
    }

    /// Glob patterns of names (or paths below the root, when they have a
    /// `/`) never served nor listed; see [`super::glob`].
    pub fn hide(mut self, patterns: Vec<String>) -> StaticFiles {
        self.hide = patterns;
        self
    }

    /// Whether names starting with `.` are served and listed
    /// (`.well-known` always is).
    pub fn dotfiles(mut self, on: bool) -> StaticFiles {
        self.dotfiles = on;
        self
    }

    /// Whether `rel` (normalized, below the root) may be served or listed.
    fn visible(&self, rel: &[u8]) -> bool {
        let dotted = |seg: &[u8]| seg.first() == Some(&b'.') && seg != b".well-known";
        (self.dotfiles || !rel.split(|b| *b == b'/').any(dotted))
            && (self.hide.is_empty() || !super::glob::hidden(&self.hide, rel))
    }

    /// Checks that `root` can be served, with an error message for the user.
    pub fn check_root(root: &Path) -> Result<PathBuf, String> {
        let meta = std::fs::metadata(root)
            .map_err(|e| format!("document root {}: {e}", root.display()))?;
        if !meta.is_dir() {
            return Err(format!(
                "document root {} is not a directory",
                root.display()
            ));
        }
        std::fs::canonicalize(root).map_err(|e| format!("document root {}: {e}", root.display()))
    }

    fn lookup(&mut self, rel: &[u8]) -> Result<Rc<Entry>, Response> {
        self.cache
            .get(rel, Instant::now())
            .map_err(|e| io_error(&e))
    }
}

/// A file found: its path below the root and its entry.
type Found = (Vec<u8>, Rc<Entry>);
/// A compressed copy of a file, and its coding.
type Coded = (Coding, Rc<[u8]>);

fn io_error(e: &io::Error) -> Response {
    match e.raw_os_error() {
        Some(libc::ENOENT)
        | Some(libc::ENOTDIR)
        | Some(libc::EXDEV)
        | Some(libc::ELOOP)
        | Some(libc::ENAMETOOLONG) => Response::error(404, None),
        Some(libc::EACCES) | Some(libc::EPERM) => Response::error(403, None),
        _ => Response::error(500, None),
    }
}

impl Handler for StaticFiles {
    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        Reply::Ready(self.respond(req, cx.rest))
    }
}

impl StaticFiles {
    /// Answers a request for `rest`, the path below the route's prefix.
    fn respond(&mut self, req: &RequestHead, rest: &str) -> Response {
        let mut rel = match resolve(rest) {
            Ok(r) => r,
            Err(e) => return Response::error(400, Some(&e.to_string())),
        };
        if !self.visible(&rel) {
            return Response::error(404, None);
        }
        let mut entry = match self.lookup(&rel) {
            Ok(e) => e,
            Err(r) => return r,
        };
        if entry.kind == Kind::Dir {
            if !req.path().ends_with('/') {
                let mut location = format!("{}/", req.path());
                if let Some(q) = req.query() {
                    location.push('?');
                    location.push_str(q);
                }
                return Response::error(301, None).header("Location", location);
            }
            match self.index_of(&rel) {
                Ok(Some((path, e))) => {
                    entry = e;
                    rel = path;
                }
                Ok(None) if self.browse => return self.listing(req, &rel, &entry),
                Ok(None) => return Response::error(403, Some("directory listing is disabled")),
                Err(r) => return r,
            }
        }
        if entry.kind != Kind::File {
            return Response::error(404, None);
        }
        let plain = Repr::file(&entry);
        if self.precompressed.is_empty() && self.dynamic.is_none() {
            return serve(req, &plain);
        }
        let (side, mut varies) = self.sidecar(req, &rel, &entry);
        let r = match side {
            Some((coding, s)) => serve(req, &Repr::coded(&s, coding, entry.content_type, None)),
            None => {
                let (copy, candidate) = self.copy(req, &rel, &entry);
                varies |= candidate;
                match copy {
                    Some((c, bytes)) => serve(
                        req,
                        &Repr::coded(&entry, c, entry.content_type, Some(bytes)),
                    ),
                    None => serve(req, &plain),
                }
            }
        };
        if varies { vary(r) } else { r }
    }

    /// The compressed copy of file `rel` (`entry`) for `req`, when one is
    /// ready; and whether the file is one that gets copies (then the answer
    /// varies by `Accept-Encoding`).
    fn copy(&mut self, req: &RequestHead, rel: &[u8], entry: &Entry) -> (Option<Coded>, bool) {
        let Some(d) = &mut self.dynamic else {
            return (None, false);
        };
        if entry.size < d.min_length.max(1) || entry.size > MAX_FILE {
            return (None, false);
        }
        let ct = entry.content_type;
        let listed = match d.last_type {
            Some((t, yes)) if std::ptr::eq(t, ct) => yes,
            _ => {
                let yes = d.types.matches(ct);
                d.last_type = Some((ct, yes));
                yes
            }
        };
        if !listed {
            return (None, false);
        }
        // HEAD describes the identity body truly, as for other answers.
        if req.method != crate::http::Method::Get {
            return (None, true);
        }
        let copy = Compression::choose(req, &d.encodings)
            .and_then(|c| d.copies.get(rel, entry, c).map(|b| (c, b)));
        (copy, true)
    }

    /// The sidecar of file `rel` (`entry`) that `req` accepts, and whether
    /// any sidecar is there (then the answer varies by `Accept-Encoding`).
    fn sidecar(
        &mut self,
        req: &RequestHead,
        rel: &[u8],
        entry: &Entry,
    ) -> (Option<(Coding, Rc<Entry>)>, bool) {
        // Files known to have no sidecar: not looked for again for a while
        // (a missing file is an open per request otherwise).
        let now = Instant::now();
        if let Some(t) = self.no_sidecar.get(rel)
            && now.saturating_duration_since(*t) < FILE_CACHE_VALID
        {
            return (None, false);
        }
        let mut there: Vec<(Coding, Rc<Entry>)> = Vec::new();
        for i in 0..self.precompressed.len() {
            let c = self.precompressed[i];
            let mut path = rel.to_vec();
            path.extend_from_slice(c.suffix().as_bytes());
            if let Ok(e) = self.lookup(&path)
                && e.kind == Kind::File
                && e.mtime >= entry.mtime
            {
                there.push((c, e));
            }
        }
        if there.is_empty() {
            if self.no_sidecar.len() >= FILE_CACHE_MAX {
                self.no_sidecar.clear();
            }
            self.no_sidecar.insert(rel.into(), now);
        } else {
            self.no_sidecar.remove(rel);
        }
        if there.is_empty() {
            return (None, false);
        }
        let offered: Vec<Coding> = there.iter().map(|(c, _)| *c).collect();
        let chosen =
            if req.method == crate::http::Method::Head || req.method == crate::http::Method::Get {
                crate::site::compression::Compression::choose(req, &offered)
            } else {
                None
            };
        let found = chosen.and_then(|c| there.into_iter().find(|(x, _)| *x == c));
        (found, true)
    }
}

impl StaticFiles {
    /// The first index file of directory `rel` that exists and may be
    /// served, and its path.
    fn index_of(&mut self, rel: &[u8]) -> Result<Option<Found>, Response> {
        for i in 0..self.index.len() {
            let mut path = rel.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&self.index[i]);
            if !self.visible(&path) {
                continue;
            }
            match self.lookup(&path) {
                Ok(e) if e.kind == Kind::File => return Ok(Some((path, e))),
                Ok(_) => {}
                Err(r) if r.status() == 404 => {}
                Err(r) => return Err(r),
            }
        }
        Ok(None)
    }

    /// The listing of directory `rel`, open as `dir`.
    fn listing(&self, req: &RequestHead, rel: &[u8], dir: &Entry) -> Response {
        let items = super::listing::read(&dir.file, |name| {
            let mut path = rel.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            self.visible(&path)
        });
        let json = req
            .header_str("accept")
            .is_some_and(|a| a.contains("application/json"));
        match items {
            Ok(items) => super::listing::response(req.path(), &items, json),
            Err(e) => io_error(&e),
        }
    }
}

/// What is sent for a file: the file itself, a sidecar, or a compressed
/// copy in memory.
struct Repr<'a> {
    /// The file sent (or whose copy is), for its time and body.
    e: &'a Entry,
    etag: std::borrow::Cow<'a, str>,
    content_type: &'static str,
    coding: Option<Coding>,
    copy: Option<Rc<[u8]>>,
}

impl<'a> Repr<'a> {
    fn file(e: &'a Entry) -> Repr<'a> {
        Repr {
            e,
            etag: std::borrow::Cow::Borrowed(&e.etag),
            content_type: e.content_type,
            coding: None,
            copy: None,
        }
    }

    /// `e` (a sidecar, or the file of `copy`) in coding `c`: its validator
    /// names the coding, as another representation's must.
    fn coded(
        e: &'a Entry,
        c: Coding,
        content_type: &'static str,
        copy: Option<Rc<[u8]>>,
    ) -> Repr<'a> {
        Repr {
            e,
            etag: format!("{}.{}\"", e.etag.trim_end_matches('"'), c.name()).into(),
            content_type,
            coding: Some(c),
            copy,
        }
    }

    fn size(&self) -> u64 {
        self.copy.as_ref().map_or(self.e.size, |b| b.len() as u64)
    }

    fn body(&self, offset: u64, len: u64) -> Body {
        if len == 0 {
            return Body::Empty;
        }
        match &self.copy {
            Some(b) if offset == 0 && len == b.len() as u64 => Body::Shared(b.clone()),
            Some(b) => Body::Bytes(b[offset as usize..(offset + len) as usize].to_vec()),
            None => Body::File(FileBody {
                file: self.e.file.clone(),
                offset,
                len,
            }),
        }
    }
}

/// The answer for `r`: validators with 304 and 412, single ranges.
fn serve(req: &RequestHead, r: &Repr<'_>) -> Response {
    let e = r.e;
    let size = r.size();
    let current = Validators {
        etag: Some(&r.etag),
        last_modified: Some(e.mtime),
    };
    let with_validators = |resp: Response| {
        resp.header("ETag", r.etag.to_string())
            .header("Last-Modified", e.last_modified.clone())
    };
    let range_applies =
        match Preconditions::from_fields(req.headers()).evaluate(req.method, Some(&current)) {
            Outcome::NotModified => return with_validators(Response::new(304)),
            Outcome::PreconditionFailed => return with_validators(Response::error(412, None)),
            Outcome::Proceed { range } => range,
        };
    let mut part = Range::Full;
    if range_applies && let Some(h) = req.header("range") {
        part = range(h, size);
    }
    let resp = |status: u16| {
        let resp = Response::new(status)
            .content_type(r.content_type)
            .header("Last-Modified", e.last_modified.clone())
            .header("ETag", r.etag.to_string())
            .header("Accept-Ranges", "bytes");
        match r.coding {
            Some(c) => resp.header("Content-Encoding", c.name()),
            None => resp,
        }
    };
    match part {
        Range::Full => resp(200).body(r.body(0, size)),
        Range::Part { start, len } => resp(206)
            .header(
                "Content-Range",
                format!("bytes {}-{}/{}", start, start + len - 1, size),
            )
            .body(r.body(start, len)),
        Range::Unsatisfiable => {
            Response::error(416, None).header("Content-Range", format!("bytes */{size}"))
        }
    }
}
