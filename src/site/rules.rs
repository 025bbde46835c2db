//! Header rules and error pages, applied to what a route's handler (or the
//! route table itself) answers: a ready response, the head of a streamed
//! one, or whatever a pending task answers later.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use super::spec::{Rules, StatusMatch};
use crate::exchange::{Io, Reply, RequestBody, Task};
use crate::handler::file_cache::{FileCache, Kind};
use crate::handler::path::resolve;
use crate::handler::static_files::{FILE_CACHE_MAX, FILE_CACHE_VALID};
use crate::http::response::Text;
use crate::http::{Body, FileBody, Response};

/// A site's open error-page files, shared by its routes (one per worker).
pub type PageCache = Rc<RefCell<FileCache>>;

/// Rules ready to apply (one worker's).
#[derive(Debug)]
pub struct Applied {
    set: Vec<(Text, Text)>,
    add: Vec<(Text, Text)>,
    remove: Vec<String>,
    /// Error pages: the status they are for and the path below the root.
    pages: Vec<(StatusMatch, Vec<u8>)>,
    cache: Option<PageCache>,
}

impl Applied {
    /// The rules of `rules`, or `None` when there are none. Error pages are
    /// looked up in `pages` (a cache over the site's root).
    pub fn new(rules: &Rules, pages: Option<&PageCache>) -> Result<Option<Rc<Applied>>, String> {
        if rules.is_empty() {
            return Ok(None);
        }
        let mut list = Vec::new();
        for (m, page) in &rules.errors {
            let rel = resolve(page).map_err(|e| format!("error page {page:?}: {e}"))?;
            list.push((*m, rel));
        }
        // A status's own page wins over its class's.
        list.sort_by_key(|(m, _)| matches!(m, StatusMatch::Class(_)));
        let text = |v: &[(String, String)]| {
            v.iter()
                .map(|(n, v)| (Text::Owned(n.clone()), Text::Owned(v.clone())))
                .collect()
        };
        Ok(Some(Rc::new(Applied {
            set: text(&rules.set),
            add: text(&rules.add),
            remove: rules.remove.clone(),
            cache: (!list.is_empty()).then(|| pages.cloned()).flatten(),
            pages: list,
        })))
    }

    /// A cache for the error pages of a site whose root is `root`.
    pub fn page_cache(root: &Path) -> Result<PageCache, String> {
        FileCache::new(root, FILE_CACHE_VALID, FILE_CACHE_MAX / 16)
            .map(|c| Rc::new(RefCell::new(c)))
            .map_err(|e| format!("{}: {e}", root.display()))
    }

    /// `r` with its error page (if it has one) and the header rules.
    pub fn response(&self, r: Response) -> Response {
        let r = if r.status() >= 400 { self.page(r) } else { r };
        self.headers(r)
    }

    fn headers(&self, mut r: Response) -> Response {
        for n in &self.remove {
            r = r.remove_header(n);
        }
        for (n, v) in &self.set {
            r = r.set_header(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            r = r.header(n.clone(), v.clone());
        }
        r
    }

    /// `r` with the body of its error page, when one is configured and the
    /// file is there (else as it was).
    fn page(&self, mut r: Response) -> Response {
        let (Some(cache), status) = (&self.cache, r.status()) else {
            return r;
        };
        let Some((_, rel)) = self.pages.iter().find(|(m, _)| m.matches(status)) else {
            return r;
        };
        let Ok(e) = cache.borrow_mut().get(rel, Instant::now()) else {
            return r;
        };
        if e.kind != Kind::File {
            return r;
        }
        r.content_type = Some(Text::Borrowed(e.content_type));
        r.body = if e.size == 0 {
            Body::Empty
        } else {
            Body::File(FileBody {
                file: e.file.clone(),
                offset: 0,
                len: e.size,
            })
        };
        r
    }

    /// `reply` with the rules applied: now, to its head, or when it comes.
    pub fn reply(self: &Rc<Self>, reply: Reply) -> Reply {
        match reply {
            Reply::Ready(r) => Reply::Ready(self.response(r)),
            Reply::Stream(head, body) => Reply::Stream(self.headers(head), body),
            Reply::Pending(task) => Reply::Pending(Box::new(Later {
                task,
                rules: self.clone(),
            })),
        }
    }
}

/// A pending answer whose reply gets the rules when it comes.
struct Later {
    task: Box<dyn Task>,
    rules: Rc<Applied>,
}

impl Task for Later {
    fn poll(&mut self, io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        self.task.poll(io, body).map(|r| self.rules.reply(r))
    }

    fn cancel(&mut self) {
        self.task.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_pages() {
        let root = std::env::temp_dir().join(format!("peregrine-rules-{}", std::process::id()));
        std::fs::create_dir_all(root.join("errors")).unwrap();
        std::fs::write(root.join("errors/404.html"), "<h1>gone</h1>").unwrap();
        std::fs::write(root.join("errors/5xx.html"), "<h1>down</h1>").unwrap();
        let rules = Rules {
            set: vec![("X-Frame-Options".into(), "DENY".into())],
            add: vec![("X-Add".into(), "1".into())],
            remove: vec!["X-Powered-By".into()],
            errors: vec![
                (StatusMatch::Class(5), "/errors/5xx.html".into()),
                (StatusMatch::Code(404), "/errors/404.html".into()),
                (StatusMatch::Code(410), "/errors/missing.html".into()),
            ],
        };
        let cache = Applied::page_cache(&root).unwrap();
        let a = Applied::new(&rules, Some(&cache)).unwrap().unwrap();
        let r = a.response(
            Response::new(200)
                .header("X-Powered-By", "x")
                .header("X-Frame-Options", "SAMEORIGIN"),
        );
        assert_eq!(r.header_value("x-powered-by"), None);
        assert_eq!(r.header_value("x-frame-options"), Some("DENY"));
        assert_eq!(r.header_value("x-add"), Some("1"));
        let r = a.response(Response::error(404, None));
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.header_value("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(r.body_ref().len(), 13);
        assert_eq!(a.response(Response::error(503, None)).body_ref().len(), 13);
        // A page that is not there leaves the response as it was.
        let r = a.response(Response::error(410, None));
        assert_eq!(
            r.header_value("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(Applied::new(&Rules::default(), None).unwrap().is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
