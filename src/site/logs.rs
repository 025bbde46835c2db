//! The access logs of a generation: the distinct outputs (files, or standard
//! output) and which one each site's lines go to. Sites naming the same path
//! share one output, and so does the global `[access_log]` when they name
//! its path; one output has one format.

use super::spec::{Site, SiteLog};
use crate::accesslog;
use crate::config::ConfigError;

/// Where every access-log line of a generation goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPlan {
    /// The distinct outputs, each with its format.
    pub outputs: Vec<accesslog::Config>,
    /// The output of responses answered before a site is chosen (protocol
    /// refusals, `OPTIONS *`) and of sites without a log of their own;
    /// `None`: the global log is off.
    pub global: Option<u16>,
    /// Per site, by index: its output; `None`: its lines are not logged.
    pub sites: Vec<Option<u16>>,
}

fn where_shown(c: &accesslog::Config) -> String {
    c.path
        .as_ref()
        .map_or_else(|| "standard output".into(), |p| p.display().to_string())
}

impl LogPlan {
    /// The outputs of the global log `global` and of `sites`. Errors: one
    /// path written in two formats.
    pub fn new(global: Option<&accesslog::Config>, sites: &[Site]) -> Result<LogPlan, ConfigError> {
        let mut plan = LogPlan::default();
        if let Some(g) = global {
            plan.outputs.push(g.clone());
            plan.global = Some(0);
        }
        for s in sites {
            let out = match &s.access_log {
                SiteLog::Global => plan.global,
                SiteLog::Off => None,
                SiteLog::Own(c) => Some(plan.output(c, s)?),
            };
            plan.sites.push(out);
        }
        Ok(plan)
    }

    /// The index of output `c`, added when new.
    fn output(&mut self, c: &accesslog::Config, s: &Site) -> Result<u16, ConfigError> {
        let i = match self.outputs.iter().position(|o| o.path == c.path) {
            Some(i) if self.outputs[i].format != c.format => {
                let whose = if self.global == Some(i as u16) {
                    "the global [access_log]".to_string()
                } else {
                    "another site's log".to_string()
                };
                return Err(s.origin.err(
                    "access_log.format",
                    format!(
                        "{} is {whose} too, in another format; one file has one format",
                        where_shown(c)
                    ),
                ));
            }
            Some(i) => i,
            None => {
                self.outputs.push(c.clone());
                self.outputs.len() - 1
            }
        };
        u16::try_from(i).map_err(|_| s.origin.err("access_log", "more than 65535 access logs"))
    }

    /// The output of the lines of site `site` (`None`: answered before a site
    /// was chosen); `None`: not logged.
    pub fn output_of(&self, site: Option<u16>) -> Option<u16> {
        match site {
            Some(i) => self
                .sites
                .get(usize::from(i))
                .copied()
                .unwrap_or(self.global),
            None => self.global,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::{Config, Format};
    use crate::site::spec::Origin;
    use std::path::PathBuf;

    fn site(name: &str, log: SiteLog) -> Site {
        Site {
            name: name.into(),
            hosts: vec![format!("{name}.test")],
            listen: None,
            tls_listen: None,
            tls: None,
            root: None,
            index: Vec::new(),
            default: false,
            http2: true,
            rules: Default::default(),
            security: Default::default(),
            compression: None,
            routes: Vec::new(),
            access_log: log,
            origin: Origin {
                file: Some("p.toml".into()),
                line: Some(3),
                key: format!("site[{name}]"),
                lines: vec![("access_log", 7)],
            },
        }
    }

    fn file(p: &str, format: Format) -> Config {
        Config {
            path: Some(PathBuf::from(p)),
            format,
        }
    }

    #[test]
    fn sites_share_outputs_by_path_and_fall_back_to_the_global_log() {
        let global = file("/l/all.log", Format::Combined);
        let sites = [
            site("a", SiteLog::Own(file("/l/a.log", Format::Json))),
            site("b", SiteLog::Global),
            site("c", SiteLog::Off),
            site("d", SiteLog::Own(file("/l/a.log", Format::Json))),
            site("e", SiteLog::Own(file("/l/all.log", Format::Combined))),
        ];
        let p = LogPlan::new(Some(&global), &sites).unwrap();
        assert_eq!(p.outputs.len(), 2);
        assert_eq!(p.outputs[1].path.as_deref(), Some("/l/a.log".as_ref()));
        assert_eq!(p.global, Some(0));
        assert_eq!(p.sites, [Some(1), Some(0), None, Some(1), Some(0)]);
        assert_eq!(p.output_of(None), Some(0));
        assert_eq!(p.output_of(Some(2)), None);
        assert_eq!(p.output_of(Some(3)), Some(1));
        // An index past the sites (a late answer after a swap) goes to the global log.
        assert_eq!(p.output_of(Some(9)), Some(0));
    }

    #[test]
    fn without_a_global_log_only_own_logs_are_written() {
        let sites = [
            site("a", SiteLog::Global),
            site("b", SiteLog::Own(file("/l/b.log", Format::Combined))),
        ];
        let p = LogPlan::new(None, &sites).unwrap();
        assert_eq!(p.global, None);
        assert_eq!(p.sites, [None, Some(0)]);
        assert_eq!(p.output_of(None), None);
    }

    #[test]
    fn one_path_in_two_formats_is_an_error_naming_the_key_and_line() {
        let global = file("/l/all.log", Format::Combined);
        let sites = [site("a", SiteLog::Own(file("/l/all.log", Format::Json)))];
        let e = LogPlan::new(Some(&global), &sites).unwrap_err().to_string();
        assert_eq!(
            e,
            "p.toml:7: site[a].access_log.format: /l/all.log is the global [access_log] too, in another format; one file has one format"
        );
        let sites = [
            site("a", SiteLog::Own(file("/l/x.log", Format::Json))),
            site("b", SiteLog::Own(file("/l/x.log", Format::Combined))),
        ];
        let e = LogPlan::new(None, &sites).unwrap_err().to_string();
        assert!(e.contains("site[b].access_log.format"), "{e}");
        assert!(e.contains("another site's log"), "{e}");
    }
}
