//! Headless Chromium for the end-to-end tests: the binary, and the DOM of a
//! page after its scripts ran.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tempdir;

/// How long Chromium may run before it is killed.
pub const CHROMIUM_LIMIT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$CHROMIUM` if set, else the first of the usual names
/// found on the `PATH`. Panics with install instructions when there is none.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "Chromium is needed for this test and was not found on the PATH \
         (looked for chromium, chromium-browser, google-chrome). Install it, e.g. \
         `sudo apt-get install -y chromium` on Debian/Ubuntu, or point $CHROMIUM at a \
         Chrome/Chromium binary."
    );
}

/// Loads `url` in headless Chromium and returns the DOM after the page's
/// scripts ran: `--virtual-time-budget` lets the page's timers run for 5 s of
/// virtual time, and virtual time stands still while a fetch is in flight, so
/// the page's fetches complete before the DOM is dumped.
pub fn rendered_dom(url: &str) -> String {
    rendered_dom_with(url, &[])
}

/// [`rendered_dom`] with `extra` Chromium arguments (before the URL).
pub fn rendered_dom_with(url: &str, extra: &[&str]) -> String {
    let profile = tempdir("chromium");
    let stderr_path = profile.join("chromium-stderr.log");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-extensions",
            "--disable-dev-shm-usage",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(extra)
        .args(["--virtual-time-budget=5000", "--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        // Its own process group, so that a timeout can end every helper
        // process it started, not just the browser process.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start Chromium: {e}"));
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if started.elapsed() > CHROMIUM_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever it left behind (helpers still running) goes too.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let dom = reader.join().unwrap();
    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    match status {
        None => panic!(
            "Chromium did not finish within {CHROMIUM_LIMIT:?}; stderr:\n{}",
            tail(&log)
        ),
        Some(st) if !st.success() || dom.is_empty() => panic!(
            "Chromium failed ({st}) with {} bytes of DOM; stderr:\n{}",
            dom.len(),
            tail(&log)
        ),
        Some(_) => dom,
    }
}

/// The last 4,000 bytes of `s` (at a character boundary).
pub fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(4000);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}
