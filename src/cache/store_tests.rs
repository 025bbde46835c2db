use super::*;

fn item(body: usize, vary: &[(&str, &str)]) -> Stored {
    Stored {
        status: 200,
        content_type: None,
        headers: vec![],
        body: vec![b'x'; body].into(),
        vary: vary
            .iter()
            .map(|(n, v)| ((*n).into(), v.to_string()))
            .collect(),
        stored_at: Instant::now(),
        fresh: Freshness::default(),
    }
}

#[test]
fn least_recently_used_goes_first() {
    let one = item(1000, &[]).size("a");
    let mut s = Store::new(one * 3, 10_000);
    assert!(s.insert("a", item(1000, &[])));
    assert!(s.insert("b", item(1000, &[])));
    assert!(s.insert("c", item(1000, &[])));
    assert!(s.lookup("a", |_| true).is_ok());
    assert!(s.insert("d", item(1000, &[])));
    assert!(
        s.lookup("b", |_| true).is_err(),
        "b was the least recently used"
    );
    assert!(s.lookup("a", |_| true).is_ok());
    assert_eq!(s.stats().evictions, 1);
    assert_eq!(s.stats().objects, 3);
    assert_eq!(s.stats().bytes, one * 3);
    assert!(!s.insert("big", item(20_000, &[])), "over max_object");
    s.configure(one, 10_000);
    assert_eq!(s.stats().objects, 1);
    assert!(
        s.lookup("d", |_| true).is_err(),
        "not the most recently used"
    );
    assert!(s.lookup("a", |_| true).is_ok());
}

#[test]
fn variants_purges_and_fills() {
    let mut s = Store::new(1 << 20, 1 << 20);
    s.insert("k", item(10, &[("accept-encoding", "gzip")]));
    s.insert("k", item(20, &[("accept-encoding", "br")]));
    s.insert("k", item(30, &[("accept-encoding", "gzip")]));
    assert_eq!(s.stats().objects, 2, "the same variant replaced");
    let (_, got) = s.lookup("k", |i| i.vary[0].1 == "gzip").unwrap();
    assert_eq!(got.body.len(), 30);
    assert!(s.lookup("k", |i| i.vary[0].1 == "zstd").unwrap_err());
    assert!(!s.lookup("nope", |_| true).unwrap_err());
    for i in 0..20 {
        s.insert("many", item(1, &[("x", &i.to_string())]));
    }
    assert_eq!(s.index["many"].len(), MAX_VARIANTS);
    s.insert("http://site/a/1", item(1, &[]));
    s.insert("https://site/a/2", item(1, &[]));
    s.insert("http://site/b", item(1, &[]));
    s.insert("https://site/b", item(1, &[]));
    s.insert("http://site/c", item(1, &[]));
    assert_eq!(s.purge(&Purge::Prefix("site/a/".into())), 2, "both schemes");
    assert_eq!(s.purge(&Purge::Key("https://site/b".into())), 1);
    assert_eq!(s.purge(&Purge::Key("site/b".into())), 1);
    assert_eq!(s.purge(&Purge::Key("site/b".into())), 0);
    assert_eq!(s.purge(&Purge::Prefix("https://".into())), 0);
    assert_eq!(s.purge(&Purge::Prefix("http://site/".into())), 1);
    assert_eq!(s.stats().purged, 5);
    // A handle goes stale when its response is replaced.
    let (h, _) = s.lookup("k", |i| i.vary[0].1 == "br").unwrap();
    assert!(s.start_refresh(h));
    assert!(!s.start_refresh(h), "one refresh at a time");
    assert!(s.replace(h, item(5, &[("accept-encoding", "br")])));
    assert!(!s.replace(h, item(5, &[])), "stale handle");
    // Fills.
    let w = Waker {
        slot: 3,
        generation: 9,
    };
    assert!(s.lock("f"));
    assert!(!s.lock("f"));
    assert!(s.wait("f", w));
    assert!(s.wait("f", w));
    s.unlock("f");
    let mut wakes = Vec::new();
    s.take_wakes(&mut wakes);
    assert_eq!(wakes, vec![w]);
    assert!(!s.wait("f", w));
    s.purge_prefix("");
    assert_eq!((s.stats().objects, s.stats().bytes), (0, 0));
}
