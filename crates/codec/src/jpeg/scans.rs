//! Drops the AC scans of chosen components from a progressive JPEG byte stream.
//!
//! At 1/8 scale libjpeg reconstructs a component whose blocks shrink to one pixel from the DC
//! coefficient alone (its 1x1 IDCT), yet it still Huffman-decodes every AC scan of that
//! component, most of a progressive file. Progressive AC scans hold one component each
//! (ITU T.81 G.1.1.1.1), so removing them before libjpeg sees them gives the same pixels
//! for a fraction of the work. Everything else passes through byte for byte, so a damaged file
//! fails as it would unfiltered, except inside the dropped scans.

/// Where the filter is in the marker structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between segments; `ff`: a 0xFF was seen and not yet passed on.
    Marker { ff: bool },
    /// Reading the 2-byte length of a segment (its marker bytes are in `seg`).
    Length,
    /// Passing `left` bytes of a segment body on.
    Body { left: usize },
    /// Collecting an SOS segment whole, `left` bytes to go, to decide on its scan.
    Sos { left: usize },
    /// Entropy-coded data; `keep`: passed on or dropped; `ff`: a 0xFF not yet passed on.
    Entropy { keep: bool, ff: bool },
}

/// A streaming filter: feed it input with [`ScanFilter::push`], it appends what libjpeg gets.
#[derive(Debug)]
pub struct ScanFilter {
    /// Component ids whose AC scans are dropped (empty: a pure pass-through).
    drop: Vec<u8>,
    state: State,
    /// The marker segment being assembled (SOS, or a length being read).
    seg: Vec<u8>,
}

impl Default for ScanFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl ScanFilter {
    /// A filter that drops nothing until [`ScanFilter::drop_ac_of`] says what to drop.
    pub fn new() -> Self {
        Self {
            drop: Vec::new(),
            state: State::Marker { ff: false },
            seg: Vec::new(),
        }
    }

    /// Drops the AC scans of these component ids from here on (scans already passed stay).
    pub fn drop_ac_of(&mut self, ids: &[u8]) {
        self.drop = ids.to_vec();
    }

    /// Filters `input`, appending the bytes to keep to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.state {
                State::Entropy { keep, ff: false } => {
                    // Runs of entropy-coded data up to the next 0xFF go in one copy.
                    let n = input.iter().position(|&b| b == 0xFF).unwrap_or(input.len());
                    if keep {
                        out.extend_from_slice(&input[..n]);
                    }
                    if n < input.len() {
                        self.state = State::Entropy { keep, ff: true };
                        input = &input[n + 1..];
                    } else {
                        input = &[];
                    }
                }
                State::Entropy { keep, ff: true } => {
                    let b = input[0];
                    match b {
                        // A stuffed zero or a restart marker: still this scan's data.
                        0x00 | 0xD0..=0xD7 => {
                            if keep {
                                out.extend_from_slice(&[0xFF, b]);
                            }
                            self.state = State::Entropy { keep, ff: false };
                            input = &input[1..];
                        }
                        // A fill byte: the 0xFF before it was fill too.
                        0xFF => {
                            if keep {
                                out.push(0xFF);
                            }
                            input = &input[1..];
                        }
                        // Any other marker ends the scan.
                        _ => self.state = State::Marker { ff: true },
                    }
                }
                State::Body { left } => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        State::Marker { ff: false }
                    } else {
                        State::Body { left: left - n }
                    };
                }
                State::Sos { left } => {
                    let n = left.min(input.len());
                    self.seg.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if n == left {
                        let keep = self.keeps_scan();
                        if keep {
                            out.append(&mut self.seg);
                        } else {
                            self.seg.clear();
                        }
                        self.state = State::Entropy { keep, ff: false };
                    } else {
                        self.state = State::Sos { left: left - n };
                    }
                }
                State::Length => {
                    self.seg.push(input[0]);
                    input = &input[1..];
                    if self.seg.len() == 4 {
                        let len = u16::from_be_bytes([self.seg[2], self.seg[3]]) as usize;
                        // A length below 2 is broken: pass it on for libjpeg to reject.
                        let left = len.saturating_sub(2);
                        self.state = if self.seg[1] == 0xDA && left > 0 {
                            State::Sos { left }
                        } else {
                            out.append(&mut self.seg);
                            if left == 0 {
                                State::Marker { ff: false }
                            } else {
                                State::Body { left }
                            }
                        };
                    }
                }
                State::Marker { ff } => {
                    let b = input[0];
                    input = &input[1..];
                    match (ff, b) {
                        (false, 0xFF) => self.state = State::Marker { ff: true },
                        // Not a marker where one belongs: libjpeg's problem, passed on as is.
                        (false, _) => out.push(b),
                        // Fill bytes before a marker.
                        (true, 0xFF) => out.push(0xFF),
                        // Markers without a length: SOI, EOI, RSTn, TEM.
                        (true, 0x01 | 0xD0..=0xD9) => {
                            out.extend_from_slice(&[0xFF, b]);
                            self.state = State::Marker { ff: false };
                        }
                        (true, _) => {
                            self.seg.clear();
                            self.seg.extend_from_slice(&[0xFF, b]);
                            self.state = State::Length;
                        }
                    }
                }
            }
        }
    }

    /// Whether the SOS segment in `seg` starts a scan libjpeg needs.
    fn keeps_scan(&self) -> bool {
        // FF DA, length (2), Ns, Ns x (id, tables), Ss, Se, Ah/Al.
        let s = &self.seg;
        let ns = s.get(4).copied().unwrap_or(0) as usize;
        let Some(&ss) = s.get(5 + 2 * ns) else {
            return true;
        };
        !(ns == 1 && ss > 0 && self.drop.contains(&s[5]))
    }

    /// Bytes held back (an SOS or length being assembled, a trailing 0xFF) at the end of input,
    /// so a truncated file stays truncated rather than losing its last bytes.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        match self.state {
            State::Marker { ff: true }
            | State::Entropy {
                keep: true,
                ff: true,
            } => out.push(0xFF),
            State::Length | State::Sos { .. } => out.append(&mut self.seg),
            _ => {}
        }
        self.state = State::Marker { ff: false };
    }
}

/// The components whose AC coefficients libjpeg never reads at 1/`scale`: those its
/// `jpeg_calc_output_dimensions` gives a 1x1 IDCT (it scales chroma up in the IDCT where the
/// sampling allows, so subsampled chroma may keep a 2x2 one). `comps` is (id, h, v) per
/// component.
pub fn dc_only_components(comps: &[(u8, u8, u8)], scale: u32) -> Vec<u8> {
    if scale != 8 {
        return Vec::new();
    }
    let hmax = comps.iter().map(|c| c.1 as u32).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.2 as u32).max().unwrap_or(1);
    // libjpeg's rule (jdmaster.c), starting from the smallest scaled size, 1 at 1/8.
    let min = 1;
    comps
        .iter()
        .filter(|&&(_, h, v)| {
            let (h, v) = (h as u32, v as u32);
            let grows = h > 0
                && v > 0
                && (hmax * min).is_multiple_of(h * min * 2)
                && (vmax * min).is_multiple_of(v * min * 2);
            !grows
        })
        .map(|c| c.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up progressive stream: SOI, DQT, one DC scan of 3 components, AC scans of each,
    /// EOI; the entropy data holds stuffed zeros, a restart marker and fill bytes.
    fn stream() -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02];
        // DC scan: Ns=3, Ss=0, Se=0.
        v.extend_from_slice(&[
            0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0, 2, 0, 3, 0, 0, 0, 0x01, 0x11, 0xFF, 0x00, 0x22,
        ]);
        for id in 1..=3u8 {
            v.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x03, id]);
            v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, id, 0, 1, 63, 0]);
            v.extend_from_slice(&[id, 0xFF, 0x00, 0xFF, 0xD0, id, 0xFF, 0xFF]);
        }
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    fn run(f: &mut ScanFilter, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            f.push(c, &mut out);
        }
        f.flush(&mut out);
        out
    }

    #[test]
    fn pass_through_when_nothing_is_dropped() {
        let s = stream();
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(run(&mut ScanFilter::new(), &s, chunk), s, "chunk {chunk}");
        }
    }

    #[test]
    fn drops_the_ac_scans_of_chosen_components_only() {
        let s = stream();
        // SOI, DQT and the DC scan stay; component 1's AC scan goes, its table (before it)
        // stays; the rest stays.
        let dc_end = 8 + 19;
        let ac1 = dc_end + 5;
        let mut expect = s[..ac1].to_vec();
        expect.extend_from_slice(&s[ac1 + 18..]);
        for chunk in [1, 2, 5, 1000] {
            let mut f = ScanFilter::new();
            f.drop_ac_of(&[1]);
            assert_eq!(run(&mut f, &s, chunk), expect, "chunk {chunk}");
        }
    }

    #[test]
    fn truncated_input_keeps_its_held_back_bytes() {
        let s = stream();
        for cut in 0..s.len() {
            assert_eq!(
                run(&mut ScanFilter::new(), &s[..cut], 3),
                &s[..cut],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn dc_only_components_follow_libjpeg_scaling() {
        // 4:2:0: chroma gets a 2x2 IDCT at 1/8, so only luma is DC-only.
        assert_eq!(
            dc_only_components(&[(1, 2, 2), (2, 1, 1), (3, 1, 1)], 8),
            [1]
        );
        // 4:4:4 and 4:2:2: every component is DC-only at 1/8.
        assert_eq!(
            dc_only_components(&[(1, 1, 1), (2, 1, 1), (3, 1, 1)], 8),
            [1, 2, 3]
        );
        assert_eq!(
            dc_only_components(&[(1, 2, 1), (2, 1, 1), (3, 1, 1)], 8),
            [1, 2, 3]
        );
        assert!(dc_only_components(&[(1, 1, 1)], 4).is_empty());
    }
}
