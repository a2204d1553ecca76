//! The entropy-coded data of a scan, unstuffed into one buffer: 0xFF00 becomes 0xFF, fill
//! bytes go, and restart markers split it into intervals. Reading bits is then one unaligned
//! load at any bit position, which is also what lets a second thread start anywhere.

use crate::error::{Error, Result};

/// Zero bytes after the data: more than one MCU can consume (10 blocks of at most 1984 bits),
/// so that a decoder that checks its position once per MCU never reads outside the buffer.
pub const PAD: usize = 4096;

/// The unstuffed scan data.
pub struct Scan {
    /// The data, then [`PAD`] zero bytes.
    pub data: Vec<u8>,
    /// Byte ranges of the restart intervals in `data` (one range without restart markers).
    pub intervals: Vec<(usize, usize)>,
    /// The number (0..=7) of the restart marker after each interval but the last.
    pub markers: Vec<u8>,
}

/// Unstuffs the scan that starts at `start`; with `restarts`, RSTn markers split it,
/// otherwise (as any other marker) they end it.
pub fn unstuff(file: &[u8], start: usize, restarts: bool) -> Result<Scan> {
    let rest = file.get(start..).unwrap_or(&[]);
    let mut data = crate::alloc::with_capacity(rest.len() + PAD, "JPEG scan data")?;
    let (mut intervals, mut markers) = (Vec::new(), Vec::new());
    let mut from = 0;
    let mut i = 0;
    while i < rest.len() {
        let n = memchr::memchr(0xFF, &rest[i..]);
        let Some(n) = n else {
            data.extend_from_slice(&rest[i..]);
            break;
        };
        data.extend_from_slice(&rest[i..i + n]);
        let at = i + n;
        match rest.get(at + 1) {
            None => break,
            Some(0x00) => {
                data.push(0xFF);
                i = at + 2;
            }
            // A fill byte: the next 0xFF starts the marker (or the stuffed byte).
            Some(0xFF) => i = at + 1,
            Some(&m @ 0xD0..=0xD7) if restarts => {
                intervals.push((from, data.len()));
                markers.push(m - 0xD0);
                from = data.len();
                i = at + 2;
            }
            Some(_) => break,
        }
    }
    intervals.push((from, data.len()));
    data.resize(data.len() + PAD, 0);
    Ok(Scan {
        data,
        intervals,
        markers,
    })
}

/// The 32 bits from bit `pos` of `data`, first bit highest. The caller keeps `pos` within
/// the data before the padding (see [`PAD`]).
#[inline(always)]
pub fn peek(data: &[u8], pos: usize) -> u32 {
    let b = pos >> 3;
    let w = match data.get(b..b + 8) {
        Some(s) => u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        None => 0,
    };
    ((w << (pos & 7)) >> 32) as u32
}

/// libjpeg's HUFF_EXTEND: `s` bits `x` as a signed value.
#[inline(always)]
pub fn extend(x: u32, s: u32) -> i32 {
    let x = x as i32;
    if x < 1 << (s - 1) {
        x - (1 << s) + 1
    } else {
        x
    }
}

/// The error for data that runs out or holds no valid code.
pub fn corrupt(what: &str) -> Error {
    Error::decode("jpeg", format!("corrupt JPEG data: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuffs_and_splits_at_restarts() {
        let file = [
            1, 0xFF, 0x00, 2, 0xFF, 0xD0, 3, 0xFF, 0xFF, 0x00, 0xFF, 0xD1, 4, 0xFF, 0xD9,
        ];
        let s = unstuff(&file, 0, true).unwrap();
        assert_eq!(s.intervals, vec![(0, 3), (3, 5), (5, 6)]);
        assert_eq!(&s.data[..6], &[1, 0xFF, 2, 3, 0xFF, 4]);
        assert_eq!(s.markers, vec![0, 1]);
        assert_eq!(s.data.len(), 6 + PAD);
        let s = unstuff(&file, 0, false).unwrap();
        assert_eq!(s.intervals, vec![(0, 3)]);
    }

    #[test]
    fn peeks_any_bit_position() {
        let data = [0b1010_1010, 0b1100_1100, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(peek(&data, 0) >> 24, 0b1010_1010);
        assert_eq!(peek(&data, 3) >> 24, 0b0101_0110);
        assert_eq!(extend(0b01, 2), -2);
        assert_eq!(extend(0b10, 2), 2);
    }
}
