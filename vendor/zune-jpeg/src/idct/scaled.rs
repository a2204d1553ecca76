//! Reduced-size inverse DCTs for DCT-domain downscaling (thumbfs patch).
//!
//! Each function reads a dequantized 8x8 block in natural order and writes an NxN block of
//! level-shifted, clamped samples (1/2, 1/4 and 1/8 of the block's side). The arithmetic is
//! libjpeg's `jidctred.c` (Thomas G. Lane, IJG; as kept in libjpeg-turbo), so the results
//! match `djpeg -scale`. The input block is not modified: callers rely on coefficients
//! outside the decoded range staying zero.

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;

const FIX_0_211164243: i32 = 1730;
const FIX_0_509795579: i32 = 4176;
const FIX_0_601344887: i32 = 4926;
const FIX_0_720959822: i32 = 5906;
const FIX_0_765366865: i32 = 6270;
const FIX_0_850430095: i32 = 6967;
const FIX_0_899976223: i32 = 7373;
const FIX_1_061594337: i32 = 8697;
const FIX_1_272758580: i32 = 10426;
const FIX_1_451774981: i32 = 11893;
const FIX_1_847759065: i32 = 15137;
const FIX_2_172734803: i32 = 17799;
const FIX_2_562915447: i32 = 20995;
const FIX_3_624509785: i32 = 29692;

#[inline(always)]
fn descale(x: i32, n: u32) -> i32 {
    x.wrapping_add(1 << (n - 1)) >> n
}

#[inline(always)]
fn level_shift(x: i32) -> i16 {
    x.wrapping_add(128).clamp(0, 255) as i16
}

/// Writes a `size`x`size` block (`size` is 1, 2 or 4) for the coefficients in `input`.
pub fn idct_scaled(size: usize, input: &[i32; 64], out: &mut [i16], stride: usize) {
    match size {
        4 => idct_4x4(input, out, stride),
        2 => idct_2x2(input, out, stride),
        _ => out[0] = level_shift(descale(input[0], 3)),
    }
}

/// The odd part of the 4-point output from the eight inputs 1, 3, 5, 7.
#[inline(always)]
fn odd4(z4: i32, z3: i32, z2: i32, z1: i32) -> (i32, i32) {
    let tmp0 = z1
        .wrapping_mul(-FIX_0_211164243)
        .wrapping_add(z2.wrapping_mul(FIX_1_451774981))
        .wrapping_add(z3.wrapping_mul(-FIX_2_172734803))
        .wrapping_add(z4.wrapping_mul(FIX_1_061594337));
    let tmp2 = z1
        .wrapping_mul(-FIX_0_509795579)
        .wrapping_add(z2.wrapping_mul(-FIX_0_601344887))
        .wrapping_add(z3.wrapping_mul(FIX_0_899976223))
        .wrapping_add(z4.wrapping_mul(FIX_2_562915447));
    (tmp0, tmp2)
}

fn idct_4x4(input: &[i32; 64], out: &mut [i16], stride: usize) {
    let mut ws = [0i32; 32];
    // Pass 1: columns (column 4 is not needed by pass 2).
    for c in (0..8).filter(|&c| c != 4) {
        let col = |r: usize| input[r * 8 + c];
        if col(1) == 0 && col(2) == 0 && col(3) == 0 && col(5) == 0 && col(6) == 0 && col(7) == 0
        {
            let dc = col(0) << PASS1_BITS;
            for r in 0..4 {
                ws[r * 8 + c] = dc;
            }
            continue;
        }
        let tmp0 = col(0) << (CONST_BITS + 1);
        let tmp2 = col(2)
            .wrapping_mul(FIX_1_847759065)
            .wrapping_add(col(6).wrapping_mul(-FIX_0_765366865));
        let (tmp10, tmp12) = (tmp0.wrapping_add(tmp2), tmp0.wrapping_sub(tmp2));
        let (tmp0, tmp2) = odd4(col(1), col(3), col(5), col(7));
        let n = CONST_BITS - PASS1_BITS + 1;
        ws[c] = descale(tmp10.wrapping_add(tmp2), n);
        ws[24 + c] = descale(tmp10.wrapping_sub(tmp2), n);
        ws[8 + c] = descale(tmp12.wrapping_add(tmp0), n);
        ws[16 + c] = descale(tmp12.wrapping_sub(tmp0), n);
    }
    // Pass 2: the four rows.
    for r in 0..4 {
        let w = &ws[r * 8..r * 8 + 8];
        let o = &mut out[r * stride..r * stride + 4];
        let tmp0 = w[0] << (CONST_BITS + 1);
        let tmp2 = w[2]
            .wrapping_mul(FIX_1_847759065)
            .wrapping_add(w[6].wrapping_mul(-FIX_0_765366865));
        let (tmp10, tmp12) = (tmp0.wrapping_add(tmp2), tmp0.wrapping_sub(tmp2));
        let (tmp0, tmp2) = odd4(w[1], w[3], w[5], w[7]);
        let n = CONST_BITS + PASS1_BITS + 3 + 1;
        o[0] = level_shift(descale(tmp10.wrapping_add(tmp2), n));
        o[3] = level_shift(descale(tmp10.wrapping_sub(tmp2), n));
        o[1] = level_shift(descale(tmp12.wrapping_add(tmp0), n));
        o[2] = level_shift(descale(tmp12.wrapping_sub(tmp0), n));
    }
}

/// The odd part of the 2-point output from the inputs 1, 3, 5, 7.
#[inline(always)]
fn odd2(z1: i32, z3: i32, z5: i32, z7: i32) -> i32 {
    z7.wrapping_mul(-FIX_0_720959822)
        .wrapping_add(z5.wrapping_mul(FIX_0_850430095))
        .wrapping_add(z3.wrapping_mul(-FIX_1_272758580))
        .wrapping_add(z1.wrapping_mul(FIX_3_624509785))
}

fn idct_2x2(input: &[i32; 64], out: &mut [i16], stride: usize) {
    let mut ws = [0i32; 16];
    // Pass 1: columns 0, 1, 3, 5, 7 (the even ones above 0 are not needed by pass 2).
    for c in [0usize, 1, 3, 5, 7] {
        let col = |r: usize| input[r * 8 + c];
        if col(1) == 0 && col(3) == 0 && col(5) == 0 && col(7) == 0 {
            let dc = col(0) << PASS1_BITS;
            ws[c] = dc;
            ws[8 + c] = dc;
            continue;
        }
        let tmp10 = col(0) << (CONST_BITS + 2);
        let tmp0 = odd2(col(1), col(3), col(5), col(7));
        let n = CONST_BITS - PASS1_BITS + 2;
        ws[c] = descale(tmp10.wrapping_add(tmp0), n);
        ws[8 + c] = descale(tmp10.wrapping_sub(tmp0), n);
    }
    // Pass 2: the two rows.
    for r in 0..2 {
        let w = &ws[r * 8..r * 8 + 8];
        let tmp10 = w[0] << (CONST_BITS + 2);
        let tmp0 = odd2(w[1], w[3], w[5], w[7]);
        let n = CONST_BITS + PASS1_BITS + 3 + 2;
        out[r * stride] = level_shift(descale(tmp10.wrapping_add(tmp0), n));
        out[r * stride + 1] = level_shift(descale(tmp10.wrapping_sub(tmp0), n));
    }
}
