//! The client driver in simulated time: an in-memory executor, scripted
//! peers, and the server driver itself as a peer.

use std::time::{Duration, Instant};

use super::Harness;
use crate::driver::{
    Action, ClientConn, ClientEnd, ClientEvent, ClientSettings, Request, Response,
};
use crate::http::client::ClientError;
use crate::upstream::spec::Address;

/// The executor's side, in memory: what the driver asked for, and the time.
struct Client {
    conn: ClientConn,
    t0: Instant,
    now: Instant,
    /// Bytes the driver sent, in order.
    wire: Vec<u8>,
    /// The send in flight, held as the kernel would.
    inflight: Option<Vec<u8>>,
    connecting: bool,
    closed: bool,
    events: Vec<ClientEvent>,
}

fn addr() -> Address {
    Address::Tcp("127.0.0.1:8080".parse().unwrap())
}

fn settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(3),
        ..ClientSettings::default()
    }
}

fn get(tag: u64) -> Request {
    Request {
        tag,
        head: false,
        upgrade: false,
        connect: false,
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

impl Client {
    fn new() -> Client {
        let t0 = Instant::now();
        let mut c = Client {
            conn: ClientConn::new(addr(), 7, settings(), t0),
            t0,
            now: t0,
            wire: Vec::new(),
            inflight: None,
            connecting: false,
            closed: false,
            events: Vec::new(),
        };
        c.pump(true);
        c
    }

    /// Connected at once.
    fn open() -> Client {
        let mut c = Client::new();
        c.connected(Ok(()));
        c
    }

    /// Takes the driver's actions and events; a send in flight completes in
    /// full unless `hold`.
    fn pump(&mut self, hold: bool) {
        loop {
            if !hold && let Some(buf) = self.inflight.take() {
                self.wire.extend_from_slice(&buf);
                let n = buf.len();
                self.conn.on_sent(buf, n, self.now);
            }
            match self.conn.poll_action() {
                Some(Action::Connect { addr: a }) => {
                    assert_eq!(a, addr());
                    assert!(!self.connecting, "a second connect");
                    self.connecting = true;
                }
                Some(Action::Send { buf, from }) => {
                    assert_eq!(from, 0);
                    assert!(self.inflight.is_none(), "a second send in flight");
                    self.inflight = Some(buf);
                }
                Some(Action::Close { .. }) => self.closed = true,
                Some(a) => panic!("unexpected {a:?}"),
                None if self.inflight.is_some() && !hold => continue,
                None => break,
            }
        }
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
    }

    fn connected(&mut self, res: Result<(), i32>) {
        assert!(self.connecting);
        self.connecting = false;
        self.conn.on_connected(res);
        self.pump(false);
    }

    fn request(&mut self, tag: u64) -> bool {
        let ok = self.conn.request(GET, get(tag), self.now);
        self.pump(false);
        ok
    }

    fn recv(&mut self, data: &[u8]) {
        self.conn.on_recv(data, self.now);
        self.pump(false);
    }

    fn at(&mut self, secs: f64) {
        self.now = self.t0 + Duration::from_secs_f64(secs);
        self.conn.on_timer(self.now);
        self.pump(false);
    }

    fn responses(&self) -> Vec<Response> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Response(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    fn closed_with(&self) -> Option<(ClientEnd, u64)> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Closed { why, lost } => Some((*why, *lost)),
            _ => None,
        })
    }
}

#[test]
fn requests_wait_for_the_connect_then_pipeline() {
    let mut c = Client::new();
    assert!(c.connecting);
    assert_eq!(c.conn.deadline(), Some(c.t0 + Duration::from_secs(1)));
    assert!(c.request(1));
    assert!(c.request(2));
    assert!(c.wire.is_empty(), "nothing goes out before the connect");
    assert!(!c.conn.wants_recv());
    c.connected(Ok(()));
    assert_eq!(c.events[0], ClientEvent::Connected);
    assert!(c.conn.wants_recv());
    assert_eq!(c.wire, [GET, GET].concat(), "both in one send");
    assert_eq!(c.conn.deadline(), Some(c.t0 + Duration::from_secs(3)));
    // Two responses, split across reads anywhere.
    let both = [OK, OK].concat();
    c.now += Duration::from_millis(5);
    c.recv(&both[..50]);
    c.now += Duration::from_millis(5);
    c.recv(&both[50..]);
    let r = c.responses();
    assert_eq!(r.iter().map(|r| r.tag).collect::<Vec<_>>(), [1, 2]);
    assert_eq!((r[0].status, r[0].body_len, r[0].last), (200, 2, false));
    assert_eq!(r[0].queued, c.t0);
    let ms = |n| c.t0 + Duration::from_millis(n);
    assert_eq!((r[0].head_at, r[0].done), (ms(5), ms(5)));
    // The second head was cut across the reads.
    assert_eq!((r[1].head_at, r[1].done), (ms(10), ms(10)));
    assert!(c.events.contains(&ClientEvent::Received(50)));
    assert_eq!(c.conn.deadline(), None, "nothing unanswered");
    assert_eq!(c.closed_with(), None);
}

#[test]
fn requests_queued_during_a_send_follow_it() {
    let mut c = Client::open();
    c.conn.request(b"first", get(1), c.now);
    c.pump(true);
    c.conn.request(b"second", get(2), c.now);
    c.conn.request(b"third", get(3), c.now);
    c.pump(true);
    // The kernel took three bytes of the first send.
    let buf = c.inflight.take().unwrap();
    assert_eq!(buf, b"first");
    c.wire.extend_from_slice(&buf[..3]);
    c.conn.on_sent(buf, 3, c.now);
    c.pump(false);
    assert_eq!(c.wire, b"firstsecondthird");
}

#[test]
fn a_refused_connect_loses_what_was_queued() {
    let mut c = Client::new();
    c.request(1);
    c.connected(Err(libc::ECONNREFUSED));
    assert_eq!(
        c.closed_with(),
        Some((ClientEnd::ConnectFailed(libc::ECONNREFUSED), 1))
    );
    assert!(c.closed && c.conn.is_closed());
    assert!(!c.request(2), "nothing is queued after the end");
    assert_eq!(
        ClientEnd::ConnectFailed(libc::ECONNREFUSED).to_string(),
        std::io::Error::from_raw_os_error(libc::ECONNREFUSED).to_string()
    );
}

#[test]
fn a_connect_that_hangs_times_out() {
    let mut c = Client::new();
    c.at(0.9);
    assert!(!c.closed);
    c.at(1.0);
    assert_eq!(c.closed_with(), Some((ClientEnd::ConnectTimeout, 0)));
    // Its completion, cancelled, changes nothing.
    c.connected(Err(libc::ECANCELED));
    assert_eq!(c.events.len(), 1);
}

#[test]
fn an_unanswered_request_times_out_from_when_it_was_queued() {
    let mut c = Client::open();
    c.request(1);
    c.now = c.t0 + Duration::from_secs(2);
    c.request(2);
    c.recv(OK);
    assert_eq!(c.responses().len(), 1);
    // The second request's clock started when it was queued.
    assert_eq!(c.conn.deadline(), Some(c.t0 + Duration::from_secs(5)));
    c.at(4.0);
    assert!(!c.closed);
    c.at(5.0);
    assert_eq!(c.closed_with(), Some((ClientEnd::ResponseTimeout, 1)));
}

#[test]
fn connection_close_ends_after_its_response() {
    let mut c = Client::open();
    for tag in 1..=3 {
        c.request(tag);
    }
    c.recv(b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx");
    let r = c.responses();
    assert_eq!((r[0].tag, r[0].status, r[0].last), (1, 503, true));
    assert_eq!(c.closed_with(), Some((ClientEnd::NotReusable, 2)));
    assert!(c.closed);
}

#[test]
fn the_peers_close_ends_a_close_delimited_body() {
    let mut c = Client::open();
    c.request(1);
    c.recv(b"HTTP/1.0 200 OK\r\n\r\nuntil");
    c.recv(b" close");
    assert!(c.responses().is_empty());
    c.conn.on_eof(false, c.now);
    c.pump(false);
    let r = c.responses();
    assert_eq!((r[0].body_len, r[0].last), (11, true));
    assert_eq!(c.closed_with(), Some((ClientEnd::PeerClosed, 0)));
}

#[test]
fn a_close_inside_a_response_is_truncation() {
    let mut c = Client::open();
    c.request(1);
    c.request(2);
    c.recv(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc");
    c.conn.on_eof(false, c.now);
    c.pump(false);
    assert_eq!(c.closed_with(), Some((ClientEnd::Truncated, 2)));
    let mut c = Client::open();
    c.request(1);
    c.conn.on_eof(true, c.now);
    c.pump(false);
    assert_eq!(c.closed_with(), Some((ClientEnd::RecvFailed, 1)));
}

#[test]
fn bad_and_unasked_responses_end_the_connection() {
    let mut c = Client::open();
    c.request(1);
    c.recv(b"SMTP ready\r\n\r\n");
    assert_eq!(
        c.closed_with(),
        Some((ClientEnd::Malformed(ClientError::BadStatusLine), 1))
    );
    assert_eq!(
        ClientEnd::Malformed(ClientError::BadStatusLine).to_string(),
        "malformed status line"
    );
    let mut c = Client::open();
    c.recv(OK);
    assert_eq!(c.closed_with(), Some((ClientEnd::Unsolicited, 0)));
    let mut c = Client::open();
    c.request(1);
    c.recv(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert_eq!(c.closed_with(), Some((ClientEnd::Upgraded, 1)));
}

#[test]
fn head_responses_have_no_body() {
    let mut c = Client::open();
    c.conn.request(
        GET,
        Request {
            tag: 1,
            head: true,
            upgrade: false,
            connect: false,
        },
        c.now,
    );
    c.conn.request(GET, get(2), c.now);
    c.pump(false);
    c.recv(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n");
    c.recv(OK);
    let r = c.responses();
    assert_eq!(
        r.iter().map(|r| (r.tag, r.body_len)).collect::<Vec<_>>(),
        [(1, 0), (2, 2)]
    );
}

#[test]
fn a_send_failure_or_the_owner_ends_it() {
    let mut c = Client::open();
    c.conn.request(GET, get(1), c.now);
    c.pump(true);
    c.inflight.take();
    c.conn.on_send_failed(libc::EPIPE);
    c.pump(false);
    assert_eq!(
        c.closed_with(),
        Some((ClientEnd::SendFailed(libc::EPIPE), 1))
    );
    let mut c = Client::open();
    c.request(1);
    c.conn.close();
    c.conn.close();
    c.pump(false);
    assert_eq!(c.closed_with(), Some((ClientEnd::Local, 1)));
    let closes = c
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Closed { .. }))
        .count();
    assert_eq!(closes, 1, "exactly one Closed");
}

#[test]
fn against_the_server_driver() {
    // The client's bytes go to a server connection in memory and its answers
    // come back: three pipelined requests, then one that closes.
    let mut server = Harness::new(None);
    let mut c = Client::open();
    for tag in 1..=3 {
        c.conn.request(GET, get(tag), c.now);
    }
    c.conn.request(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        get(4),
        c.now,
    );
    c.pump(false);
    server.recv(&std::mem::take(&mut c.wire));
    let answer = std::mem::take(&mut server.wire);
    for piece in answer.chunks(7) {
        c.recv(piece);
    }
    let r = c.responses();
    assert_eq!(r.iter().map(|r| r.tag).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(r.iter().all(|r| r.status == 200 && r.body_len == 2));
    assert_eq!(c.closed_with(), Some((ClientEnd::NotReusable, 0)));
}

#[test]
fn chunked_bodies_count_their_decoded_bytes() {
    let mut c = Client::open();
    c.request(1);
    c.request(2);
    c.recv(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n");
    c.recv(OK);
    let r = c.responses();
    assert_eq!(
        r.iter().map(|r| (r.tag, r.body_len)).collect::<Vec<_>>(),
        [(1, 3), (2, 2)]
    );
}

/// A client that delivers bodies (as the proxy's connections do).
fn delivering() -> Client {
    let mut c = Client::open();
    c.conn = ClientConn::new(
        addr(),
        7,
        ClientSettings {
            deliver: 64 * 1024,
            tunnel_idle: Duration::from_secs(30),
            send_idle: Duration::from_secs(2),
            ..settings()
        },
        c.now,
    );
    c.connecting = false;
    let _ = c.conn.poll_action();
    c.conn.on_connected(Ok(()));
    c.pump(false);
    c
}

const UPGRADE: Request = Request {
    tag: 3,
    head: false,
    upgrade: true,
    connect: false,
};

#[test]
fn a_101_to_an_upgrade_request_becomes_a_tunnel() {
    let mut c = delivering();
    assert!(c.conn.request(GET, UPGRADE, c.now));
    c.pump(false);
    c.recv(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nfirst");
    assert!(c.events.contains(&ClientEvent::Head));
    assert_eq!(c.conn.head().status, 101);
    let mut body = Vec::new();
    c.conn.take_body(&mut body);
    assert_eq!(body, b"first");
    // Bytes both ways, unframed; a quiet tunnel lives for tunnel_idle.
    assert!(c.conn.send_more(b"up", c.now));
    c.pump(false);
    assert!(c.wire.ends_with(b"up"));
    c.at(20.0);
    c.recv(b"HTTP/1.1 200 OK\r\n\r\n");
    c.conn.take_body(&mut body);
    assert_eq!(body, b"firstHTTP/1.1 200 OK\r\n\r\n");
    c.at(45.0);
    assert_eq!(c.closed_with(), None);
    // The peer's close ends it as a complete response.
    c.conn.on_eof(false, c.now);
    c.pump(false);
    let r = c.responses();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].status, r[0].tag, r[0].last), (101, 3, true));
    assert_eq!(c.closed_with(), Some((ClientEnd::PeerClosed, 0)));
}

#[test]
fn a_quiet_tunnel_times_out_and_an_unasked_101_ends_it() {
    let mut c = delivering();
    assert!(c.conn.request(GET, UPGRADE, c.now));
    c.pump(false);
    c.recv(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
    c.at(29.0);
    assert_eq!(c.closed_with(), None);
    c.at(31.0);
    assert_eq!(c.closed_with(), Some((ClientEnd::ResponseTimeout, 1)));
    // A 101 to a request that did not ask for it.
    let mut c = delivering();
    c.request(1);
    c.recv(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
    assert_eq!(c.closed_with(), Some((ClientEnd::Upgraded, 1)));
}

#[test]
fn request_bytes_the_peer_does_not_take_time_out() {
    let mut c = delivering();
    assert!(c.conn.request(GET, get(1), c.now));
    // The send never completes: the socket takes nothing. The send idle
    // time (2 s) ends it before the response timeout (3 s).
    c.pump(true);
    let at = |c: &mut Client, secs: f64| {
        c.now = c.t0 + Duration::from_secs_f64(secs);
        c.conn.on_timer(c.now);
        c.pump(true);
    };
    at(&mut c, 1.5);
    assert_eq!(c.closed_with(), None);
    at(&mut c, 2.5);
    assert_eq!(c.closed_with(), Some((ClientEnd::ResponseTimeout, 1)));
}
