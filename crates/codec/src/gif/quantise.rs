//! One frame's palette: exact when it has few enough colours, else NeuQuant (`color_quant`,
//! a pure-Rust port of Dekker's network) refined by k-means steps, all single-threaded so the
//! palette is the same on every run. Pixels under half alpha become the transparent index.

use std::collections::{BTreeSet, HashMap};

use color_quant::NeuQuant;

use crate::error::Result;

/// A frame as palette indices.
pub struct Indexed {
    /// RGB triples, at most 256.
    pub palette: Vec<u8>,
    /// One index per pixel.
    pub indices: Vec<u8>,
    /// The index standing for transparent pixels, if any pixel is.
    pub transparent: Option<u8>,
}

/// Alpha below this is transparent (GIF has one bit).
const ALPHA_CUT: u8 = 128;

/// Quantises RGBA pixels to at most 256 colours (one kept for transparency when needed).
pub fn quantise(rgba: &[u8]) -> Result<Indexed> {
    let n = rgba.len() / 4;
    let has_hole = rgba.chunks_exact(4).any(|p| p[3] < ALPHA_CUT);
    let room = if has_hole { 255 } else { 256 };
    let mut indices = crate::alloc::with_capacity(n, "GIF palette indices")?;
    let mut colours = BTreeSet::new();
    for p in rgba.chunks_exact(4).filter(|p| p[3] >= ALPHA_CUT) {
        if colours.insert([p[0], p[1], p[2]]) && colours.len() > room {
            break;
        }
    }
    if colours.len() <= room {
        // Few colours: an exact palette in sorted order, the transparent index after it.
        let hole = colours.len() as u8;
        let transparent = has_hole.then_some(hole);
        let lookup: HashMap<[u8; 3], u8> = colours
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u8))
            .collect();
        indices.extend(rgba.chunks_exact(4).map(|p| {
            if p[3] < ALPHA_CUT {
                hole
            } else {
                lookup[&[p[0], p[1], p[2]]]
            }
        }));
        let mut palette: Vec<u8> = colours.iter().flatten().copied().collect();
        if has_hole {
            palette.extend([0, 0, 0]);
        }
        return Ok(Indexed {
            palette,
            indices,
            transparent,
        });
    }
    let transparent = has_hole.then_some(255u8);
    let mut opaque = crate::alloc::with_capacity(n * 4, "GIF quantiser input")?;
    opaque.extend(
        rgba.chunks_exact(4)
            .filter(|p| p[3] >= ALPHA_CUT)
            .flat_map(|p| [p[0], p[1], p[2], 255]),
    );
    // Sample every pixel of a thumbnail-sized frame; larger frames sample fewer (the
    // network's quality changes little past ~100k samples).
    let samplefac = (n / 3_000).clamp(1, 10) as i32;
    let nq = NeuQuant::new(samplefac, room, &opaque);
    drop(opaque);
    // The frame's colours with their counts, in sorted order (so the result does not depend
    // on hashing).
    let mut counts: HashMap<[u8; 3], u32> = HashMap::new();
    for p in rgba.chunks_exact(4).filter(|p| p[3] >= ALPHA_CUT) {
        *counts.entry([p[0], p[1], p[2]]).or_default() += 1;
    }
    let mut hist: Vec<([u8; 3], u32)> = counts.into_iter().collect();
    hist.sort_unstable();
    let mut palette: Vec<[i32; 3]> = nq
        .color_map_rgb()
        .chunks_exact(3)
        .map(|c| [c[0] as i32, c[1] as i32, c[2] as i32])
        .collect();
    // Lloyd (k-means) steps from NeuQuant's palette: each entry moves to the mean of the
    // colours nearest to it, which NeuQuant's sampled training leaves some way off.
    for _ in 0..REFINE_STEPS {
        let mut sums = vec![[0u64; 4]; palette.len()];
        for (c, k) in &hist {
            let s = &mut sums[nearest(&palette, c)];
            for i in 0..3 {
                s[i] += c[i] as u64 * *k as u64;
            }
            s[3] += *k as u64;
        }
        for (entry, s) in palette.iter_mut().zip(&sums) {
            // An entry nearest to no colour stays where it is.
            for i in 0..3 {
                if let Some(mean) = (s[i] + s[3] / 2).checked_div(s[3]) {
                    entry[i] = mean as i32;
                }
            }
        }
    }
    let index: HashMap<[u8; 3], u8> = hist
        .iter()
        .map(|(c, _)| (*c, nearest(&palette, c) as u8))
        .collect();
    indices.extend(rgba.chunks_exact(4).map(|p| {
        if p[3] < ALPHA_CUT {
            255
        } else {
            index[&[p[0], p[1], p[2]]]
        }
    }));
    let mut palette: Vec<u8> = palette.iter().flatten().map(|&v| v as u8).collect();
    palette.resize(256 * 3, 0);
    Ok(Indexed {
        palette,
        indices,
        transparent,
    })
}

/// Lloyd steps after NeuQuant.
const REFINE_STEPS: usize = 2;

/// The palette entry nearest `c` (squared RGB distance; the first of equals).
fn nearest(palette: &[[i32; 3]], c: &[u8; 3]) -> usize {
    let (r, g, b) = (c[0] as i32, c[1] as i32, c[2] as i32);
    let mut best = (i32::MAX, 0);
    for (i, p) in palette.iter().enumerate() {
        let d = (p[0] - r).pow(2) + (p[1] - g).pow(2) + (p[2] - b).pow(2);
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_colours_are_exact_and_holes_take_the_last_index() {
        let px = [10, 20, 30, 255, 1, 2, 3, 255, 0, 0, 0, 0, 10, 20, 30, 200];
        let q = quantise(&px).unwrap();
        assert_eq!(q.indices, [1, 0, 2, 1]);
        assert_eq!(q.palette, [1, 2, 3, 10, 20, 30, 0, 0, 0]);
        assert_eq!(q.transparent, Some(2));
    }

    #[test]
    fn many_colours_are_quantised_the_same_way_every_time() {
        let px: Vec<u8> = (0..64 * 64u32)
            .flat_map(|i| {
                [
                    (i % 64 * 4) as u8,
                    (i / 64 * 4) as u8,
                    (i % 7 * 30) as u8,
                    255,
                ]
            })
            .collect();
        let a = quantise(&px).unwrap();
        let b = quantise(&px).unwrap();
        assert_eq!(a.transparent, None);
        assert_eq!((a.palette.len(), a.indices.len()), (768, 4096));
        assert!(a.palette == b.palette && a.indices == b.indices);
        // Close to the source: mean absolute error per sample under 10 levels (4096 colours of
        // smooth ramps into 256; measured 8).
        let err: u64 = px
            .chunks_exact(4)
            .zip(&a.indices)
            .map(|(p, &i)| {
                let c = &a.palette[i as usize * 3..i as usize * 3 + 3];
                (0..3).map(|k| p[k].abs_diff(c[k]) as u64).sum::<u64>()
            })
            .sum();
        assert!(err / (4096 * 3) < 10, "mean error {}", err / (4096 * 3));
    }
}
