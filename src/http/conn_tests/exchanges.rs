//! Exchanges that answer later or stream: wake-ups, cancellation, chunked
//! and close-delimited framing, short streams, backpressure.

use super::*;

#[test]
fn pending_reply_answers_when_woken() {
    let mut h = Harness::new();
    let t0 = h.now;
    assert!(matches!(
        h.feed(b"GET /delay HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n"),
        Step::NeedInput
    ));
    // Nothing yet; the pipelined request waits behind it.
    assert!(h.out.is_empty());
    assert_eq!(h.conn.waiting(), Waiting::Handler);
    assert_eq!(h.conn.wake_at(), Some(t0 + Duration::from_millis(100)));
    h.now += Duration::from_millis(50);
    let _ = h.feed(b"");
    assert!(h.out.is_empty());
    h.now += Duration::from_millis(50);
    let _ = h.feed(b"");
    assert_eq!(
        responses(&h.take()),
        vec![(200, "late".into()), (200, "/after".into())]
    );
    assert_eq!(h.conn.wake_at(), None);
    assert_eq!(h.conn.waiting(), Waiting::Idle);
}

#[test]
fn pending_reply_is_cancelled_when_the_connection_ends() {
    let mut h = Harness::new();
    let _ = h.feed(b"GET /delay HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.svc.cancelled.get(), 0);
    h.conn.abandon(&mut h.obs);
    h.conn.finish();
    assert_eq!(h.svc.cancelled.get(), 1);
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.wake_at(), None);
}

#[test]
fn stream_of_unknown_length_is_chunked() {
    let mut h = Harness::new();
    let _ = h.feed(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = h.take();
    assert!(first.contains("Transfer-Encoding: chunked\r\n"), "{first}");
    assert!(first.ends_with("\r\n5\r\ntick\n\r\n"), "{first}");
    assert!(h.conn.wake_at().is_some());
    let mut all = first;
    for _ in 0..3 {
        h.now += Duration::from_millis(10);
        let _ = h.feed(b"");
        all.push_str(&h.take());
    }
    assert!(all.ends_with("5\r\ntick\n\r\n0\r\n\r\n"), "{all}");
    assert_eq!(responses(&all), vec![(200, "tick\ntick\ntick\n".into())]);
    assert_eq!(h.obs.streams, vec![(Ticket(1), 15)]);
    // The connection is ready for the next request.
    let _ = h.feed(b"GET /n HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(responses(&h.take()), vec![(200, "/n".into())]);
}

#[test]
fn stream_over_http10_is_close_delimited() {
    let mut h = Harness::new();
    let _ = h.feed(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let s = h.take();
    assert!(
        !s.contains("chunked") && !s.contains("Content-Length"),
        "{s}"
    );
    assert!(s.contains("Connection: close\r\n"), "{s}");
    let mut step = Step::NeedInput;
    for _ in 0..3 {
        h.now += Duration::from_millis(10);
        step = h.feed(b"");
    }
    assert!(matches!(step, Step::Close));
    assert!(h.take().ends_with("tick\n"));
}

#[test]
fn short_stream_cuts_the_connection() {
    let mut h = Harness::new();
    let step = h.feed(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
    // Promised 10 bytes, made 5: the connection ends instead of lying.
    assert!(matches!(step, Step::Close), "{step:?}");
    let s = h.take();
    assert!(s.contains("Content-Length: 10\r\n"));
    assert!(s.ends_with("tick\n"));
    assert_eq!(h.obs.streams, vec![(Ticket(1), 5)]);
}

#[test]
fn head_of_a_stream_sends_no_body() {
    let mut h = Harness::new();
    let _ = h.feed(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let s = h.take();
    assert!(s.ends_with("Transfer-Encoding: chunked\r\n\r\n"), "{s}");
    assert_eq!(h.conn.waiting(), Waiting::Idle);
}

#[test]
fn streamed_echo_applies_backpressure() {
    let mut h = Harness::new();
    let total = 3 * RequestBody::WINDOW;
    let head = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n");
    let _ = h.feed(head.as_bytes());
    // Nothing is sent before the first body bytes: the head goes with them.
    assert!(h.out.is_empty());
    let body = vec![b'a'; total];
    let step = h.feed(&body);
    // The echo produced one high-water's worth; the rest waits, unconsumed.
    assert!(matches!(step, Step::Flush), "{step:?}");
    assert!(h.conn.buffered() > 0);
    assert!(h.conn.buffered() <= total);
    let mut echoed = h.take();
    loop {
        match h.feed(b"") {
            Step::Flush => echoed.push_str(&h.take()),
            Step::NeedInput => {
                echoed.push_str(&h.take());
                break;
            }
            s => panic!("{s:?}"),
        }
    }
    let r = responses(&echoed);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1.len(), total);
    assert_eq!(h.conn.buffered(), 0);
    assert_eq!(h.conn.waiting(), Waiting::Idle);
}

#[test]
fn body_is_collected_by_a_pending_task() {
    let mut h = Harness::new();
    let _ = h.feed(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc");
    assert!(h.out.is_empty());
    assert_eq!(h.conn.waiting(), Waiting::Body(h.now));
    let _ = h.feed(b"def");
    assert_eq!(responses(&h.take()), vec![(200, "abcdef".into())]);
}

#[test]
fn body_timeout_after_the_head_is_out_closes_silently() {
    let mut h = Harness::new();
    let _ = h.feed(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    let s = h.take();
    assert!(s.starts_with("HTTP/1.1 200"));
    assert!(matches!(h.timeout(), Step::Close));
    // The 200 is already out: no 408 is appended to its body.
    assert!(h.out.is_empty());
    assert_eq!(h.conn.error(), Some(Error::BodyTimeout));
    assert_eq!(h.obs.streams, vec![(Ticket(1), 3)]);
}
