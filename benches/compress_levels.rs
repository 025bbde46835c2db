//! What each coding and level costs on JavaScript-like text: compression
//! speed (MB/s of input, one core) and the size left, to choose
//! `[site.compression] levels` by. Bodies are compressed as they are sent
//! at most 16 KiB of input per body per turn of a worker's loop, so the
//! time one such piece takes (printed) is how long a turn can grow.
//!
//!     cargo bench --bench compress_levels
//!
//! The text is generated with a fixed seed (the same as `scripts/bench`'s
//! `app.js`): function lines with names drawn from 800 random words.

use std::time::Instant;

use peregrine::compress::{Coding, Encoder, compress};

/// A small deterministic generator (splitmix64).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn text(len: usize) -> Vec<u8> {
    let mut s = 7u64;
    let words: Vec<String> = (0..800)
        .map(|_| {
            let n = 3 + (next(&mut s) % 8) as usize;
            (0..n)
                .map(|_| (b'a' + (next(&mut s) % 26) as u8) as char)
                .collect()
        })
        .collect();
    let mut out = String::new();
    while out.len() < len {
        let w = |s: &mut u64| &words[(next(s) % 800) as usize];
        let (a, b, c, d) = (w(&mut s), w(&mut s), w(&mut s), w(&mut s));
        let n = next(&mut s) % 1000;
        out.push_str(&format!(
            "function {a}({b}, {c}) {{ return {b}.{d}({c} + {n}); }}\n"
        ));
    }
    out.truncate(len);
    out.into_bytes()
}

fn main() {
    let body = text(1 << 20);
    println!("coding level     MB/s   ratio   16 KiB piece");
    for (c, levels) in [
        (Coding::Gzip, &[1u32, 5, 6, 9][..]),
        (Coding::Br, &[1, 4, 5, 6, 9, 11][..]),
        (Coding::Zstd, &[1, 3, 6, 12, 19][..]),
    ] {
        for &l in levels {
            // Slow levels get less input, so each row takes about a second.
            let len = if (c == Coding::Br && l >= 9) || (c == Coding::Zstd && l >= 12) {
                body.len() / 8
            } else {
                body.len()
            };
            let t = Instant::now();
            let z = compress(c, l, &body[..len]);
            let s = t.elapsed().as_secs_f64();
            let mbs = len as f64 / s / 1e6;
            println!(
                "{:<6} {:>5} {:>8.1} {:>7.2} {:>11.2} ms",
                c.name(),
                l,
                mbs,
                len as f64 / z.len() as f64,
                16384.0 / (mbs * 1e6) * 1e3
            );
        }
    }
    // A slow level's body goes 1 KiB a turn; encoders buffer, so some
    // pushes do a block's work at once: the longest one is the turn's cost.
    println!("\nlongest single push of 1 KiB (256 KiB in all):");
    for (c, l) in [
        (Coding::Br, 11u32),
        (Coding::Br, 9),
        (Coding::Br, 7),
        (Coding::Br, 6),
        (Coding::Br, 4),
        (Coding::Zstd, 19),
        (Coding::Zstd, 12),
        (Coding::Zstd, 9),
        (Coding::Zstd, 3),
        (Coding::Gzip, 9),
    ] {
        let mut e = Encoder::new(c, l);
        let mut out = Vec::new();
        let mut worst = 0f64;
        for piece in body[..256 * 1024].chunks(1024) {
            let t = Instant::now();
            e.push(piece, &mut out).unwrap();
            worst = worst.max(t.elapsed().as_secs_f64());
            out.clear();
        }
        println!("{:<6} {:>5} {:>8.2} ms", c.name(), l, worst * 1e3);
    }
}
