//! The `peregrine` command.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use peregrine::config::{self, Config, ConfigError};
use peregrine::server::Server;
use peregrine::site::Generation;

/// A thread-per-core io_uring HTTP/1.1 server.
///
/// With no command, serves the bundled demo site on 127.0.0.1:8080 with the
/// built-in handlers and compression on.
#[derive(Parser, Debug)]
#[command(name = "peregrine", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve static files and built-in handlers.
    Serve(ServeArgs),
    /// Validate a configuration file and exit.
    Check {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Generate HTTP/1.1 load against a URL (open loop with --rate).
    Load(Box<peregrine::load::LoadArgs>),
}

#[derive(clap::Args, Clone, Debug, Default)]
struct ServeArgs {
    /// TOML configuration file; flags override its values.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (repeatable), e.g. 127.0.0.1:8080 or [::1]:8080.
    #[arg(long, short, value_parser = config::parse_listen)]
    listen: Vec<std::net::SocketAddr>,
    /// Document root for static files (default: the bundled demo site).
    #[arg(long, short)]
    root: Option<PathBuf>,
    /// Worker threads, one io_uring each (default: one per CPU).
    #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// Serve /plaintext, /json and /echo.
    #[arg(long)]
    builtins: bool,
    /// Admin listener address (metrics, status, dashboard), or `off`.
    #[arg(long, value_name = "ADDR|off")]
    admin: Option<String>,
    /// Access log file, `-` for standard output, or `off`.
    #[arg(long, value_name = "PATH|-|off")]
    access_log: Option<String>,
    /// HTTPS address to listen on (repeatable); needs --cert and --key unless the
    /// configuration file has a [tls] section.
    #[arg(long, value_name = "ADDR", value_parser = config::parse_listen)]
    tls_listen: Vec<std::net::SocketAddr>,
    /// PEM certificate chain for HTTPS.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

/// Where the demo site lives: beside the crate's manifest.
fn demo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("site")
}

fn build(args: ServeArgs) -> Result<Config, ConfigError> {
    let mut c = match &args.config {
        Some(p) => config::load(p)?,
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        c.listen = args.listen;
    }
    if !c.sites.is_empty() {
        if args.root.is_some() {
            return Err(ConfigError::key(
                "--root",
                "the configuration has [[site]] tables; set root per site",
            ));
        }
        if args.builtins {
            return Err(ConfigError::key(
                "--builtins",
                "the configuration has [[site]] tables; add a route with handler = \"builtins\"",
            ));
        }
    }
    if let Some(r) = args.root {
        c.root = Some(r);
    }
    if c.root.is_none() && c.sites.is_empty() {
        c.root = Some(demo_root());
        // The demo shows compression too, unless the file said otherwise.
        if c.source.is_none() {
            c.compression = Some(Default::default());
        }
    }
    if let Some(w) = args.workers {
        c.workers = usize::from(w);
    }
    if args.builtins {
        c.builtins = true;
    }
    if let Some(a) = args.admin {
        c.admin.listen = match a.as_str() {
            "off" => None,
            v => Some(config::parse_listen(v).map_err(|m| ConfigError::key("--admin", m))?),
        };
    }
    c.admin
        .validate()
        .map_err(|m| ConfigError::key("admin.token", m))?;
    if !args.tls_listen.is_empty() || args.cert.is_some() || args.key.is_some() {
        let mut t =
            match c.tls.take() {
                Some(t) => t,
                None => {
                    let cert = args.cert.clone().ok_or_else(|| {
                        ConfigError::key("--cert", "is required with --tls-listen")
                    })?;
                    let key = args.key.clone().ok_or_else(|| {
                        ConfigError::key("--key", "is required with --tls-listen")
                    })?;
                    peregrine::tls::Settings {
                        listen: Vec::new(),
                        cert,
                        key,
                        sni: Vec::new(),
                        min_version: peregrine::tls::MinVersion::Tls12,
                        client_auth: peregrine::tls::ClientAuth::None,
                        client_ca: None,
                        redirect_http: false,
                        hsts: None,
                        session_resumption: true,
                    }
                }
            };
        if !args.tls_listen.is_empty() {
            t.listen = args.tls_listen;
        }
        if let Some(p) = args.cert {
            t.cert = p;
        }
        if let Some(p) = args.key {
            t.key = p;
        }
        if t.listen.is_empty() {
            return Err(ConfigError::key(
                "--tls-listen",
                "is required with --cert/--key",
            ));
        }
        c.tls = Some(t);
    }
    if let Some(p) = args.access_log {
        let format = c
            .access_log
            .as_ref()
            .map_or(peregrine::accesslog::Format::Combined, |l| l.format);
        c.access_log = match p.as_str() {
            "off" => None,
            "-" => Some(peregrine::accesslog::Config { path: None, format }),
            "" => return Err(ConfigError::key("--access-log", "must not be empty")),
            v => Some(peregrine::accesslog::Config {
                path: Some(PathBuf::from(v)),
                format,
            }),
        };
    }
    Ok(c)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        None => ServeArgs {
            builtins: true,
            ..ServeArgs::default()
        },
        Some(Command::Serve(args)) => args,
        Some(Command::Load(args)) => return peregrine::load::main(*args),
        Some(Command::Check { config }) => {
            // The whole generation is built: sites, routes, directories,
            // error pages and certificates, so a bad one is caught before a
            // reload.
            let loaded =
                config::load(&config).and_then(|c| Generation::build(&c, &[]).map(|g| (c, g)));
            return match loaded {
                Ok((c, g)) => {
                    for w in &g.warnings {
                        let _ = writeln!(std::io::stderr(), "peregrine: warning: {w}");
                    }
                    let n = g.plan.listeners.len();
                    let sites = match c.sites.len() {
                        0 => String::new(),
                        1 => ", 1 site".to_string(),
                        k => format!(", {k} sites"),
                    };
                    let _ = writeln!(
                        std::io::stdout(),
                        "{}: ok ({n} listener{}, {} worker{}{sites})",
                        config.display(),
                        if n == 1 { "" } else { "s" },
                        c.workers,
                        if c.workers == 1 { "" } else { "s" }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "peregrine: config error: {e}");
                    ExitCode::from(2)
                }
            };
        }
    };
    let config = match build(args.clone()) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "peregrine: config error: {e}");
            return ExitCode::from(2);
        }
    };
    // A closed stdout or stderr must not take the server down: write and ignore
    // errors instead of println!, which panics on EPIPE.
    let say = |line: String| {
        let _ = writeln!(std::io::stdout(), "{line}");
    };
    // A reload reads the file again and applies the same flags over it.
    let server = Server::new(config).reload_from(move || build(args.clone()));
    let result = server.run(|running| {
        let root = running
            .root()
            .map(|r| format!(", root {}", r.display()))
            .unwrap_or_default();
        for a in running.local_addrs() {
            say(format!(
                "peregrine {} listening on http://{a}/ ({} worker{}{root})",
                env!("CARGO_PKG_VERSION"),
                running.workers(),
                if running.workers() == 1 { "" } else { "s" },
            ));
        }
        for a in running.tls_addrs() {
            say(format!(
                "peregrine {} listening on https://{a}/",
                env!("CARGO_PKG_VERSION")
            ));
        }
        if let Some(a) = running.admin_addr() {
            say(format!(
                "peregrine admin on http://{a}/ (dashboard, /metrics, /status, /histogram)"
            ));
        }
    });
    match result {
        Ok(()) => {
            let _ = writeln!(std::io::stderr(), "peregrine: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "peregrine: {e}");
            ExitCode::from(1)
        }
    }
}
