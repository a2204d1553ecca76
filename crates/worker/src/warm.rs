//! Warming a new worker before it says it is ready, so that its first job runs as fast as
//! its later ones.
//!
//! A fresh process pays on its first render for what later renders find ready: the heap
//! pages of both malloc arenas (the rendering thread's and the decode thread's) and of the
//! main stack are faulted in one by one (~500 page faults until the first output byte of a
//! 24 MP JPEG, ~60 for the same render in a warm worker), and lazily built tables (the codec
//! registry, libjpeg-turbo's SIMD dispatch) are made. Workers start ahead of their jobs, so
//! all of that is done here, off every reader's path: a small real render through the same
//! pipeline (a synthetic image encoded to JPEG, then that JPEG shrunk in the DCT, resized
//! and re-encoded), then heap and stack pages touched and freed. glibc keeps freed memory
//! below the trim threshold (64 MiB, see [`super::child`]), so the pages stay mapped for the
//! first job.

use std::hint::black_box;

use crate::io::target::MemoryTarget;
use crate::io::Source;
use crate::pipeline::{self, RenderOptions};
use crate::spec::Spec;

/// Heap faulted in per malloc arena: more than a first-byte render of a 24 MP JPEG touches.
const HEAP: usize = 4 << 20;
/// Main-thread stack faulted in (the encoder runs on it).
const STACK: usize = 256 << 10;
/// Side of the synthetic image: wide enough for multi-strip rows and a DCT-scaled decode.
const SIDE: usize = 512;

/// Warms this process; best effort (a failure only means a colder first job).
pub fn warm_up() {
    let _ = render_once();
    touch_heap();
    // The decode thread's arena: a thread's first allocation binds it to an arena, which it
    // hands back on exit; the next thread (a render's decode thread) takes the same one.
    let _ = std::thread::Builder::new()
        .name("warm-up".into())
        .spawn(touch_heap)
        .map(|t| t.join());
    touch_stack();
}

/// A synthetic photo-like RGB image, encoded to JPEG, then thumbnailed: the code paths and
/// lazily built tables of the most common render.
fn render_once() -> bool {
    let mut ppm = format!("P6\n{SIDE} {SIDE}\n255\n").into_bytes();
    for y in 0..SIDE {
        for x in 0..SIDE {
            ppm.extend_from_slice(&[x as u8, y as u8, (x ^ y) as u8]);
        }
    }
    let opts = RenderOptions::default();
    let run = |input: Vec<u8>, spec: &str| -> Option<Vec<u8>> {
        let spec: Spec = spec.parse().ok()?;
        let mut out = MemoryTarget::new();
        pipeline::render(Source::memory(input), &spec, &mut out, &opts).ok()?;
        Some(out.take())
    };
    let thumb = run(ppm, "q90_jpg").and_then(|jpeg| run(jpeg, "w100"));
    black_box(thumb).is_some_and(|t| !t.is_empty())
}

/// Faults in [`HEAP`] bytes of the calling thread's arena and gives them back to it.
fn touch_heap() {
    let mut v: Vec<u8> = Vec::with_capacity(HEAP);
    // One write per page is enough to fault it in.
    for i in (0..HEAP).step_by(4096) {
        // SAFETY: within the capacity just reserved; u8 has no invalid values.
        unsafe { v.as_mut_ptr().add(i).write_volatile(1) };
    }
    black_box(&v);
}

/// Faults in [`STACK`] bytes of the main thread's stack.
#[inline(never)]
fn touch_stack() {
    black_box(&[1u8; STACK]);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_warm_up_render_runs() {
        assert!(super::render_once());
    }
}
