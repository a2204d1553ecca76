//! Two threads on one scan without restart markers (Klein and Wiseman, 2003): the second
//! starts decoding at a byte in the middle, as if an MCU began there. Huffman codes
//! resynchronise within a few blocks, so soon its MCU boundaries are the true ones. The
//! first thread decodes up to that byte, then on until one of its MCU boundaries is at the
//! same bit as one of the second's: from there the two decodes are the same (the parse
//! depends only on the bit position and the block within the MCU), and the second thread's
//! records are taken, their DC values shifted by the difference of the two threads' DC
//! predictors there. Without such a meeting the first thread decodes on alone, so the
//! result is always the sequential decode's.

use super::decode::{Bad, Decoder, Plan};
use super::entropy::Scan;
use super::split::bad;
use crate::error::Result;

/// Restarts of the second thread after an invalid code soon after its start.
const ATTEMPTS: usize = 16;
/// MCUs after which a failure is taken as real damage rather than a false start.
const EARLY: usize = 64;

/// What the second thread decoded: MCU start bits and records.
struct Spec {
    starts: Vec<usize>,
    recs: Vec<i16>,
}

/// Decodes `n` MCUs of a scan without restarts into `out`, on two threads when `parallel`.
pub fn decode(plan: &Plan, scan: &Scan, n: usize, out: &mut [i16], parallel: bool) -> Result<()> {
    let (start, end) = scan.intervals[0];
    let (data, end) = (&scan.data[..], end * 8);
    let r = plan.rec_len;
    let blocks = &plan.blocks;
    let plan = &plan
        .decoder()
        .ok_or_else(|| super::entropy::corrupt("a Huffman table is missing"))?;
    let mut preds = vec![0i32; plan.ncomp()];
    let mut pos = start * 8;
    let mut m = 0;
    let mcu = |m: usize, pos: usize, preds: &mut [i32], out: &mut [i16]| -> Result<usize> {
        if pos > end {
            return Err(bad(Bad::Overrun));
        }
        plan.mcu(data, pos, &mut out[m * r..(m + 1) * r], preds)
            .map_err(bad)
    };
    let split = (start + (end / 8 - start) / 2) * 8;
    if parallel && n > 1 {
        let spec = std::thread::scope(|s| -> Result<Option<Spec>> {
            let second = std::thread::Builder::new()
                .spawn_scoped(s, || speculate(plan, data, split, end, n));
            while m < n && pos < split {
                pos = mcu(m, pos, &mut preds, out)?;
                m += 1;
            }
            Ok(second.ok().and_then(|h| h.join().ok().flatten()))
        })?;
        let m_split = m;
        if let Some(spec) = spec {
            let mut j = 0;
            while m < n {
                while j < spec.starts.len() && spec.starts[j] < pos {
                    j += 1;
                }
                if j < spec.starts.len() && spec.starts[j] == pos && spec.starts.len() - j >= n - m
                {
                    tracing::debug!(
                        split = m_split,
                        met = m,
                        "jpeg: speculative decode met the sequential one"
                    );
                    adopt(blocks, r, &spec, j, m, n, &preds, out);
                    // Its records all ended within the data (see `speculate`).
                    return Ok(());
                }
                if j >= spec.starts.len() {
                    break;
                }
                pos = mcu(m, pos, &mut preds, out)?;
                m += 1;
            }
            tracing::debug!(
                split = m_split,
                "jpeg: speculative decode never met the sequential one"
            );
        }
    }
    while m < n {
        pos = mcu(m, pos, &mut preds, out)?;
        m += 1;
    }
    check_end(pos, end)
}

/// The error for a scan that needs more data than it has.
fn check_end(pos: usize, end: usize) -> Result<()> {
    if pos > end {
        return Err(bad(Bad::Overrun));
    }
    Ok(())
}

/// Copies the second thread's records `j..` into MCUs `m..n`, fixing up the DC values: the
/// second thread's predictors started at 0 where the true ones were the first thread's.
#[allow(clippy::too_many_arguments)]
fn adopt(
    blocks: &[super::decode::Block],
    r: usize,
    spec: &Spec,
    j: usize,
    m: usize,
    n: usize,
    preds: &[i32],
    out: &mut [i16],
) {
    // The second thread's predictor before its MCU j: the last DC of each component in its
    // MCU j - 1 (16 bits are enough: the records keep 16 bits, and the sums wrap alike).
    let mut theirs = vec![0i16; preds.len()];
    if j > 0 {
        for b in blocks {
            theirs[b.comp] = spec.recs[(j - 1) * r + b.at];
        }
    }
    let shift: Vec<i16> = preds
        .iter()
        .zip(&theirs)
        .map(|(&a, &b)| (a as i16).wrapping_sub(b))
        .collect();
    out[m * r..n * r].copy_from_slice(&spec.recs[j * r..(j + n - m) * r]);
    for rec in out[m * r..n * r].chunks_exact_mut(r) {
        for b in blocks {
            rec[b.at] = rec[b.at].wrapping_add(shift[b.comp]);
        }
    }
}

/// The second thread: decodes from bit `from` as if an MCU started there, to the end of the
/// data, at most `n` MCUs; starts again a byte after an invalid code met soon after a start.
fn speculate(plan: &Decoder, data: &[u8], from: usize, end: usize, n: usize) -> Option<Spec> {
    let r = plan.rec_len;
    let mut starts = Vec::new();
    starts.try_reserve_exact(n).ok()?;
    // Records are written in place (a copy per MCU was a memcpy call each).
    let mut recs = crate::alloc::filled(n * r, 0i16, "JPEG coefficients").ok()?;
    let mut preds = vec![0i32; plan.ncomp()];
    let mut at = from;
    for _ in 0..ATTEMPTS {
        starts.clear();
        preds.fill(0);
        let mut pos = at;
        let failed = loop {
            let k = starts.len();
            if k == n || pos > end {
                break None;
            }
            match plan.mcu(data, pos, &mut recs[k * r..(k + 1) * r], &mut preds) {
                Ok(next) if next <= end => {
                    starts.push(pos);
                    pos = next;
                }
                Ok(_) => break None,
                Err(_) => break Some(pos),
            }
        };
        match failed {
            Some(p) if starts.len() < EARLY => at = (p / 8 + 1) * 8,
            _ => {
                recs.truncate(starts.len() * r);
                return Some(Spec { starts, recs });
            }
        }
    }
    None
}
