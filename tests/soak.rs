//! A short mixed-load soak: downloads cut short, pipelined bursts, bodies,
//! garbage and resets from several threads at once for a few seconds; then
//! the server must be idle, consistent and stop cleanly.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn mixed_load_then_a_clean_stop() {
    let root = tempdir("soak");
    let big = write_random(&root.join("big.bin"), 2 * 1024 * 1024 + 3);
    write_random(&root.join("small.bin"), 5000);
    let mut s = Server::start(&[
        "--root",
        root.to_str().unwrap(),
        "--builtins",
        "--workers",
        "2",
        "--access-log",
        "off",
    ]);
    let addr = s.addr;
    let until = Instant::now() + Duration::from_secs(4);
    let workers: Vec<_> = (0..6u64)
        .map(|seed| {
            let big = big.clone();
            std::thread::spawn(move || {
                let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut rnd = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let mut full = 0;
                while Instant::now() < until {
                    let Ok(mut c) = TcpStream::connect(addr) else { continue };
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    match rnd() % 6 {
                        0 => {
                            c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
                            let mut buf = vec![0u8; (rnd() % 500_000) as usize + 1];
                            let _ = c.read_exact(&mut buf);
                            reset(c);
                        }
                        1 => {
                            c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
                            let r = read_response(&mut c, false).expect("full download");
                            assert!(r.body == big, "download corrupted");
                            full += 1;
                        }
                        2 => {
                            let burst = b"GET /small.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n".repeat(8);
                            c.write_all(&burst).unwrap();
                            for _ in 0..16 {
                                assert_eq!(read_response(&mut c, false).unwrap().status, 200);
                            }
                        }
                        3 => {
                            let body = vec![b'q'; (rnd() % 100_000) as usize];
                            let mut req = format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                            req.extend_from_slice(&body);
                            c.write_all(&req).unwrap();
                            assert!(read_response(&mut c, false).unwrap().body == body);
                        }
                        4 => {
                            let junk: Vec<u8> = (0..(rnd() % 300)).map(|_| rnd() as u8).collect();
                            let _ = c.write_all(&junk);
                            reset(c);
                        }
                        _ => {
                            let _ = c.write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 50000\r\n\r\nsome");
                            reset(c);
                        }
                    }
                }
                full
            })
        })
        .collect();
    let full: u32 = workers
        .into_iter()
        .map(|w| w.join().expect("client thread"))
        .sum();
    assert!(full > 0);
    // Once the clients are gone, nothing is left open.
    std::thread::sleep(Duration::from_millis(1300));
    let mut active = u64::MAX;
    for _ in 0..40 {
        let v: serde_json::Value = serde_json::from_slice(&s.admin_get("/status").body).unwrap();
        active = v["totals"]["connections"]["active"].as_u64().unwrap();
        if active == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(active, 0, "connections left open");
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
    let err = s.stderr_text();
    assert!(!err.contains("panicked"), "{err}");
}
