//! HPACK (`peregrine::http2::hpack`): arbitrary header blocks through the
//! decoder, and fields built from the input through the response encoder.
//!
//! Properties:
//! - decoding never panics, and the size it returns is the RFC 9113 §6.5.2
//!   size of the fields it handed out (all of them, under an unlimited
//!   bound), and with a bound of N it hands out exactly the fields whose
//!   running size stays within N;
//! - what the encoder writes decodes back to the same fields (names
//!   lowercased), block after block on one pair of contexts, across a
//!   change of the client's table size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::http2::hpack::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    // Decoding arbitrary bytes, twice on the same context (a first block
    // may leave entries the second refers to).
    let mut d = Decoder::new(4096);
    let mut seen = Vec::new();
    if let Ok(size) = d.decode(rest, usize::MAX, |n, v| seen.push((n.to_vec(), v.to_vec()))) {
        let sum: usize = seen.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert_eq!(size, sum);
        let mut d2 = Decoder::new(4096);
        let bound = usize::from(flags) * 16;
        let mut got = 0;
        let size2 = d2
            .decode(rest, bound, |_, _| got += 1)
            .expect("the same block decodes");
        assert_eq!(size2, size);
        let mut run = 0;
        let within = seen
            .iter()
            .take_while(|(n, v)| {
                run += n.len() + v.len() + 32;
                run <= bound
            })
            .count();
        assert_eq!(got, within);
    }
    let _ = d.decode(rest, usize::MAX, |_, _| {});

    // Encoding fields taken from the input, then decoding them back.
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for (round, piece) in rest.chunks(64).enumerate() {
        if flags & 1 != 0 && round == 1 {
            e.set_table_size(usize::from(flags) * 8);
        }
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for pair in piece.chunks(8) {
            let (n, v) = pair.split_at(pair.len().min(3));
            let name: Vec<u8> = n.iter().map(|b| b'a' + b % 26).collect();
            fields.push((name, v.to_vec()));
        }
        let mut block = Vec::new();
        e.begin(&mut block);
        let status = 100 + u16::from(piece[0]) % 500;
        e.status(&mut block, status);
        e.indexed(&mut block, b"server", b"peregrine");
        for (n, v) in &fields {
            let upper: Vec<u8> = n.iter().map(u8::to_ascii_uppercase).collect();
            e.field(&mut block, if round % 2 == 0 { n } else { &upper }, v);
        }
        let mut back = Vec::new();
        d.decode(&block, usize::MAX, |n, v| {
            back.push((n.to_vec(), v.to_vec()))
        })
        .expect("our own block decodes");
        assert_eq!(
            back[0],
            (b":status".to_vec(), status.to_string().into_bytes())
        );
        assert_eq!(back[1], (b"server".to_vec(), b"peregrine".to_vec()));
        assert_eq!(&back[2..], &fields[..]);
    }
});
