//! The GIF saver: each frame quantised on its own ([`super::quantise`]). An opaque
//! animation writes only the rectangle that changed since the previous frame (kept beneath);
//! one with transparency writes whole frames, each clearing the last.

use gif::{DisposalMethod, Encoder, Repeat};

use super::quantise::{quantise, Indexed};
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, Samples};
use crate::io::{Target, TargetWriter};
use crate::{Animated, SaveOptions};

fn encode_error(e: gif::EncodingError) -> Error {
    match e {
        gif::EncodingError::Io(e) => Error::Write(e),
        other => Error::encode("gif", other),
    }
}

/// The image's samples as RGBA (grey widened, alpha added).
fn rgba(img: &Image) -> Result<Vec<u8>> {
    let Samples::U8(data) = &img.samples else {
        return Err(Error::encode("gif", "samples not cast to 8 bits"));
    };
    let bands = img.header.bands as usize;
    let mut out = crate::alloc::with_capacity(data.len() / bands.max(1) * 4, "GIF RGBA pixels")?;
    match bands {
        1 => out.extend(data.iter().flat_map(|&g| [g, g, g, 255])),
        2 => out.extend(data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]])),
        3 => out.extend(data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255])),
        4 => out.extend_from_slice(data),
        b => return Err(Error::encode("gif", format!("{b} bands"))),
    }
    Ok(out)
}

fn size(h: &Header) -> Result<(u16, u16)> {
    match (u16::try_from(h.width), u16::try_from(h.height)) {
        (Ok(w), Ok(hh)) => Ok((w, hh)),
        _ => Err(Error::encode(
            "gif",
            format!("{}x{} exceeds GIF's 65535-pixel limit", h.width, h.height),
        )),
    }
}

/// Saves a still image as a one-frame GIF.
pub fn still(stream: BoxStream, _: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let img = Image::collect(stream)?;
    let (w, h) = size(&img.header)?;
    let px = rgba(&img)?;
    let mut out = TargetWriter::new(target);
    {
        let mut enc = Encoder::new(&mut out, w, h, &[]).map_err(encode_error)?;
        let q = quantise(&px)?;
        write(&mut enc, &q, Rect::whole(w, h), 0, DisposalMethod::Keep)?;
        enc.into_inner().map_err(encode_error)?;
    }
    out.finish().map_err(Error::Write)
}

#[derive(Clone, Copy, PartialEq, Debug)]
struct Rect {
    x: u16,
    y: u16,
    w: u16,
    h: u16,
}

impl Rect {
    fn whole(w: u16, h: u16) -> Self {
        Rect { x: 0, y: 0, w, h }
    }
}

fn write<W: std::io::Write>(
    enc: &mut Encoder<W>,
    q: &Indexed,
    r: Rect,
    delay_ms: u32,
    dispose: DisposalMethod,
) -> Result<()> {
    let frame = gif::Frame {
        delay: (delay_ms.saturating_add(5) / 10).min(u16::MAX as u32) as u16,
        dispose,
        transparent: q.transparent,
        left: r.x,
        top: r.y,
        width: r.w,
        height: r.h,
        palette: Some(q.palette.clone()),
        buffer: std::borrow::Cow::Borrowed(&q.indices),
        ..gif::Frame::default()
    };
    enc.write_frame(&frame).map_err(encode_error)
}

/// The smallest rectangle holding every pixel that differs between `a` and `b` (RGBA rows
/// of `w` pixels); a 1x1 rectangle when none does (a frame still carries its delay).
fn changed(a: &[u8], b: &[u8], w: usize) -> Rect {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (y, (ra, rb)) in a.chunks_exact(w * 4).zip(b.chunks_exact(w * 4)).enumerate() {
        if ra == rb {
            continue;
        }
        let first = ra
            .chunks_exact(4)
            .zip(rb.chunks_exact(4))
            .position(|(p, q)| p != q);
        let last = ra
            .chunks_exact(4)
            .zip(rb.chunks_exact(4))
            .rposition(|(p, q)| p != q);
        if let (Some(f), Some(l)) = (first, last) {
            (x0, x1, y0, y1) = (x0.min(f), x1.max(l), y0.min(y), y1.max(y));
        }
    }
    if x0 == usize::MAX {
        return Rect {
            x: 0,
            y: 0,
            w: 1,
            h: 1,
        };
    }
    Rect {
        x: x0 as u16,
        y: y0 as u16,
        w: (x1 - x0 + 1) as u16,
        h: (y1 - y0 + 1) as u16,
    }
}

fn cut(px: &[u8], w: usize, r: Rect) -> Vec<u8> {
    let (x, rw) = (r.x as usize, r.w as usize);
    (r.y as usize..r.y as usize + r.h as usize)
        .flat_map(|y| &px[(y * w + x) * 4..(y * w + x + rw) * 4])
        .copied()
        .collect()
}

/// Saves an animation, frame by frame as the pipeline produces them.
pub fn animation(mut anim: Animated, _: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let (w, h) = size(&anim.header)?;
    let alpha = matches!(anim.header.bands, 2 | 4);
    let mut out = TargetWriter::new(target);
    {
        let mut enc = Encoder::new(&mut out, w, h, &[]).map_err(encode_error)?;
        // GIF counts repetitions after the first play; no extension plays once.
        match anim.plays {
            0 => enc.set_repeat(Repeat::Infinite),
            n => enc.set_repeat(Repeat::Finite((n - 1).min(u16::MAX as u32) as u16)),
        }
        .map_err(encode_error)?;
        let mut previous: Option<Vec<u8>> = None;
        while let Some(frame) = (anim.next)()? {
            let img = Image::collect(frame.stream)?;
            if (img.header.width, img.header.height) != (w as u32, h as u32) {
                return Err(Error::encode("gif", "frames differ in size"));
            }
            let px = rgba(&img)?;
            match (&previous, alpha) {
                // Transparency: whole frames, each cleared before the next.
                (_, true) | (None, _) => {
                    let dispose = if alpha {
                        DisposalMethod::Background
                    } else {
                        DisposalMethod::Keep
                    };
                    let q = quantise(&px)?;
                    write(&mut enc, &q, Rect::whole(w, h), frame.delay_ms, dispose)?;
                }
                (Some(prev), false) => {
                    let r = changed(prev, &px, w as usize);
                    let q = quantise(&cut(&px, w as usize, r))?;
                    write(&mut enc, &q, r, frame.delay_ms, DisposalMethod::Keep)?;
                }
            }
            if !alpha {
                previous = Some(px);
            }
        }
        enc.into_inner().map_err(encode_error)?;
    }
    out.finish().map_err(Error::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changed_rectangle_bounds_every_difference() {
        let a = vec![0u8; 4 * 4 * 4];
        let mut b = a.clone();
        b[(4 + 1) * 4] = 9; // (1, 1)
        b[(2 * 4 + 3) * 4 + 2] = 9; // (3, 2)
        assert_eq!(
            changed(&a, &b, 4),
            Rect {
                x: 1,
                y: 1,
                w: 3,
                h: 2
            }
        );
        assert_eq!(
            changed(&a, &a, 4),
            Rect {
                x: 0,
                y: 0,
                w: 1,
                h: 1
            }
        );
    }
}
