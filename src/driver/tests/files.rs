//! File bodies: reads behind the head, linked splices.

use super::*;

/// Serves one file range from `/file`.
struct FileSvc(std::rc::Rc<std::fs::File>, u64);

impl Service for FileSvc {
    fn call(&mut self, _req: &RequestHead, _io: &mut Io) -> Reply {
        Response::new(200)
            .body(Body::File(crate::http::FileBody {
                file: self.0.clone(),
                offset: 0,
                len: self.1,
            }))
            .into()
    }

    fn methods(&self) -> Methods {
        Methods::GET_HEAD
    }
}

/// A `Cx` over local bindings of the same names (for tests that drive a
/// connection by hand).
macro_rules! local_cx {
    ($now:expr, $svc:expr, $splice_min:expr, $obs:ident, $exchanges:ident, $bufs:ident, $limits:ident, $settings:ident, $budget:ident) => {
        Cx {
            now: $now,
            date: b"Sun, 06 Nov 1994 08:49:37 GMT",
            draining: false,
            svc: $svc,
            obs: &mut $obs,
            exchanges: &mut $exchanges,
            bufs: &mut $bufs,
            limits: &$limits,
            settings: &$settings,
            tls_headers: b"",
            splice_min: $splice_min,
            file_chunk: 128 * 1024,
            handshakes_left: &mut $budget,
            peer: None,
            listener: 0,
            waker: None,
            upstreams: None,
        }
    };
}

#[test]
fn spliced_file_links_its_splices_and_recovers_from_short_ones() {
    let path = std::env::temp_dir().join(format!("peregrine-driver-splice-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 300_000]).unwrap();
    let file = std::rc::Rc::new(std::fs::File::open(&path).unwrap());
    let _ = std::fs::remove_file(&path);
    let now = Instant::now();
    let mut conn = ServerConn::new(None, now);
    let mut svc = FileSvc(file, 300_000);
    let (mut obs, mut exchanges, mut bufs) = (NoObserver, ExchangePool::new(), BufPool::new());
    let (limits, settings, mut budget) = (Limits::default(), Settings::default(), 32);
    macro_rules! fcx {
        () => {
            local_cx!(
                now, &mut svc, 1, obs, exchanges, bufs, limits, settings, budget
            )
        };
    }
    conn.on_recv(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n", &mut fcx!());
    // The head goes first.
    let Some(Action::Send { buf, from }) = conn.poll_action() else {
        panic!("head first")
    };
    assert!(conn.poll_action().is_none());
    let n = buf.len() - from;
    conn.on_sent(buf, n, &mut fcx!());
    // Then a splice in with a splice out linked behind it.
    match conn.poll_action() {
        Some(Action::SpliceIn {
            offset: 0,
            len: 300_000,
            then_out: true,
            ..
        }) => {}
        a => panic!("{a:?}"),
    }
    assert!(conn.poll_action().is_none());
    // The pipe held only 65,536: the link broke, the out was cancelled.
    conn.on_spliced_in(65_536, &mut fcx!());
    assert!(
        conn.poll_action().is_none(),
        "the linked out is still pending"
    );
    conn.on_spliced_out(-libc::ECANCELED, &mut fcx!());
    match conn.poll_action() {
        Some(Action::SpliceOut { len: 65_536 }) => {}
        a => panic!("{a:?}"),
    }
    // A full socket: wait for room, then go on with what is in the pipe.
    conn.on_spliced_out(-libc::EAGAIN, &mut fcx!());
    assert!(matches!(conn.poll_action(), Some(Action::PollOut)));
    conn.on_poll_out(0, &mut fcx!());
    assert!(matches!(
        conn.poll_action(),
        Some(Action::SpliceOut { len: 65_536 })
    ));
    conn.on_spliced_out(65_536, &mut fcx!());
    // The pipe is empty: the next pair starts where the file left off.
    match conn.poll_action() {
        Some(Action::SpliceIn {
            offset: 65_536,
            len: 234_464,
            then_out: true,
            ..
        }) => {}
        a => panic!("{a:?}"),
    }
    conn.on_spliced_in(234_464, &mut fcx!());
    conn.on_spliced_out(234_464, &mut fcx!());
    // Done: the connection waits for the next request.
    assert!(conn.poll_action().is_none());
    assert_eq!(conn.gauge(), Gauge::Waiting);
}

#[test]
fn small_file_is_read_behind_the_head_and_sent_once() {
    let path = std::env::temp_dir().join(format!("peregrine-driver-read-{}", std::process::id()));
    std::fs::write(&path, vec![b'z'; 4096]).unwrap();
    let file = std::rc::Rc::new(std::fs::File::open(&path).unwrap());
    let _ = std::fs::remove_file(&path);
    let now = Instant::now();
    let mut conn = ServerConn::new(None, now);
    let mut svc = FileSvc(file, 4096);
    let (mut obs, mut exchanges, mut bufs) = (NoObserver, ExchangePool::new(), BufPool::new());
    let (limits, settings, mut budget) = (Limits::default(), Settings::default(), 32);
    let mut cx = local_cx!(
        now, &mut svc, 0, obs, exchanges, bufs, limits, settings, budget
    );
    conn.on_recv(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n", &mut cx);
    // The read takes the output buffer (the head in it) first: no send yet.
    let Some(Action::ReadFile {
        len: 4096, mut buf, ..
    }) = conn.poll_action()
    else {
        panic!("the read comes first")
    };
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(
        conn.poll_action().is_none(),
        "nothing else while the read is out"
    );
    let head = buf.len();
    // The kernel appends the file's bytes after the head.
    buf.extend_from_slice(&[b'z'; 4096]);
    conn.on_read(buf, 4096, 0, &mut cx);
    match conn.poll_action() {
        Some(Action::Send { buf, from: 0 }) => {
            assert_eq!(buf.len(), head + 4096, "head and body in one send");
            let n = buf.len();
            conn.on_sent(buf, n, &mut cx);
        }
        a => panic!("{a:?}"),
    }
    assert!(conn.poll_action().is_none());
    assert_eq!(conn.gauge(), Gauge::Waiting);
}
