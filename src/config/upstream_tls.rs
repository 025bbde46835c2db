//! The TLS keys of an `[[upstream]]` table: `tls`, `server_name`, `ca`,
//! `tls_verify`, `client_cert` and `client_key`. The group's rustls
//! configuration is built here, once, when the file is loaded (and again on
//! each reload), so an unreadable CA or certificate file or a bad PEM block
//! is an error that names its key and line.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use toml::{Spanned, Value};

use super::ConfigError;
use super::file::{Ctx, relative};
use crate::upstream::spec::{ServerSpec, UpstreamTls};

/// The TLS keys as written.
pub(super) struct RawTlsKeys<'a> {
    pub tls: &'a Option<Spanned<Value>>,
    pub server_name: &'a Option<Spanned<String>>,
    pub ca: &'a Option<Spanned<String>>,
    pub tls_verify: &'a Option<Spanned<Value>>,
    pub client_cert: &'a Option<Spanned<String>>,
    pub client_key: &'a Option<Spanned<String>>,
}

fn boolean(
    cx: &Ctx<'_>,
    v: &Option<Spanned<Value>>,
    key: &str,
) -> Result<Option<bool>, ConfigError> {
    match v {
        None => Ok(None),
        Some(s) => match s.get_ref() {
            Value::Boolean(b) => Ok(Some(*b)),
            _ => Err(cx.err(s.span(), key, "must be true or false")),
        },
    }
}

/// The group's TLS settings; `None` without `tls = true`. `group` is the
/// group's key (`upstream[0]`), `span` where the table starts.
pub(super) fn tls(
    cx: &Ctx<'_>,
    group: &str,
    span: Range<usize>,
    raw: RawTlsKeys<'_>,
    servers: &[ServerSpec],
    file: Option<&Path>,
) -> Result<Option<UpstreamTls>, ConfigError> {
    let k = |key: &str| format!("{group}.{key}");
    let on = boolean(cx, raw.tls, &k("tls"))?.unwrap_or(false);
    let verify = boolean(cx, raw.tls_verify, &k("tls_verify"))?;
    if !on {
        let stray = [
            ("server_name", raw.server_name.as_ref().map(Spanned::span)),
            ("ca", raw.ca.as_ref().map(Spanned::span)),
            ("tls_verify", raw.tls_verify.as_ref().map(Spanned::span)),
            ("client_cert", raw.client_cert.as_ref().map(Spanned::span)),
            ("client_key", raw.client_key.as_ref().map(Spanned::span)),
        ];
        if let Some((key, Some(at))) = stray.into_iter().find(|(_, s)| s.is_some()) {
            return Err(cx.err(at, &k(key), "applies only with tls = true"));
        }
        return Ok(None);
    }
    let verify = verify.unwrap_or(true);
    let tls_span = raw.tls.as_ref().map_or(span, Spanned::span);
    let server_name = match raw.server_name {
        None => None,
        Some(n) => Some(ServerName::try_from(n.get_ref().clone()).map_err(|_| {
            cx.err(
                n.span(),
                &k("server_name"),
                format!("{:?} is not a DNS name or an IP address", n.get_ref()),
            )
        })?),
    };
    if server_name.is_none() && verify {
        for (j, s) in servers.iter().enumerate() {
            match s.host() {
                None => {
                    return Err(cx.err(
                        tls_span,
                        &k("server_name"),
                        format!(
                            "is required with tls = true when a server is a Unix socket ({} is servers[{j}]): \
                             there is no host name to verify the certificate against",
                            s.name
                        ),
                    ));
                }
                Some(h) if ServerName::try_from(h).is_err() => {
                    return Err(cx.err(
                        tls_span,
                        &k("server_name"),
                        format!(
                            "is required: {h:?} (servers[{j}]) is not a name a certificate can be verified for"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(c) = raw.ca
        && c.get_ref().is_empty()
    {
        return Err(cx.err(c.span(), &k("ca"), "must be a file name"));
    }
    let ca = raw
        .ca
        .as_ref()
        .map(|c| (c.span(), relative(c.get_ref(), file)));
    let client = client_cert(cx, group, &raw, file)?;
    let certified = client.as_ref().map(|c| c.certified.clone());
    let client = client.map(|c| (c.cert, c.key));
    let config = crate::tls::client_config(
        ca.as_ref().map(|(_, p)| p.as_path()),
        verify,
        certified,
        group,
    )
    .map_err(|m| {
        let ca = ca.as_ref().map(|(at, _)| (k("ca"), at.clone()));
        at_key(cx, &m, ca, (k("tls"), tls_span.clone()))
    })?;
    Ok(Some(UpstreamTls {
        config,
        server_name,
        ca: ca.map(|(_, p)| p),
        verify,
        client,
    }))
}

/// Error `m`, which starts with the key at fault, at that key's line: at
/// `first` when it names that key, else at `other`.
fn at_key(
    cx: &Ctx<'_>,
    m: &str,
    first: Option<(String, Range<usize>)>,
    other: (String, Range<usize>),
) -> ConfigError {
    if let Some((key, at)) = first
        && let Some(rest) = m.strip_prefix(&format!("{key}: "))
    {
        return cx.err(at, &key, rest);
    }
    let (key, at) = other;
    let rest = m.strip_prefix(&format!("{key}: ")).unwrap_or(m);
    cx.err(at, &key, rest)
}

/// A client certificate as loaded: its files (as resolved) and the key.
struct ClientCert {
    cert: PathBuf,
    key: PathBuf,
    certified: Arc<CertifiedKey>,
}

/// `client_cert` and `client_key`: both or neither, read and checked to
/// belong together.
fn client_cert(
    cx: &Ctx<'_>,
    group: &str,
    raw: &RawTlsKeys<'_>,
    file: Option<&Path>,
) -> Result<Option<ClientCert>, ConfigError> {
    let k = |key: &str| format!("{group}.{key}");
    let (cert, key) = match (raw.client_cert, raw.client_key) {
        (None, None) => return Ok(None),
        (Some(c), Some(key)) => (c, key),
        (Some(c), None) => {
            return Err(cx.err(c.span(), &k("client_key"), "is required with client_cert"));
        }
        (None, Some(key)) => {
            return Err(cx.err(key.span(), &k("client_cert"), "is required with client_key"));
        }
    };
    for (v, name) in [(cert, "client_cert"), (key, "client_key")] {
        if v.get_ref().is_empty() {
            return Err(cx.err(v.span(), &k(name), "must be a file name"));
        }
    }
    let (cert_path, key_path) = (
        relative(cert.get_ref(), file),
        relative(key.get_ref(), file),
    );
    let prefix = k("client_");
    let provider = crate::tls::provider();
    let certified =
        crate::tls::load_key(&cert_path, &key_path, &prefix, &provider).map_err(|m| {
            let key_at = Some((k("client_key"), key.span()));
            at_key(cx, &m, key_at, (k("client_cert"), cert.span()))
        })?;
    Ok(Some(ClientCert {
        cert: cert_path,
        key: key_path,
        certified,
    }))
}
