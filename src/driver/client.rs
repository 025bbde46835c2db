//! The client side of one outgoing connection: the connect, requests out,
//! responses in (read by the HTTP/1 codec's client role), and every lifecycle
//! decision — the connect and response deadlines, pairing each response with
//! its request, closing — made here.
//!
//! Its owner (the load generator today; a proxy's upstream connections
//! later) queues requests with [`ClientConn::request`] and reads what
//! happened as [`ClientEvent`]s: `Connected`, each `Response` with its tag,
//! status, sizes and times, and exactly one `Closed` with the reason and the
//! number of requests left unanswered. The executor feeds it completions and
//! carries out its [`Action`]s (`Connect`, `Send`, `Close`), as for a server
//! connection.

use std::collections::VecDeque;
use std::time::Instant;

use super::action::Action;
pub use super::client_end::ClientEnd;
pub use super::client_settings::ClientSettings;
use crate::http::client::{ClientError, Event, ResponseReader};
use crate::upstream::spec::Address;

/// What the owner says about a request it queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The owner's tag, handed back with the response.
    pub tag: u64,
    /// A HEAD request: its response has no body, whatever its framing says.
    pub head: bool,
    /// The request asks to switch protocols: a `101` answer (when bodies
    /// are delivered) turns the connection into a tunnel whose bytes are the
    /// response's body until the peer closes, and whose queued bytes go out
    /// as they are.
    pub upgrade: bool,
    /// A `CONNECT` (with `upgrade` set): a 2xx answer switches the
    /// connection as a `101` does.
    pub connect: bool,
}

/// A complete response and its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request's tag.
    pub tag: u64,
    /// Status code.
    pub status: u16,
    /// Body bytes (decoded, for a chunked body).
    pub body_len: u64,
    /// When the request was queued.
    pub queued: Instant,
    /// When the response head was read.
    pub head_at: Instant,
    /// When the response ended.
    pub done: Instant,
    /// The connection carries nothing after this response: it closes next
    /// (`Connection: close`, HTTP/1.0, or a body delimited by the close).
    pub last: bool,
}

/// What happened on an outgoing connection, for its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The connect completed; queued requests go out.
    Connected,
    /// (Delivering bodies only.) The head of the oldest request's response
    /// arrived: see [`ClientConn::head`]; its body follows in
    /// [`ClientConn::take_body`].
    Head,
    /// This many bytes arrived (heads and framing included).
    Received(usize),
    /// A response is complete.
    Response(Response),
    /// The connection ended (always the last event): why, and how many
    /// requests it leaves unanswered.
    Closed {
        /// Why.
        why: ClientEnd,
        /// Requests queued or sent and never answered.
        lost: u64,
    },
}

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The connect is in flight (or about to be asked for).
    Connecting { since: Instant },
    /// Requests go out and responses come in.
    Open,
    /// Ended: the executor cancels what is in flight and frees the slot.
    Closed,
}

/// A request queued or sent, waiting for its response.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    req: Request,
    queued: Instant,
}

/// One outgoing connection, sans-IO.
#[derive(Debug)]
pub struct ClientConn {
    state: State,
    addr: Address,
    /// The owner's key for this connection (the executor hands it back with
    /// every event).
    owner: u64,
    settings: ClientSettings,
    /// The `Connect` action is yet to be handed out.
    connect_due: bool,
    /// The `Close` action is yet to be handed out.
    close_due: Option<ClientEnd>,
    reader: ResponseReader,
    /// Requests not yet handed to a send.
    out: Vec<u8>,
    /// An empty buffer to collect requests in while a send has `out`.
    spare: Vec<u8>,
    /// A send is in flight.
    sending: bool,
    /// Unanswered requests, oldest first.
    waiting: VecDeque<Waiting>,
    /// The response being read: body bytes so far, and when its head came.
    body_len: u64,
    head_at: Option<Instant>,
    events: VecDeque<ClientEvent>,
    /// Delivered body bytes the owner has not taken.
    body: Vec<u8>,
    /// The last send or receive that moved bytes.
    progress: Instant,
    /// Bytes of the send in flight.
    in_flight: usize,
    /// Bytes received in all.
    received: u64,
    /// The last send that moved bytes (or when bytes were queued behind
    /// none).
    sent_at: Instant,
    /// A `101` switched the connection: it is a tunnel now.
    tunnel: bool,
    /// A FastCGI peer's records, read into HTTP/1.1 bytes.
    fcgi: Option<crate::fastcgi::Inbound>,
    /// Those bytes, between a read and the response reader.
    fcgi_bytes: Vec<u8>,
}

impl ClientConn {
    /// A connection to `addr` starting at `now`, for the owner's `owner` key.
    pub fn new(addr: Address, owner: u64, settings: ClientSettings, now: Instant) -> ClientConn {
        let settings_fcgi = settings
            .fastcgi
            .map(|keep_conn| crate::fastcgi::Inbound::new(!keep_conn));
        ClientConn {
            state: State::Connecting { since: now },
            addr,
            owner,
            reader: ResponseReader::new(settings.limits),
            settings,
            connect_due: true,
            close_due: None,
            out: Vec::new(),
            spare: Vec::new(),
            sending: false,
            waiting: VecDeque::new(),
            body_len: 0,
            head_at: None,
            events: VecDeque::new(),
            body: Vec::new(),
            progress: now,
            in_flight: 0,
            received: 0,
            sent_at: now,
            tunnel: false,
            fcgi: settings_fcgi,
            fcgi_bytes: Vec::new(),
        }
    }

    // ---- the owner's side --------------------------------------------------

    /// Queues a request (its encoded bytes) behind those queued before; it
    /// goes out once the connection is open. False, and nothing queued, when
    /// the connection has ended.
    pub fn request(&mut self, bytes: &[u8], req: Request, now: Instant) -> bool {
        if self.state == State::Closed {
            return false;
        }
        if self.waiting.is_empty() {
            self.reader.set_head_request(req.head);
            self.reader.set_connect_request(req.connect);
        }
        if let Some(f) = &mut self.fcgi {
            f.start(req.head);
        }
        if self.unsent() == 0 {
            self.sent_at = now;
        }
        self.out.extend_from_slice(bytes);
        self.waiting.push_back(Waiting { req, queued: now });
        true
    }

    /// Queues more bytes of the request in progress (its body), behind
    /// what is queued. False when the connection has ended.
    pub fn send_more(&mut self, bytes: &[u8], now: Instant) -> bool {
        if self.state == State::Closed {
            return false;
        }
        if self.unsent() == 0 {
            self.sent_at = now;
        }
        self.out.extend_from_slice(bytes);
        true
    }

    /// Bytes queued or being sent and not yet taken by the socket.
    pub fn unsent(&self) -> usize {
        self.out.len() + self.in_flight
    }

    /// The head of the response being read (or of the last one read).
    pub fn head(&self) -> &crate::http::client::ResponseHead {
        self.reader.head()
    }

    /// Moves the delivered body bytes waiting into `into` (swapping buffers
    /// when `into` is empty, so nothing is copied); receiving resumes.
    pub fn take_body(&mut self, into: &mut Vec<u8>) {
        if into.is_empty() {
            std::mem::swap(into, &mut self.body);
        } else {
            into.extend_from_slice(&self.body);
            self.body.clear();
        }
    }

    /// Gives the connection a buffer for the body bytes it delivers when it
    /// holds none (taking the body leaves it without one), so a busy
    /// connection reuses buffers instead of growing fresh ones.
    pub fn stock_body(&mut self, bufs: &mut super::BufPool) {
        if self.body.capacity() == 0 {
            self.body = bufs.get();
        }
    }

    /// Sets how many delivered body bytes are held before receiving pauses.
    pub fn set_deliver(&mut self, n: usize) {
        self.settings.deliver = n.max(1);
    }

    /// Delivered body bytes waiting to be taken.
    pub fn body_waiting(&self) -> usize {
        self.body.len()
    }

    /// Bytes received on this connection in all (heads and framing too).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Ends the connection now; the unanswered requests are reported lost.
    pub fn close(&mut self) {
        self.end(ClientEnd::Local);
    }

    /// The next event for the owner.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The owner's key for this connection.
    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// Requests queued or sent and not answered yet.
    pub fn unanswered(&self) -> usize {
        self.waiting.len()
    }

    // ---- the executor's side: inputs ---------------------------------------

    /// The connect completed (`Err`: its errno).
    pub fn on_connected(&mut self, res: Result<(), i32>) {
        if !matches!(self.state, State::Connecting { .. }) {
            return;
        }
        match res {
            Ok(()) => {
                self.state = State::Open;
                self.events.push_back(ClientEvent::Connected);
            }
            Err(e) => self.end(ClientEnd::ConnectFailed(e)),
        }
    }

    /// The transport under it failed (a TLS handshake): it ends with `why`.
    pub fn on_transport_failed(&mut self, why: ClientEnd) {
        self.end(why);
    }

    /// Bytes arrived.
    pub fn on_recv(&mut self, data: &[u8], now: Instant) {
        if self.state != State::Open {
            return;
        }
        self.events.push_back(ClientEvent::Received(data.len()));
        self.progress = now;
        self.received += data.len() as u64;
        if let Some(f) = &mut self.fcgi {
            // Records in, the HTTP/1.1 response they carry to the reader.
            let mut http = std::mem::take(&mut self.fcgi_bytes);
            http.clear();
            if let Err(e) = f.feed(data, &mut http) {
                self.fcgi_bytes = http;
                return self.end(ClientEnd::Malformed(ClientError::FastCgi(e.as_str())));
            }
            self.read_http(&http, now);
            self.fcgi_bytes = http;
            return;
        }
        self.read_http(data, now);
    }

    /// What a FastCGI peer wrote to its error stream since the last take.
    pub fn take_stderr(&mut self) -> Vec<u8> {
        self.fcgi
            .as_mut()
            .map(|f| f.take_stderr())
            .unwrap_or_default()
    }

    /// Response bytes for the reader.
    fn read_http(&mut self, data: &[u8], now: Instant) {
        if self.state != State::Open {
            return;
        }
        let deliver = self.settings.deliver > 0;
        let mut rest = data;
        loop {
            let p = match self.reader.feed(rest) {
                Ok(p) => p,
                Err(e) => return self.end(ClientEnd::Malformed(e)),
            };
            match p.event {
                Event::NeedInput => return,
                Event::Head if self.waiting.is_empty() => {
                    return self.end(ClientEnd::Unsolicited);
                }
                Event::Head => {
                    self.head_at = Some(now);
                    self.body_len = 0;
                    if deliver {
                        self.events.push_back(ClientEvent::Head);
                    }
                }
                Event::Body(r) => {
                    self.body_len += r.len() as u64;
                    if deliver {
                        self.body.extend_from_slice(&rest[r]);
                    }
                }
                Event::Complete { reuse } => {
                    self.respond(!reuse, now);
                    if !reuse {
                        return self.end(ClientEnd::NotReusable);
                    }
                }
                Event::Upgraded
                    if deliver && self.waiting.front().is_some_and(|w| w.req.upgrade) =>
                {
                    // The bytes after the head are the new protocol's.
                    self.reader.tunnel();
                    self.tunnel = true;
                    self.head_at = Some(now);
                    self.body_len = 0;
                    self.events.push_back(ClientEvent::Head);
                }
                Event::Upgraded => return self.end(ClientEnd::Upgraded),
            }
            rest = &rest[p.consumed..];
        }
    }

    /// The peer shut its sending side (or the connection reset: `reset`).
    pub fn on_eof(&mut self, reset: bool, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if reset {
            return self.end(ClientEnd::RecvFailed);
        }
        match self.reader.eof() {
            // A body delimited by the close ends with it.
            Ok(true) if self.waiting.is_empty() => self.end(ClientEnd::Unsolicited),
            Ok(true) => {
                self.respond(true, now);
                self.end(ClientEnd::PeerClosed);
            }
            Ok(false) => self.end(ClientEnd::PeerClosed),
            Err(ClientError::Truncated) => self.end(ClientEnd::Truncated),
            Err(e) => self.end(ClientEnd::Malformed(e)),
        }
    }

    /// A send of `buf` moved `n` bytes (the buffer comes back).
    pub fn on_sent(&mut self, mut buf: Vec<u8>, n: usize, now: Instant) {
        self.sending = false;
        self.in_flight = 0;
        self.progress = now;
        if n > 0 {
            self.sent_at = now;
        }
        if self.state == State::Closed {
            return;
        }
        if n == 0 {
            // A zero-byte send of a non-empty buffer would only repeat.
            return self.end(ClientEnd::SendFailed(libc::EPIPE));
        }
        if n < buf.len() {
            // The rest goes first, then what was queued meanwhile.
            buf.drain(..n);
            buf.extend_from_slice(&self.out);
            self.out.clear();
            std::mem::swap(&mut self.out, &mut buf);
        }
        buf.clear();
        if self.spare.capacity() == 0 {
            self.spare = buf;
        }
    }

    /// A send failed with this errno: the peer is gone.
    pub fn on_send_failed(&mut self, errno: i32) {
        self.sending = false;
        self.in_flight = 0;
        self.end(ClientEnd::SendFailed(errno));
    }

    /// Time passed: the connect or response deadline may be due.
    pub fn on_timer(&mut self, now: Instant) {
        if self.deadline().is_none_or(|at| at > now) {
            return;
        }
        match self.state {
            State::Connecting { .. } => self.end(ClientEnd::ConnectTimeout),
            State::Open => self.end(ClientEnd::ResponseTimeout),
            State::Closed => {}
        }
    }

    // ---- the executor's side: outputs --------------------------------------

    /// The next thing for the executor to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(why) = self.close_due.take() {
            return Some(Action::Close {
                why: why.close_reason(),
                note: None,
            });
        }
        if self.connect_due {
            self.connect_due = false;
            return Some(Action::Connect {
                addr: self.addr.clone(),
            });
        }
        if self.state == State::Open && !self.sending && !self.out.is_empty() {
            self.sending = true;
            let buf = std::mem::replace(&mut self.out, std::mem::take(&mut self.spare));
            self.in_flight = buf.len();
            return Some(Action::Send { buf, from: 0 });
        }
        None
    }

    /// When the connect or the oldest request times out.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Connecting { since } => Some(since + self.settings.connect_timeout),
            State::Open if self.settings.deliver > 0 => {
                let send = (self.unsent() > 0).then(|| self.sent_at + self.settings.send_idle);
                let read = if self.waiting.is_empty() || self.body.len() >= self.settings.deliver {
                    None
                } else if self.tunnel {
                    Some(self.progress + self.settings.tunnel_idle)
                } else if self.head_at.is_some() {
                    Some(self.progress + self.settings.read_idle)
                } else {
                    Some(self.progress + self.settings.response_timeout)
                };
                match (send, read) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Open => self
                .waiting
                .front()
                .map(|w| w.queued + self.settings.response_timeout),
            State::Closed => None,
        }
    }

    /// Whether the executor should keep a receive armed.
    pub fn wants_recv(&self) -> bool {
        self.state == State::Open
            && (self.settings.deliver == 0 || self.body.len() < self.settings.deliver)
    }

    /// Whether the connection has ended: the executor frees the slot once its
    /// operations have completed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    // ---- internals ---------------------------------------------------------

    /// The oldest request's response is complete.
    fn respond(&mut self, last: bool, now: Instant) {
        let Some(w) = self.waiting.pop_front() else {
            return;
        };
        self.events.push_back(ClientEvent::Response(Response {
            tag: w.req.tag,
            status: self.reader.head().status,
            body_len: self.body_len,
            queued: w.queued,
            head_at: self.head_at.take().unwrap_or(now),
            done: now,
            last,
        }));
        self.body_len = 0;
        if let Some(next) = self.waiting.front() {
            self.reader.set_head_request(next.req.head);
            self.reader.set_connect_request(next.req.connect);
        }
    }

    /// Ends the connection: the executor is told to close, the owner why.
    fn end(&mut self, why: ClientEnd) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.connect_due = false;
        self.close_due = Some(why);
        let lost = self.waiting.len() as u64;
        self.waiting.clear();
        self.reader.reset();
        self.out = Vec::new();
        self.spare = Vec::new();
        // Delivered body bytes stay for the owner to take.
        self.events.push_back(ClientEvent::Closed { why, lost });
    }
}
