//! JPEG colour conversion and chroma upsampling, matching libjpeg's fixed-point arithmetic so
//! our pixels agree with djpeg and libvips.

/// Fixed-point YCbCr -> RGB tables, as libjpeg's `jdcolor.c` builds them (16 fraction bits).
pub struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

pub(super) const SCALEBITS: i32 = 16;
pub(super) const ONE_HALF: i32 = 1 << (SCALEBITS - 1);

const fn fix(x: f64) -> i32 {
    (x * (1 << SCALEBITS) as f64 + 0.5) as i32
}

pub(super) const R_CR: i32 = fix(1.40200);
pub(super) const B_CB: i32 = fix(1.77200);
pub(super) const G_CB: i32 = -fix(0.34414);
pub(super) const G_CR: i32 = -fix(0.71414);

impl YccTables {
    /// Builds the four lookup tables.
    pub fn new() -> Self {
        let mut t = YccTables {
            cr_r: [0; 256],
            cb_b: [0; 256],
            cr_g: [0; 256],
            cb_g: [0; 256],
        };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix(1.40200) * x + ONE_HALF) >> SCALEBITS;
            t.cb_b[i] = (fix(1.77200) * x + ONE_HALF) >> SCALEBITS;
            t.cr_g[i] = -fix(0.71414) * x;
            t.cb_g[i] = -fix(0.34414) * x + ONE_HALF;
        }
        t
    }

    /// Converts one row of full-resolution Y, Cb, Cr samples into interleaved RGB. The
    /// arithmetic is the tables' own formula, inlined so the loop vectorises; same results.
    pub fn row_to_rgb(&self, y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked above).
            unsafe { super::ycc_avx2::row(y, cb, cr, out) };
            return;
        }
        ycc_row_generic(y, cb, cr, out)
    }

    #[inline(always)]
    fn pixel(&self, y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
        let y = y as i32;
        let (cb, cr) = (cb as usize, cr as usize);
        let r = y + self.cr_r[cr];
        let g = y + ((self.cb_g[cb] + self.cr_g[cr]) >> SCALEBITS);
        let b = y + self.cb_b[cb];
        (clamp(r), clamp(g), clamp(b))
    }

    /// Converts a row of Adobe YCCK to RGB: YCC gives inverted CMY, then K composites on white.
    pub fn ycck_row_to_rgb(&self, y: &[u8], cb: &[u8], cr: &[u8], k: &[u8], out: &mut [u8]) {
        for ((((px, &y), &cb), &cr), &k) in out.chunks_exact_mut(3).zip(y).zip(cb).zip(cr).zip(k) {
            let (r, g, b) = self.pixel(y, cb, cr);
            px[0] = blend(255 - r, k);
            px[1] = blend(255 - g, k);
            px[2] = blend(255 - b, k);
        }
    }
}

impl Default for YccTables {
    fn default() -> Self {
        Self::new()
    }
}

/// The scalar conversion: the portable path, the AVX2 one's tail and its reference.
#[inline(always)]
pub(super) fn ycc_row_generic(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    // Indexed over slices cut to one length: the four-way zip did not inline (a call per
    // pixel, measured with callgrind).
    let n = y.len().min(cb.len()).min(cr.len()).min(out.len() / 3);
    let (y, cb, cr, out) = (&y[..n], &cb[..n], &cr[..n], &mut out[..3 * n]);
    for (i, px) in out.chunks_exact_mut(3).enumerate() {
        let (y, u, v) = (y[i] as i32, cb[i] as i32 - 128, cr[i] as i32 - 128);
        let r = y + ((R_CR * v + ONE_HALF) >> SCALEBITS);
        let g = y + ((G_CB * u + G_CR * v + ONE_HALF) >> SCALEBITS);
        let b = y + ((B_CB * u + ONE_HALF) >> SCALEBITS);
        px[0] = clamp(r);
        px[1] = clamp(g);
        px[2] = clamp(b);
    }
}

#[inline(always)]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// `a * b / 255`, rounded (Blinn's trick).
#[inline(always)]
fn blend(a: u8, b: u8) -> u8 {
    let t = a as i32 * b as i32 + 128;
    ((t + (t >> 8)) >> 8) as u8
}

/// Converts a row of (Adobe, inverted) CMYK to RGB with the naive formula libjpeg users apply
/// when no colour management is at hand.
pub fn cmyk_row_to_rgb(c: &[u8], m: &[u8], y: &[u8], k: &[u8], out: &mut [u8]) {
    for ((((px, &c), &m), &y), &k) in out.chunks_exact_mut(3).zip(c).zip(m).zip(y).zip(k) {
        px[0] = blend(c, k);
        px[1] = blend(m, k);
        px[2] = blend(y, k);
    }
}

/// Defines `$avx2`, the same body as `$generic` compiled for AVX2, so hot per-sample loops
/// vectorise twice as wide; callers pick it only when `has_avx2()`. Off x86_64 `$avx2` is
/// the generic code (never chosen, since `has_avx2()` is false there), so callers need no cfg.
macro_rules! avx2_dispatch {
    ($generic:ident, $avx2:ident, ($($arg:ident: $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2($($arg: $ty),*) {
            $generic($($arg),*)
        }
        #[cfg(not(target_arch = "x86_64"))]
        #[inline(always)]
        unsafe fn $avx2($($arg: $ty),*) {
            $generic($($arg),*)
        }
    };
}

pub(crate) use crate::simd::has_avx2;

/// 2x2 box average of two rows into `out` (`ceil(len/2)` samples; an odd last column
/// averages its two samples).
pub fn shrink_2x2(r0: &[u8], r1: &[u8], out: &mut [u8]) {
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { shrink_2x2_avx2(r0, r1, out) }
    } else {
        shrink_2x2_generic(r0, r1, out)
    }
}

avx2_dispatch!(shrink_2x2_generic, shrink_2x2_avx2, (r0: &[u8], r1: &[u8], out: &mut [u8]));

#[inline(always)]
fn shrink_2x2_generic(r0: &[u8], r1: &[u8], out: &mut [u8]) {
    let w = r0.len().min(r1.len());
    let full = (w / 2).min(out.len());
    let (a, b, o) = (&r0[..2 * full], &r1[..2 * full], &mut out[..full]);
    for i in 0..full {
        let s = a[2 * i] as u16 + a[2 * i + 1] as u16 + b[2 * i] as u16 + b[2 * i + 1] as u16;
        o[i] = ((s + 2) >> 2) as u8;
    }
    if w % 2 == 1 && full < out.len() {
        out[full] = ((r0[w - 1] as u16 + r1[w - 1] as u16 + 1) >> 1) as u8;
    }
}

/// Adds a row of samples into column sums.
pub fn accumulate(sums: &mut [u32], row: &[u8]) {
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { accumulate_avx2(sums, row) }
    } else {
        accumulate_generic(sums, row)
    }
}

avx2_dispatch!(accumulate_generic, accumulate_avx2, (sums: &mut [u32], row: &[u8]));

#[inline(always)]
fn accumulate_generic(sums: &mut [u32], row: &[u8]) {
    for (s, &v) in sums.iter_mut().zip(row) {
        *s += v as u32;
    }
}

/// Interleaves three full-resolution planes (RGB-coded JPEGs).
pub fn interleave3(a: &[u8], b: &[u8], c: &[u8], out: &mut [u8]) {
    for (((px, &a), &b), &c) in out.chunks_exact_mut(3).zip(a).zip(b).zip(c) {
        px[0] = a;
        px[1] = b;
        px[2] = c;
    }
}

/// libjpeg's "fancy" horizontal 2x upsampling (triangle filter), `out.len()` outputs.
pub fn h2_fancy(input: &[u8], out: &mut [u8]) {
    let n = input.len();
    let width = out.len();
    let mut put = |i: usize, v: u16| {
        if i < width {
            out[i] = v as u8;
        }
    };
    if n == 1 {
        put(0, input[0] as u16);
        put(1, input[0] as u16);
        return;
    }
    put(0, input[0] as u16);
    put(1, (input[0] as u16 * 3 + input[1] as u16 + 2) >> 2);
    for i in 1..n - 1 {
        let v = input[i] as u16 * 3;
        put(2 * i, (v + input[i - 1] as u16 + 1) >> 2);
        put(2 * i + 1, (v + input[i + 1] as u16 + 2) >> 2);
    }
    put(
        2 * n - 2,
        (input[n - 1] as u16 * 3 + input[n - 2] as u16 + 1) >> 2,
    );
    put(2 * n - 1, input[n - 1] as u16);
}

/// libjpeg's fancy 2x2 upsampling for one output row: `near` is the nearest chroma row,
/// `far` the next nearest (above for even output rows, below for odd ones); `out.len()` outputs.
pub fn h2v2_fancy(near: &[u8], far: &[u8], out: &mut [u8]) {
    let n = near.len();
    let colsum = |i: usize| near[i] as i32 * 3 + far[i] as i32;
    let width = out.len();
    let mut put = |i: usize, v: i32| {
        if i < width {
            out[i] = v as u8;
        }
    };
    // Even output columns round with +8, odd ones with +7, as jdsample.c does.
    let (b0, b1) = (8, 7);
    if n == 1 {
        let t = colsum(0);
        put(0, (t * 4 + b0) >> 4);
        put(1, (t * 4 + b1) >> 4);
        return;
    }
    let mut this = colsum(0);
    let mut next = colsum(1);
    put(0, (this * 4 + b0) >> 4);
    put(1, (this * 3 + next + b1) >> 4);
    let mut last = this;
    this = next;
    for i in 1..n - 1 {
        next = colsum(i + 1);
        put(2 * i, (this * 3 + last + b0) >> 4);
        put(2 * i + 1, (this * 3 + next + b1) >> 4);
        last = this;
        this = next;
    }
    put(2 * (n - 1), (this * 3 + last + b0) >> 4);
    put(2 * (n - 1) + 1, (this * 4 + b1) >> 4);
}

/// libjpeg-turbo's fancy vertical-only 2x upsampling (`h1v2`).
pub fn v2_fancy(near: &[u8], far: &[u8], upper: bool, out: &mut [u8]) {
    let bias = if upper { 1 } else { 2 };
    for ((o, &a), &b) in out.iter_mut().zip(near).zip(far) {
        *o = ((a as u16 * 3 + b as u16 + bias) >> 2) as u8;
    }
}

/// Nearest-neighbour horizontal upsampling by any factor (unusual sampling layouts).
pub fn replicate(input: &[u8], factor: usize, out: &mut [u8]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = input[(i / factor).min(input.len() - 1)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlined_arithmetic_equals_the_tables() {
        let t = YccTables::new();
        let mut out = [0u8; 3];
        for y in (0..=255u8).step_by(5) {
            for cb in 0..=255u8 {
                for cr in (0..=255u8).step_by(3) {
                    t.row_to_rgb(&[y], &[cb], &[cr], &mut out);
                    let (r, g, b) = t.pixel(y, cb, cr);
                    assert_eq!(out, [r, g, b], "{y} {cb} {cr}");
                }
            }
        }
    }

    #[test]
    fn grey_chroma_gives_grey_rgb() {
        let t = YccTables::new();
        let mut out = [0u8; 3];
        t.row_to_rgb(&[77], &[128], &[128], &mut out);
        assert_eq!(out, [77, 77, 77]);
    }

    #[test]
    fn fancy_upsampling_of_a_flat_row_is_flat() {
        let mut out = [0u8; 7];
        h2_fancy(&[9, 9, 9, 9], &mut out);
        assert_eq!(out, [9; 7]);
        h2v2_fancy(&[5, 5, 5], &[5, 5, 5], &mut out[..6]);
        assert_eq!(&out[..6], &[5; 6]);
    }

    #[test]
    fn fancy_upsampling_interpolates() {
        let mut out = [0u8; 4];
        h2_fancy(&[0, 100], &mut out);
        assert_eq!(out, [0, 25, 75, 100]);
    }
}
