//! Restart intervals are independent (the DC predictors start again at 0 after each marker),
//! so a file that has them is decoded by two threads, each taking a run of whole intervals.

use super::decode::{run, Bad, Decoder, Plan};
use super::entropy::{corrupt, Scan};
use crate::error::Result;

/// Decodes `n` MCUs in intervals of `ri` into `out`, on two threads when `parallel`.
pub fn decode(
    plan: &Plan,
    scan: &Scan,
    ri: usize,
    n: usize,
    out: &mut [i16],
    parallel: bool,
) -> Result<()> {
    let count = n.div_ceil(ri);
    if scan.intervals.len() < count {
        return Err(corrupt("fewer restart intervals than the image needs"));
    }
    if scan
        .markers
        .iter()
        .take(count - 1)
        .enumerate()
        .any(|(i, &m)| m as usize != i % 8)
    {
        return Err(corrupt("restart markers out of order"));
    }
    // Split where the bytes are halved, at an interval boundary.
    let total = scan.intervals[count - 1].1;
    let cut = if parallel {
        scan.intervals[..count].partition_point(|&(start, _)| start < total / 2)
    } else {
        count
    };
    let dec = plan
        .decoder()
        .ok_or_else(|| corrupt("a Huffman table is missing"))?;
    let plan = &dec;
    if cut == 0 || cut >= count {
        return intervals(plan, scan, ri, 0, out);
    }
    let (a, b) = out.split_at_mut(cut * ri * plan.rec_len);
    std::thread::scope(|s| {
        let second =
            std::thread::Builder::new().spawn_scoped(s, || intervals(plan, scan, ri, cut, b));
        let r = intervals(plan, scan, ri, 0, a);
        let r2 = match second {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(corrupt("decoder thread failed"))),
            Err(e) => Err(crate::error::Error::Read(e)),
        };
        r.and(r2)
    })
}

/// Decodes intervals from `first` on, filling `out` (which starts at MCU `first * ri`).
fn intervals(plan: &Decoder, scan: &Scan, ri: usize, first: usize, out: &mut [i16]) -> Result<()> {
    let mut preds = vec![0i32; plan.ncomp()];
    for (i, recs) in out.chunks_mut(ri * plan.rec_len).enumerate() {
        let (start, end) = scan.intervals[first + i];
        preds.fill(0);
        let pos = run(plan, &scan.data, start * 8, end * 8, recs, &mut preds).map_err(bad)?;
        // Whole bytes left over before the marker: libjpeg warns (and we fail) alike.
        if recs.len() == ri * plan.rec_len
            && end * 8 - pos >= 8
            && first + i + 1 < scan.intervals.len()
        {
            return Err(corrupt("extraneous bytes before a restart marker"));
        }
    }
    Ok(())
}

/// The error for a failed MCU.
pub fn bad(b: Bad) -> crate::error::Error {
    match b {
        Bad::Code => corrupt("bad Huffman code"),
        Bad::Overrun => corrupt("premature end of data segment"),
    }
}
