//! Static files under a root directory.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::conditional::{Outcome, Preconditions, Range, Validators, range};
use super::file_cache::{Entry, FileCache, Kind};
use super::path::resolve;
use super::{Ctx, Handler};
use crate::exchange::{Reply, RequestHead};
use crate::http::{Body, FileBody, Response};

/// How long a cached open file is trusted before it is checked again.
pub const FILE_CACHE_VALID: Duration = Duration::from_secs(1);
/// Most open files cached per worker.
pub const FILE_CACHE_MAX: usize = 4096;

/// Serves files under a root: GET and HEAD, `index.html` for directories,
/// validators with 304 and 412, single byte ranges. Never leaves the root (`..`,
/// encoded separators, NUL and symlinks pointing outside are refused).
#[derive(Debug)]
pub struct StaticFiles {
    cache: FileCache,
    index: &'static str,
}

impl StaticFiles {
    /// A handler serving `root`, which must be a directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        Ok(StaticFiles {
            cache: FileCache::new(root.as_ref(), FILE_CACHE_VALID, FILE_CACHE_MAX)?,
            index: "index.html",
        })
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
    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_>) -> Reply {
        Reply::Ready(self.respond(req, cx.rest))
    }
}

impl StaticFiles {
    /// Answers a request for `rest`, the path below the route's prefix.
    fn respond(&mut self, req: &RequestHead, rest: &str) -> Response {
        let rel = match resolve(rest) {
            Ok(r) => r,
            Err(e) => return Response::error(400, Some(&e.to_string())),
        };
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
            let mut index = rel.clone();
            if !index.is_empty() {
                index.push(b'/');
            }
            index.extend_from_slice(self.index.as_bytes());
            entry = match self.lookup(&index) {
                Ok(e) if e.kind == Kind::File => e,
                Ok(_) => return Response::error(403, None),
                Err(r) if r.status() == 404 => {
                    return Response::error(403, Some("directory listing is disabled"));
                }
                Err(r) => return r,
            };
        }
        if entry.kind != Kind::File {
            return Response::error(404, None);
        }
        serve(req, &entry)
    }
}

fn serve(req: &RequestHead, e: &Entry) -> Response {
    let current = Validators {
        etag: Some(&e.etag),
        last_modified: Some(e.mtime),
    };
    let with_validators = |r: Response| {
        r.header("ETag", e.etag.clone())
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
        part = range(h, e.size);
    }
    let resp = |status: u16| {
        Response::new(status)
            .content_type(e.content_type)
            .header("Last-Modified", e.last_modified.clone())
            .header("ETag", e.etag.clone())
            .header("Accept-Ranges", "bytes")
    };
    let file = |offset: u64, len: u64| {
        if len == 0 {
            Body::Empty
        } else {
            Body::File(FileBody {
                file: e.file.clone(),
                offset,
                len,
            })
        }
    };
    match part {
        Range::Full => resp(200).body(file(0, e.size)),
        Range::Part { start, len } => resp(206)
            .header(
                "Content-Range",
                format!("bytes {}-{}/{}", start, start + len - 1, e.size),
            )
            .body(file(start, len)),
        Range::Unsatisfiable => {
            Response::error(416, None).header("Content-Range", format!("bytes */{}", e.size))
        }
    }
}
