//! The `[tls]` section of the configuration file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::{Ctx, OneOrMany, relative};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    listen: Option<Spanned<OneOrMany>>,
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    min_version: Option<Spanned<String>>,
    client_auth: Option<Spanned<String>>,
    client_ca: Option<Spanned<String>>,
    redirect_http: Option<bool>,
    session_resumption: Option<bool>,
    hsts: Option<Spanned<RawHsts>>,
    sni: Option<Vec<Spanned<RawSni>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHsts {
    max_age: Option<Spanned<i64>>,
    include_subdomains: Option<bool>,
    preload: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSni {
    names: Spanned<Vec<String>>,
    cert: Spanned<String>,
    key: Spanned<String>,
}

pub(super) fn settings(
    cx: &Ctx<'_>,
    t: &Spanned<RawTls>,
    file: Option<&Path>,
) -> Result<crate::tls::Settings, ConfigError> {
    use crate::tls::{ClientAuth, Hsts, MinVersion, Settings, SniCert};
    let span = t.span();
    let t = t.get_ref();
    let listen = match &t.listen {
        Some(l) => cx.listen_list(l, "tls.listen")?,
        None => {
            return Err(cx.err(
                span,
                "tls.listen",
                "is required in [tls] (e.g. listen = \"127.0.0.1:8443\")",
            ));
        }
    };
    let path = |v: &Option<Spanned<String>>, key: &str| -> Result<PathBuf, ConfigError> {
        match v {
            Some(p) if !p.get_ref().is_empty() => Ok(relative(p.get_ref(), file)),
            Some(p) => Err(cx.err(p.span(), key, "must not be empty")),
            None => Err(cx.err(span.clone(), key, "is required in [tls]")),
        }
    };
    let cert = path(&t.cert, "tls.cert")?;
    let key = path(&t.key, "tls.key")?;
    let min_version = match &t.min_version {
        None => MinVersion::Tls12,
        Some(v) => match v.get_ref().as_str() {
            "1.2" => MinVersion::Tls12,
            "1.3" => MinVersion::Tls13,
            o => {
                return Err(cx.err(
                    v.span(),
                    "tls.min_version",
                    format!("must be \"1.2\" or \"1.3\" (got {o:?})"),
                ));
            }
        },
    };
    let client_auth = match &t.client_auth {
        None => ClientAuth::None,
        Some(v) => match v.get_ref().as_str() {
            "none" => ClientAuth::None,
            "optional" => ClientAuth::Optional,
            "required" => ClientAuth::Required,
            o => {
                return Err(cx.err(
                    v.span(),
                    "tls.client_auth",
                    format!("must be none, optional or required (got {o:?})"),
                ));
            }
        },
    };
    let client_ca = t.client_ca.as_ref().map(|p| relative(p.get_ref(), file));
    if client_auth != ClientAuth::None && client_ca.is_none() {
        let s = t.client_auth.as_ref().map_or(span.clone(), |v| v.span());
        return Err(cx.err(
            s,
            "tls.client_ca",
            "is required when tls.client_auth is optional or required",
        ));
    }
    let hsts = match &t.hsts {
        None => None,
        Some(h) => {
            let r = h.get_ref();
            let max_age = match &r.max_age {
                Some(m) if *m.get_ref() >= 0 => *m.get_ref() as u64,
                Some(m) => {
                    return Err(cx.err(m.span(), "tls.hsts.max_age", "must not be negative"));
                }
                None => {
                    return Err(cx.err(
                        h.span(),
                        "tls.hsts.max_age",
                        "is required (seconds, e.g. 31536000)",
                    ));
                }
            };
            Some(Hsts {
                max_age,
                include_subdomains: r.include_subdomains.unwrap_or(false),
                preload: r.preload.unwrap_or(false),
            })
        }
    };
    let mut sni = Vec::new();
    for (i, e) in t.sni.iter().flatten().enumerate() {
        let r = e.get_ref();
        if r.names.get_ref().is_empty() {
            return Err(cx.err(
                r.names.span(),
                &format!("tls.sni[{i}].names"),
                "needs at least one name",
            ));
        }
        for n in r.names.get_ref() {
            let bare = n.strip_prefix("*.").unwrap_or(n);
            if bare.is_empty()
                || bare.contains('*')
                || !bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(cx.err(
                    r.names.span(),
                    &format!("tls.sni[{i}].names"),
                    format!("{n:?} is not a host name or *.wildcard"),
                ));
            }
        }
        sni.push(SniCert {
            names: r.names.get_ref().clone(),
            cert: relative(r.cert.get_ref(), file),
            key: relative(r.key.get_ref(), file),
            origin: format!("tls.sni[{i}]"),
        });
    }
    Ok(Settings {
        listen,
        cert,
        key,
        sni,
        min_version,
        client_auth,
        client_ca,
        redirect_http: t.redirect_http.unwrap_or(false),
        hsts,
        session_resumption: t.session_resumption.unwrap_or(true),
    })
}
