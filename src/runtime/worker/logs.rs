//! The worker's access-log files: one per output of the generation's log
//! plan (the global log, and each file a site writes on its own), each with
//! at most one write in flight, reopened together on request, and written
//! out before a graceful stop ends.

use super::Worker;
use crate::http::Service;
use crate::runtime::log;
use crate::runtime::logfile::LogFile;
use crate::runtime::token::{Op, Token};
use crate::site::Generation;

fn shown(p: Option<&std::path::Path>) -> String {
    p.map_or_else(|| "standard output".into(), |p| p.display().to_string())
}

impl<S: Service> Worker<S> {
    /// Takes the sites of `g` for measurement and logging: their names label
    /// the counters, and each output of its log plan gets a file (one this
    /// worker has open on the same path, else a new one). Files no output
    /// names any more stay open, unused, until the worker ends. On an error
    /// (a file that cannot be opened) nothing changes.
    pub fn bind_sites(&mut self, g: &Generation) -> std::io::Result<()> {
        self.hub.install(&g.upstreams, g.workers, self.now);
        let share = g.cache.max_size / g.workers.max(1) as u64;
        crate::cache::local()
            .borrow_mut()
            .configure(share, g.cache.max_object_size);
        self.guards = Some(g.guards.clone());
        let mut opened = Vec::new();
        let mut outputs = Vec::with_capacity(g.logs.outputs.len());
        for c in &g.logs.outputs {
            let have = self
                .logfiles
                .iter()
                .position(|f| f.path() == c.path.as_deref());
            let i = match have {
                Some(i) => i,
                None => {
                    let f = LogFile::open(c.path.as_deref()).map_err(|e| {
                        let to = shown(c.path.as_deref());
                        std::io::Error::new(e.kind(), format!("cannot open access log {to}: {e}"))
                    })?;
                    opened.push((f, c.format));
                    self.logfiles.len() + opened.len() - 1
                }
            };
            outputs.push(Some(i as u16));
        }
        for (i, c) in g.logs.outputs.iter().enumerate() {
            // Same path, another format: the new one from now on.
            if let Some(o) = outputs[i].map(usize::from)
                && let Some(l) = self.obs.logs.get_mut(o)
            {
                l.fmt = crate::accesslog::Formatter::new(c.format);
            }
        }
        for (f, format) in opened {
            self.logfiles.push(f);
            self.obs.add_output(format);
        }
        self.obs.bind(g, &outputs);
        Ok(())
    }

    /// Starts writing each output's buffered lines, where none are in flight.
    pub(super) fn flush_log(&mut self) {
        self.obs.flush_due = false;
        for i in 0..self.logfiles.len() {
            let tok = Token::new(Op::Log, i, 0).pack();
            if let Some(e) = self.logfiles[i].start(&mut self.obs.logs[i].buf, tok) {
                self.own_ops += 1;
                self.push(e);
            }
        }
    }

    pub(super) fn on_log_written(&mut self, t: Token, res: i32) {
        let i = t.slot as usize;
        let tok = Token::new(Op::Log, i, 0).pack();
        let id = self.id;
        let next = self
            .logfiles
            .get_mut(i)
            .and_then(|f| f.complete(res, tok, |m| log(&format!("worker {id}: {m}"))));
        if let Some(e) = next {
            self.own_ops += 1;
            self.push(e);
        }
    }

    /// Reopens every log file (after rotation); a failure keeps that file.
    pub(super) fn reopen_logs(&mut self) {
        for f in &mut self.logfiles {
            if let Err(e) = f.reopen() {
                log(&format!(
                    "worker {}: cannot reopen the access log {}, keeping the old file: {e}",
                    self.id,
                    shown(f.path())
                ));
            }
        }
    }

    /// Whether every line is written: no write in flight, nothing buffered
    /// (buffered lines start a write).
    pub(super) fn logs_written(&mut self) -> bool {
        if self.logfiles.iter().any(|f| !f.idle()) {
            return false;
        }
        if self.obs.logs.iter().any(|l| !l.buf.is_empty()) {
            self.flush_log();
            return false;
        }
        true
    }
}
