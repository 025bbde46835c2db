//! Where the response cache lives: a store per worker (what Peregrine
//! does) against one store shared by all workers behind sharded locks
//! (the alternative), on the work of a cache hit: build the key, find the
//! variant, take a reference to the body, let it go after the response.
//!
//!     cargo bench --bench cache_store
//!
//! Each thread stands for a worker and asks for keys drawn from a hot set
//! (Zipf-like: a few keys get most requests). Printed: nanoseconds per
//! hit by thread count, for both; and the memory a hot set costs, which
//! the shared store pays once and per-worker stores once per worker.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use peregrine::cache::policy::Freshness;
use peregrine::cache::{Store, Stored};

const KEYS: usize = 2_000;
const BODY: usize = 4096;
const HITS: usize = 2_000_000;
const SHARDS: usize = 64;

fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A key index, most often a small one (about 80% of picks fall on the
/// first 20% of keys).
fn pick(state: &mut u64) -> usize {
    let u = (next(state) >> 11) as f64 / (1u64 << 53) as f64;
    ((u.powf(4.0)) * KEYS as f64) as usize % KEYS
}

fn key(i: usize, out: &mut String) {
    out.clear();
    out.push_str("shop.test/static/app-");
    out.push_str(itoa::Buffer::new().format(i));
    out.push_str(".js?v=3");
}

fn stored(body: &Rc<[u8]>) -> Stored {
    Stored {
        status: 200,
        content_type: Some("application/javascript".into()),
        headers: vec![
            ("ETag".into(), "\"abc\"".into()),
            ("Cache-Control".into(), "max-age=600".into()),
        ],
        body: body.clone(),
        vary: Vec::new(),
        stored_at: Instant::now(),
        fresh: Freshness {
            lifetime: 600,
            ..Freshness::default()
        },
    }
}

/// Per-worker stores: each thread fills its own and looks up in it.
fn per_worker(threads: usize) -> f64 {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut store = Store::new(1 << 34, 1 << 20);
                let body: Rc<[u8]> = vec![b'x'; BODY].into();
                let mut k = String::new();
                for i in 0..KEYS {
                    key(i, &mut k);
                    store.insert(&k, stored(&body));
                }
                let mut s = t as u64 + 1;
                barrier.wait();
                let start = Instant::now();
                let mut total = 0usize;
                for _ in 0..HITS {
                    key(pick(&mut s), &mut k);
                    let (_, item) = store.lookup(&k, |_| true).unwrap();
                    let b = item.body.clone();
                    total += b.len();
                    drop(b);
                }
                std::hint::black_box(total);
                start.elapsed()
            })
        })
        .collect();
    mean_ns(handles)
}

/// The shared store: shards of keys, each behind its lock.
type Shards = Arc<Vec<Mutex<HashMap<String, Arc<Item>>>>>;

struct Item {
    body: Arc<[u8]>,
    headers: Vec<(String, String)>,
}

/// One store for all threads: a key's shard is locked for the lookup, the
/// item's reference count is shared.
fn shared(threads: usize) -> f64 {
    let hasher = RandomState::new();
    let body: Arc<[u8]> = vec![b'x'; BODY].into();
    let shards: Shards = Arc::new((0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect());
    let mut k = String::new();
    for i in 0..KEYS {
        key(i, &mut k);
        let item = Arc::new(Item {
            body: body.clone(),
            headers: vec![("ETag".into(), "\"abc\"".into())],
        });
        shards[hasher.hash_one(&k) as usize % SHARDS]
            .lock()
            .unwrap()
            .insert(k.clone(), item);
    }
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (barrier, shards, hasher) = (barrier.clone(), shards.clone(), hasher.clone());
            std::thread::spawn(move || {
                let mut s = t as u64 + 1;
                let mut k = String::new();
                barrier.wait();
                let start = Instant::now();
                let mut total = 0usize;
                for _ in 0..HITS {
                    key(pick(&mut s), &mut k);
                    let item = shards[hasher.hash_one(&k) as usize % SHARDS]
                        .lock()
                        .unwrap()
                        .get(&k)
                        .cloned()
                        .unwrap();
                    let b = item.body.clone();
                    total += b.len() + item.headers.len();
                    drop(b);
                    drop(item);
                }
                std::hint::black_box(total);
                start.elapsed()
            })
        })
        .collect();
    mean_ns(handles)
}

fn mean_ns(handles: Vec<std::thread::JoinHandle<Duration>>) -> f64 {
    let n = handles.len() as f64;
    let sum: f64 = handles
        .into_iter()
        .map(|h| h.join().unwrap().as_nanos() as f64 / HITS as f64)
        .sum();
    sum / n
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "hit cost, ns per hit (mean over threads; {KEYS} keys of {BODY} bytes, {cpus} CPUs here)"
    );
    println!(
        "{:>8} {:>12} {:>12} {:>8}",
        "threads", "per-worker", "shared", "ratio"
    );
    for threads in [1, 2, 4, 8] {
        let p = (0..3).map(|_| per_worker(threads)).fold(f64::MAX, f64::min);
        let s = (0..3).map(|_| shared(threads)).fold(f64::MAX, f64::min);
        println!("{threads:>8} {p:>12.1} {s:>12.1} {:>8.2}", s / p);
    }
    let one = stored(&vec![b'x'; BODY].into()).size("shop.test/static/app-1000.js?v=3");
    println!();
    println!(
        "memory for a hot set of {KEYS} responses ({one} bytes each as the store counts them):"
    );
    for workers in [1, 2, 16] {
        println!(
            "  {workers:>2} workers: per-worker {:>6.1} MiB, shared {:>5.1} MiB",
            (one * KEYS as u64 * workers) as f64 / (1 << 20) as f64,
            (one * KEYS as u64) as f64 / (1 << 20) as f64
        );
    }
}
