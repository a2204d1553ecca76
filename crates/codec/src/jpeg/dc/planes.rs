//! From coefficient records to pixels, as libjpeg-turbo at 1/8 scale: the 1x1 IDCT
//! (`jpeg_idct_1x1`: the DC descaled, through libjpeg's range-limit table) for components
//! whose blocks shrink to one sample, the 2x2 IDCT (`jsimd_idct_2x2_sse2`'s arithmetic, which
//! djpeg uses on x86-64) for those libjpeg scales to two (4:2:0 chroma), then libjpeg's plain
//! replication upsampling (it never uses the fancy upsampler at 1/8) and its colour
//! conversion.

use super::decode::{Plan, FULL, SLOT};

/// libjpeg's post-IDCT range limit for 8-bit samples: `x & 1023` indexes a table that clamps
/// -512..512 around the centre and wraps beyond.
#[inline(always)]
fn range_limit(x: i32) -> u8 {
    RANGE[(x & 1023) as usize]
}

/// The table behind [`range_limit`].
static RANGE: [u8; 1024] = {
    let mut t = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = match i {
            0..128 => (i + 128) as u8,
            128..512 => 255,
            512..896 => 0,
            _ => (i - 896) as u8,
        };
        i += 1;
    }
    t
};

/// `jpeg_idct_1x1`: the quantised DC times its quantiser (16-bit operands), descaled by 8.
#[inline(always)]
pub fn idct1(dc: i16, q: u16) -> u8 {
    let v = dc as i32 * q as i16 as i32;
    range_limit((v + 4) >> 3)
}

const F362: i32 = 29692;
const F127: i32 = 10426;
const F085: i32 = 6967;
const F072: i32 = 5906;

/// The odd part of one 2x2 IDCT pass (`pmaddwd` pairs, 32-bit wrapping sums).
#[inline(always)]
fn odd(z1: i32, z3: i32, z5: i32, z7: i32) -> i32 {
    (z1 * F362 - z3 * F127).wrapping_add(z5 * F085 - z7 * F072)
}

/// Saturates to 16 bits (`packssdw`).
#[inline(always)]
fn sat16(x: i32) -> i32 {
    x.clamp(-32768, 32767)
}

/// libjpeg-turbo's SSE2 2x2 IDCT of the 25 kept coefficients `c` (slots as [`SLOT`]) with
/// quantisers `q` at the same slots: 16-bit dequantisation (`pmullw`), two passes, saturating
/// stores. Returns rows [[top-left, top-right], [bottom-left, bottom-right]].
pub fn idct2(c: &[i16; FULL], q: &[i16; FULL]) -> [[u8; 2]; 2] {
    if c[1..].iter().all(|&v| v == 0) {
        // A flat block (most chroma blocks): both passes reduce to the DC descaled by 8.
        // Pass 1 gives 4 * z exactly; pass 2 shifts that left by 15 (wrapping, as `pslld`).
        let z = c[0].wrapping_mul(q[0]) as i32;
        let t = (4 * z).wrapping_shl(15).wrapping_add(1 << 19) >> 20;
        let v = (t.clamp(-128, 127) + 128) as u8;
        return [[v, v], [v, v]];
    }
    let z = |i: usize| c[i].wrapping_mul(q[i]) as i32;
    // Pass 1, over columns 0, 1, 3, 5, 7: rows 0 ("A") and 1 ("B") of the workspace.
    let mut a = [0i32; 5];
    let mut b = [0i32; 5];
    for col in 0..5 {
        let tmp10 = z(col) << 15;
        let tmp0 = odd(z(5 + col), z(10 + col), z(15 + col), z(20 + col));
        a[col] = tmp10.wrapping_add(tmp0).wrapping_add(1 << 12) >> 13;
        b[col] = tmp10.wrapping_sub(tmp0).wrapping_add(1 << 12) >> 13;
    }
    // Pass 2, over the two rows.
    let row = |w: &[i32; 5]| {
        let tmp0 = odd(sat16(w[1]), sat16(w[2]), sat16(w[3]), sat16(w[4]));
        let tmp10 = w[0].wrapping_shl(15);
        let out = |x: i32| ((x.wrapping_add(1 << 19) >> 20).clamp(-128, 127) + 128) as u8;
        [out(tmp10.wrapping_add(tmp0)), out(tmp10.wrapping_sub(tmp0))]
    };
    [row(&a), row(&b)]
}

/// The quantisers of a 2x2 block at their slots, as 16-bit words.
pub fn slot_quant(q: &[u16; 64]) -> [i16; FULL] {
    let mut out = [0i16; FULL];
    for (n, &s) in SLOT.iter().enumerate() {
        if let Some(o) = out.get_mut(s as usize) {
            *o = q[n] as i16;
        }
    }
    out
}

/// One component's samples after its reduced IDCT.
pub struct Plane {
    /// Samples, `width` per row.
    pub samples: Vec<u8>,
    /// Row length.
    pub width: usize,
    /// Output pixels per sample across (libjpeg's upsampling factor).
    pub hexp: usize,
    /// Output rows per sample row.
    pub vexp: usize,
}

/// Geometry of the component planes.
pub struct Layout {
    /// MCUs per row.
    pub mcus_x: usize,
    /// Per frame component: blocks per MCU across and down (1, 1 for a one-component scan),
    /// IDCT size (1 or 2), and upsampling factors across and down.
    pub comps: Vec<CompLayout>,
}

/// One component's part of [`Layout`].
#[derive(Debug, Clone, Copy)]
pub struct CompLayout {
    /// Blocks per MCU across.
    pub h: usize,
    /// Blocks per MCU down.
    pub v: usize,
    /// Samples per block side (the reduced IDCT's size).
    pub ssize: usize,
    /// Output pixels per sample across.
    pub hexp: usize,
    /// Output rows per sample row.
    pub vexp: usize,
}

/// Runs the reduced IDCTs of every record into one plane per component.
pub fn build(
    plan: &Plan,
    layout: &Layout,
    records: &[i16],
    quant: &[[u16; 64]],
) -> crate::error::Result<Vec<Plane>> {
    let n = records.len() / plan.rec_len.max(1);
    let mcus_y = n.div_ceil(layout.mcus_x.max(1));
    let mut planes = Vec::with_capacity(layout.comps.len());
    for c in &layout.comps {
        let width = layout.mcus_x * c.h * c.ssize;
        let height = mcus_y * c.v * c.ssize;
        planes.push(Plane {
            samples: crate::alloc::filled(width * height, 0u8, "JPEG planes")?,
            width,
            hexp: c.hexp,
            vexp: c.vexp,
        });
    }
    let q2: Vec<[i16; FULL]> = quant.iter().map(slot_quant).collect();
    let r = plan.rec_len;
    // One component at a time, so the inner loop touches one plane and one block list.
    for (ci, p) in planes.iter_mut().enumerate() {
        let c = &layout.comps[ci];
        let w = p.width;
        let blocks: Vec<(usize, usize, bool)> = plan
            .blocks
            .iter()
            .filter(|b| b.comp == ci)
            .map(|b| (b.at, b.by * c.ssize * w + b.bx * c.ssize, b.full))
            .collect();
        let (step_x, step_y) = (c.h * c.ssize, c.v * c.ssize * w);
        let q0 = quant[ci][0];
        let (mut mx, mut row) = (0, 0);
        for rec in records.chunks_exact(r) {
            let origin = row + mx * step_x;
            for &(at, off, full) in &blocks {
                let o = origin + off;
                if full {
                    let Some(Ok(coefs)) = rec.get(at..at + FULL).map(<&[i16; FULL]>::try_from)
                    else {
                        continue;
                    };
                    let s = idct2(coefs, &q2[ci]);
                    // Two stores per row (a 2-byte copy_from_slice was a memcpy call).
                    for (i, row) in s.iter().enumerate() {
                        if let Some(d) = p.samples.get_mut(o + i * w..o + i * w + 2) {
                            d[0] = row[0];
                            d[1] = row[1];
                        }
                    }
                } else if let (Some(d), Some(&dc)) = (p.samples.get_mut(o), rec.get(at)) {
                    *d = idct1(dc, q0);
                }
            }
            mx += 1;
            if mx == layout.mcus_x {
                mx = 0;
                row += step_y;
            }
        }
    }
    Ok(planes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flat blocks: the 2x2 IDCT of a DC alone is the 1x1 IDCT of it, four times.
    #[test]
    fn idct2_of_dc_matches_idct1() {
        let q = [3i16; FULL];
        for dc in [-400i16, -129, -5, 0, 7, 130, 400] {
            let mut c = [0i16; FULL];
            c[0] = dc;
            let v = idct1(dc, 3);
            assert_eq!(idct2(&c, &q), [[v, v], [v, v]], "{dc}");
            // The general path agrees with the flat shortcut (a zero AC that is present).
            c[24] = 0;
            c[1] = 1;
            let near = idct2(&c, &q);
            assert!(
                near.iter().flatten().all(|&s| s.abs_diff(v) <= 1),
                "{dc}: {near:?}"
            );
        }
    }

    /// A horizontal first harmonic makes the left column brighter than the right.
    #[test]
    fn idct2_first_harmonic() {
        let q = [1i16; FULL];
        let mut c = [0i16; FULL];
        c[1] = 100;
        let [[l0, r0], [l1, r1]] = idct2(&c, &q);
        assert!(
            l0 > 128 && r0 < 128 && l0 == l1 && r0 == r1,
            "{l0} {r0} {l1} {r1}"
        );
    }

    #[test]
    fn range_limit_clamps_and_wraps_as_libjpeg() {
        assert_eq!(range_limit(-128), 0);
        assert_eq!(range_limit(-129), 0);
        assert_eq!(range_limit(0), 128);
        assert_eq!(range_limit(127), 255);
        assert_eq!(range_limit(511), 255);
        assert_eq!(range_limit(-512), 0);
        assert_eq!(range_limit(-1), 127);
    }
}
