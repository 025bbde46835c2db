//! HdrHistogram text and binary exports: the classic `.hgrm` percentile table
//! and the base64 V2-compressed form that HdrHistogram log tools read.

use std::fmt::Write;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

/// The percentile distribution in `.hgrm` form, values in milliseconds (the
/// histogram holds microseconds), 5 ticks per half distance.
pub fn percentiles_text(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:14.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:14.12} {total:10}");
            }
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / 1000.0,
            h.stdev() / 1000.0,
            h.max() as f64 / 1000.0,
        )
    };
    let _ = writeln!(s, "#[Mean    = {mean:12.3}, StdDeviation   = {sd:12.3}]");
    let _ = writeln!(
        s,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    // HdrHistogram's sub-bucket count: 2 × 10^digits rounded up to a power of two.
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        h.buckets()
    );
    s
}

/// The histogram V2-compressed and base64-encoded (`HISTFAA…`), as in
/// HdrHistogram interval logs.
pub fn v2_base64(h: &Histogram<u64>) -> Result<String, String> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| format!("cannot encode the histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_footer() {
        let mut h = super::super::new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let t = percentiles_text(&h);
        assert!(
            t.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
            "{t}"
        );
        assert!(
            t.contains("#[Max     =       10.007, Total count    =         1000]"),
            "{t}"
        );
        assert!(t.contains("SubBuckets     =         2048]"), "{t}");
        let last = t
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap();
        assert!(last.contains("1.000000000000       1000"), "{last}");
        let b = v2_base64(&h).unwrap();
        assert!(b.starts_with("HISTF"), "{b}");
        let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        let back: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &bytes[..])
            .unwrap();
        assert_eq!(back.len(), 1000);
    }
}
