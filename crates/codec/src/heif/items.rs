//! The item graph of a HEIF file, checked before libheif sees the file.
//!
//! libheif 1.15 follows derived-image references (`dimg`: grid, overlay, identity) and the
//! alpha/depth images of an item (`auxl`) recursively, with no cycle check: a grid listed
//! among its own tiles recurses until the stack overflows, and with tile threads (up to 4 per
//! grid, nested) it starts threads until the system runs out, then throws (a 1 KB fuzz input
//! reached 2,000 threads). An image's alpha image is decoded with its own alpha, so a chain of
//! them recurses as deep as it is long. So cycles are refused here, and so are chains longer
//! and derived images nested deeper than real files have them (a grid, its alpha grid).
//!
//! Grid and overlay images declare their own canvas size in their item data, which libheif
//! 1.15 allocates without comparing it with the `ispe` size we check against `--max-pixels`
//! (a 731-byte fuzz input: a 32x21 image whose overlay canvas took 3.9 GB). [`check_canvases`]
//! reads those sizes (through `iinf`, `iloc` and `idat`) and holds them to the same limit.
//!
//! The parse is deliberately generous: every `iref`, `iinf` and `iloc` in every top-level
//! `meta` counts, so a file that libheif reads in some other way cannot hide an edge or a
//! canvas from these checks.

use std::collections::{HashMap, HashSet};

/// Derived images (items with `dimg` inputs) allowed on one chain of references: a grid
/// primary image whose alpha is a grid too is 2; each level may run 4 tile threads at once.
const MAX_DERIVED_DEPTH: usize = 3;

/// References on one chain that libheif follows (a grid's alpha grid's tile is 2).
const MAX_CHAIN: usize = 8;

/// One ISO-BMFF box: its type and its body (after the size/type header), cut at the data's
/// end when the size claims more.
pub(super) struct Bx<'a> {
    /// The four-character type.
    pub kind: [u8; 4],
    /// The contents after the header.
    pub body: &'a [u8],
}

/// The boxes in `data`, in order, up to the first header that cannot be a box.
pub(super) fn boxes(mut data: &[u8]) -> Vec<Bx<'_>> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as u64;
        let kind = [data[4], data[5], data[6], data[7]];
        let (header, size) = match size {
            // To the end of the enclosing data.
            0 => (8, data.len() as u64),
            // A 64-bit size follows the type.
            1 if data.len() >= 16 => (
                16,
                u64::from_be_bytes(data[8..16].try_into().expect("8 bytes")),
            ),
            1 => break,
            s => (8, s),
        };
        if size < header as u64 {
            break;
        }
        let end = size.min(data.len() as u64) as usize;
        out.push(Bx {
            kind,
            body: &data[header..end],
        });
        data = &data[end..];
    }
    out
}

/// The child boxes of each top-level `meta` (a full box: version and flags come first).
fn metas(bytes: &[u8]) -> impl Iterator<Item = Vec<Bx<'_>>> {
    boxes(bytes)
        .into_iter()
        .filter(|b| &b.kind == b"meta")
        .filter_map(|meta| meta.body.get(4..).map(boxes))
}

/// The references that make libheif decode one item when it decodes another: `dimg` (a
/// derived image decodes its inputs) and `auxl` (an image decodes its alpha; the box points
/// from the auxiliary image to its master, so the edge is reversed here).
fn decode_edges(bytes: &[u8]) -> (HashMap<u32, Vec<u32>>, HashSet<u32>) {
    let mut edges: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut derived = HashSet::new();
    for children in metas(bytes) {
        for iref in children.iter().filter(|b| &b.kind == b"iref") {
            // iref is a full box too: version, then three bytes of flags.
            let Some((&version, rest)) = iref.body.split_first() else {
                continue;
            };
            let Some(refs) = rest.get(3..) else {
                continue;
            };
            let id_len = if version == 0 { 2 } else { 4 };
            for r in boxes(refs) {
                let (dimg, auxl) = (&r.kind == b"dimg", &r.kind == b"auxl");
                if !dimg && !auxl {
                    continue;
                }
                let ids = read_ids(r.body, id_len);
                let Some((&from, to)) = ids.split_first() else {
                    continue;
                };
                if dimg {
                    derived.insert(from);
                    edges.entry(from).or_default().extend_from_slice(to);
                } else {
                    for &master in to {
                        edges.entry(master).or_default().push(from);
                    }
                }
            }
        }
    }
    (edges, derived)
}

/// `from_item_ID`, then the `to_item_ID`s of a reference box (after the 16-bit count), as many
/// as the body holds.
pub(super) fn read_ids(body: &[u8], id_len: usize) -> Vec<u32> {
    let mut at = 0;
    let (Some(from), Some(count)) = (take(body, &mut at, id_len), take(body, &mut at, 2)) else {
        return Vec::new();
    };
    let mut ids = vec![from as u32];
    ids.extend((0..count).map_while(|_| take(body, &mut at, id_len).map(|id| id as u32)));
    ids
}

/// A big-endian unsigned integer of `n` bytes (0, 2, 4 or 8) at `*at`, advancing it.
pub(super) fn take(b: &[u8], at: &mut usize, n: usize) -> Option<u64> {
    let v = b.get(*at..at.checked_add(n)?)?;
    *at += n;
    Some(v.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// Item types by ID, from the `infe` entries (version 2 and 3) of an `iinf` body.
pub(super) fn item_types(iinf: &[u8], types: &mut HashMap<u32, [u8; 4]>) {
    let Some(&version) = iinf.first() else {
        return;
    };
    let skip = if version == 0 { 6 } else { 8 };
    for infe in boxes(iinf.get(skip..).unwrap_or(&[])) {
        if &infe.kind != b"infe" {
            continue;
        }
        let b = infe.body;
        let mut at = 4;
        let id = match b.first() {
            Some(2) => take(b, &mut at, 2),
            Some(3) => take(b, &mut at, 4),
            _ => None,
        };
        at += 2; // item_protection_index
        if let (Some(id), Some(kind)) = (id, b.get(at..at + 4)) {
            types.insert(id as u32, kind.try_into().expect("4 bytes"));
        }
    }
}

/// Where an item's data lies: construction method 0 (file offsets) or 1 (`idat` offsets),
/// and its extents as (offset, length; 0 = to the end).
pub(super) type Location = (u64, Vec<(u64, u64)>);

/// Item locations by ID from an `iloc` body; items with other construction methods are left
/// out (libheif 1.15 reads only these two).
pub(super) fn item_locations(b: &[u8], out: &mut HashMap<u32, Location>) -> Option<()> {
    let version = *b.first()?;
    let mut at = 4;
    let sizes = take(b, &mut at, 2)? as usize;
    let (off_len, len_len) = (sizes >> 12, (sizes >> 8) & 15);
    let (base_len, index_len) = ((sizes >> 4) & 15, sizes & 15);
    let index_len = if version == 0 { 0 } else { index_len };
    let wide = if version < 2 { 2 } else { 4 };
    for _ in 0..take(b, &mut at, wide)? {
        let id = take(b, &mut at, wide)? as u32;
        let method = if version == 0 {
            0
        } else {
            take(b, &mut at, 2)? & 15
        };
        at += 2; // data_reference_index
        let base = take(b, &mut at, base_len)?;
        let mut extents = Vec::new();
        for _ in 0..take(b, &mut at, 2)? {
            take(b, &mut at, index_len)?;
            let offset = base.checked_add(take(b, &mut at, off_len)?)?;
            extents.push((offset, take(b, &mut at, len_len)?));
        }
        if method <= 1 {
            out.insert(id, (method, extents));
        }
    }
    Some(())
}

/// The first bytes (up to 32) of an item's data, from the file or the `idat` body.
fn item_head(bytes: &[u8], idat: &[u8], (method, extents): &Location) -> Vec<u8> {
    let data = if *method == 0 { bytes } else { idat };
    let mut head = Vec::new();
    for &(offset, len) in extents {
        let Some(from) = usize::try_from(offset).ok().filter(|&o| o <= data.len()) else {
            break;
        };
        let end = match len {
            0 => data.len(),
            n => usize::try_from(n).map_or(data.len(), |n| from.saturating_add(n).min(data.len())),
        };
        head.extend_from_slice(&data[from..end.min(from + 32)]);
        if head.len() >= 32 {
            break;
        }
    }
    head
}

/// The canvas a grid (`grid`) or overlay (`iovl`) item declares, as libheif 1.15 reads it.
fn canvas(kind: &[u8; 4], head: &[u8]) -> Option<(u64, u64)> {
    let flags = *head.get(1)?;
    let field = if flags & 1 == 1 { 4 } else { 2 };
    // grid: version, flags, rows - 1, columns - 1; iovl: version, flags, 4 fill values.
    let mut at = match kind {
        b"grid" => 4,
        b"iovl" => 10,
        _ => return None,
    };
    Some((take(head, &mut at, field)?, take(head, &mut at, field)?))
}

/// Refuses grid and overlay canvases of more than `max_pixels` pixels: libheif allocates
/// them whole, whatever the image's `ispe` size said.
pub fn check_canvases(bytes: &[u8], max_pixels: u64) -> Result<(), String> {
    for children in metas(bytes) {
        let (mut types, mut locations) = (HashMap::new(), HashMap::new());
        let mut idat: &[u8] = &[];
        for b in &children {
            match &b.kind {
                b"iinf" => item_types(b.body, &mut types),
                b"iloc" => {
                    let _ = item_locations(b.body, &mut locations);
                }
                b"idat" if idat.is_empty() => idat = b.body,
                _ => {}
            }
        }
        let mut ids: Vec<_> = types.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let kind = &types[&id];
            let Some(location) = locations.get(&id) else {
                continue;
            };
            if let Some((w, h)) = canvas(kind, &item_head(bytes, idat, location)) {
                if w.saturating_mul(h) > max_pixels {
                    return Err(format!(
                        "item {id} ({}) declares a {w}x{h} canvas, over the {max_pixels}-pixel limit",
                        String::from_utf8_lossy(kind)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Where a depth-first walk stands with an item.
#[derive(Clone, Copy)]
enum Visit {
    /// On the current path: reaching it again closes a cycle.
    Open,
    /// Finished: the most derived images and the most references on any chain from here.
    Done(usize, usize),
}

/// Item types that libheif can take as an image (what its file interpretation turns into
/// images); an input of another type, or none, is not among its images.
const IMAGE_TYPES: [&[u8; 4]; 10] = [
    b"hvc1", b"av01", b"grid", b"iden", b"iovl", b"jpeg", b"unci", b"j2k1", b"vvc1", b"mski",
];

/// The items that the file's `iinf` boxes declare with an image type, or `None` when it has
/// no `iinf`.
fn declared_images(bytes: &[u8]) -> Option<HashSet<u32>> {
    let mut types = HashMap::new();
    let mut any = false;
    for children in metas(bytes) {
        for iinf in children.iter().filter(|b| &b.kind == b"iinf") {
            any = true;
            item_types(iinf.body, &mut types);
        }
    }
    any.then(|| {
        types
            .into_iter()
            .filter(|(_, kind)| IMAGE_TYPES.contains(&kind))
            .map(|(id, _)| id)
            .collect()
    })
}

/// Refuses files whose item references libheif would follow forever or too deep, or to an
/// input the file does not declare as an image (libheif 1.15 asserts that a derived image's inputs are
/// among its images: `Assertion 'imginfo' failed` aborts the process; found by
/// `scripts/fuzz.sh heic`).
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let (edges, derived) = decode_edges(bytes);
    if let Some(declared) = declared_images(bytes) {
        let mut from: Vec<u32> = derived.iter().copied().collect();
        from.sort_unstable();
        for item in from {
            let inputs = edges.get(&item).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(missing) = inputs.iter().find(|i| !declared.contains(i)) {
                return Err(format!(
                    "item {item} takes item {missing} as an input, which the file does not declare as an image"
                ));
            }
        }
    }
    let mut seen: HashMap<u32, Visit> = HashMap::new();
    let mut starts: Vec<u32> = edges.keys().copied().collect();
    // HashMap order varies; the first problem found is reported, so make it the same each run.
    starts.sort_unstable();
    for start in starts {
        if seen.contains_key(&start) {
            continue;
        }
        // An explicit stack: a hostile file could chain millions of items.
        let mut stack = vec![(start, 0usize)];
        seen.insert(start, Visit::Open);
        while let Some((item, next)) = stack.last_mut() {
            let item = *item;
            let inputs = edges.get(&item).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&input) = inputs.get(*next) {
                *next += 1;
                match seen.get(&input) {
                    None => {
                        seen.insert(input, Visit::Open);
                        stack.push((input, 0));
                    }
                    Some(Visit::Open) => {
                        return Err(format!(
                            "item {input} is among its own inputs (a reference cycle)"
                        ));
                    }
                    Some(Visit::Done(..)) => {}
                }
                continue;
            }
            let (mut depth, mut chain) = (0, 0);
            for i in inputs {
                if let Some(Visit::Done(d, c)) = seen.get(i) {
                    depth = depth.max(*d);
                    chain = chain.max(c + 1);
                }
            }
            depth += usize::from(derived.contains(&item));
            if depth > MAX_DERIVED_DEPTH {
                return Err(format!(
                    "item {item} nests derived images {depth} deep (at most {MAX_DERIVED_DEPTH})"
                ));
            }
            if chain > MAX_CHAIN {
                return Err(format!(
                    "item {item} starts a chain of {chain} image references (at most {MAX_CHAIN})"
                ));
            }
            seen.insert(item, Visit::Done(depth, chain));
            stack.pop();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A file with an `ftyp` and a `meta` whose `iref` (version 0) holds `refs`:
    /// (type, from, to...).
    fn file(refs: &[(&[u8; 4], u16, &[u16])]) -> Vec<u8> {
        let mut iref = vec![0u8; 4];
        for (kind, from, to) in refs {
            let mut body = from.to_be_bytes().to_vec();
            body.extend_from_slice(&(to.len() as u16).to_be_bytes());
            for t in *to {
                body.extend_from_slice(&t.to_be_bytes());
            }
            iref.extend(bx(kind, &body));
        }
        let mut meta = vec![0u8; 4];
        meta.extend(bx(b"hdlr", &[0; 24]));
        meta.extend(bx(b"iref", &iref));
        let mut f = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
        f.extend(bx(b"meta", &meta));
        f
    }

    /// As [`file`], with an `iinf` (version 0) declaring `items` as `hvc1` (infe version 2).
    fn file_with_items(refs: &[(&[u8; 4], u16, &[u16])], items: &[u16]) -> Vec<u8> {
        let typed: Vec<(u16, &[u8; 4])> = items.iter().map(|&i| (i, b"hvc1")).collect();
        file_with_typed_items(refs, &typed)
    }

    /// As [`file_with_items`], each item with its own type.
    fn file_with_typed_items(
        refs: &[(&[u8; 4], u16, &[u16])],
        items: &[(u16, &[u8; 4])],
    ) -> Vec<u8> {
        let mut iinf = vec![0u8; 4];
        iinf.extend_from_slice(&(items.len() as u16).to_be_bytes());
        for (id, kind) in items {
            let mut infe = vec![2u8, 0, 0, 0];
            infe.extend_from_slice(&id.to_be_bytes());
            infe.extend_from_slice(&[0, 0]);
            infe.extend_from_slice(*kind);
            infe.push(0);
            iinf.extend(bx(b"infe", &infe));
        }
        let mut f = file(refs);
        // Append the iinf inside the meta box and fix the meta size.
        let meta_at = f.windows(4).position(|w| w == b"meta").unwrap() - 4;
        f.extend(bx(b"iinf", &iinf));
        let size = (f.len() - meta_at) as u32;
        f[meta_at..meta_at + 4].copy_from_slice(&size.to_be_bytes());
        f
    }

    #[test]
    fn an_undeclared_input_is_refused() {
        // An identity image whose input is not declared: libheif would abort on it.
        let err = check(&file_with_items(&[(b"dimg", 2, &[1])], &[2, 3])).unwrap_err();
        assert!(err.contains("item 2") && err.contains("item 1"), "{err}");
        assert!(check(&file_with_items(&[(b"dimg", 2, &[1])], &[1, 2])).is_ok());
        // Declared, but of a type libheif does not take as an image (found by the fuzzer too).
        let odd = file_with_typed_items(&[(b"dimg", 2, &[1])], &[(1, b"g-id"), (2, b"iden")]);
        assert!(check(&odd).is_err());
        // Without any iinf there is nothing to check against (libheif refuses such files).
        assert!(check(&file(&[(b"dimg", 2, &[1])])).is_ok());
    }

    #[test]
    fn a_grid_with_alpha_and_thumbnail_passes() {
        let f = file(&[
            (b"dimg", 1, &[2, 3, 4, 5]),
            (b"auxl", 6, &[1]),
            (b"dimg", 6, &[7, 8, 9, 10]),
            (b"thmb", 11, &[1]),
            (b"cdsc", 12, &[1]),
        ]);
        assert_eq!(check(&f), Ok(()));
        // Tiles shared between grids are not a cycle.
        assert_eq!(
            check(&file(&[(b"dimg", 1, &[2, 2]), (b"dimg", 3, &[2])])),
            Ok(())
        );
    }

    #[test]
    fn cycles_are_refused() {
        let own = check(&file(&[(b"dimg", 1, &[2, 1])])).unwrap_err();
        assert!(own.contains("item 1") && own.contains("cycle"), "{own}");
        assert!(check(&file(&[
            (b"dimg", 1, &[2]),
            (b"dimg", 2, &[3]),
            (b"dimg", 3, &[1])
        ]))
        .is_err());
        // Through an alpha image: decoding 1 decodes its alpha 5, a grid over 1.
        assert!(check(&file(&[(b"auxl", 5, &[1]), (b"dimg", 5, &[1])])).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let chain = |n: u16| -> Vec<u8> {
            let to: Vec<[u16; 1]> = (1..=n).map(|i| [i + 1]).collect();
            let refs: Vec<(&[u8; 4], u16, &[u16])> = (1..=n)
                .map(|i| (b"dimg", i, &to[i as usize - 1][..]))
                .collect();
            file(&refs)
        };
        assert_eq!(check(&chain(MAX_DERIVED_DEPTH as u16)), Ok(()));
        let e = check(&chain(MAX_DERIVED_DEPTH as u16 + 1)).unwrap_err();
        assert!(e.contains("deep"), "{e}");
        // A long chain does not overflow the checker's own stack.
        assert!(check(&chain(60_000)).is_err());
    }

    #[test]
    fn long_alpha_chains_are_refused() {
        // libheif decodes each alpha image's alpha: 1 <- 2 <- 3 ... recurses this deep.
        let chain = |n: u16| -> Vec<u8> {
            let to: Vec<[u16; 1]> = (1..=n).map(|i| [i]).collect();
            let refs: Vec<(&[u8; 4], u16, &[u16])> = (1..=n)
                .map(|i| (b"auxl", i + 1, &to[i as usize - 1][..]))
                .collect();
            file(&refs)
        };
        assert_eq!(check(&chain(MAX_CHAIN as u16)), Ok(()));
        let e = check(&chain(MAX_CHAIN as u16 + 1)).unwrap_err();
        assert!(e.contains("chain"), "{e}");
    }

    #[test]
    fn grid_and_overlay_canvases_are_held_to_the_pixel_limit() {
        // iinf (v0) with infe v2 entries, iloc v1 (4-byte offsets/lengths), idat.
        let infe = |id: u16, kind: &[u8; 4]| {
            let mut b = vec![2, 0, 0, 0];
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(kind);
            b.push(0);
            bx(b"infe", &b)
        };
        let build = |grid: &[u8], overlay: &[u8]| {
            let mut iinf = vec![0, 0, 0, 0, 0, 2];
            iinf.extend(infe(1, b"grid"));
            iinf.extend(infe(2, b"iovl"));
            let mut idat = grid.to_vec();
            idat.extend_from_slice(overlay);
            let mut iloc = vec![1, 0, 0, 0, 0x44, 0x00, 0, 2];
            for (id, method, offset, len) in [
                (1u16, 1u16, 0u32, grid.len() as u32),
                (2, 1, grid.len() as u32, overlay.len() as u32),
            ] {
                iloc.extend_from_slice(&id.to_be_bytes());
                iloc.extend_from_slice(&method.to_be_bytes());
                iloc.extend_from_slice(&[0, 0, 0, 1]);
                iloc.extend_from_slice(&offset.to_be_bytes());
                iloc.extend_from_slice(&len.to_be_bytes());
            }
            let mut meta = vec![0u8; 4];
            meta.extend(bx(b"iinf", &iinf));
            meta.extend(bx(b"iloc", &iloc));
            meta.extend(bx(b"idat", &idat));
            bx(b"meta", &meta)
        };
        // A 2x2 grid of 4000x3000 (16-bit fields) and a 4000x3000 overlay (32-bit fields).
        let grid = [0, 0, 1, 1, 0x0F, 0xA0, 0x0B, 0xB8];
        let mut overlay = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        overlay.extend_from_slice(&4000u32.to_be_bytes());
        overlay.extend_from_slice(&3000u32.to_be_bytes());
        let f = build(&grid, &overlay);
        assert_eq!(check_canvases(&f, 12_000_000), Ok(()));
        let e = check_canvases(&f, 11_999_999).unwrap_err();
        assert!(
            e.contains("item 1 (grid)") && e.contains("4000x3000"),
            "{e}"
        );
        // The overlay alone over the limit.
        let mut big = overlay.clone();
        big[10..14].copy_from_slice(&100_000u32.to_be_bytes());
        let e = check_canvases(&build(&grid, &big), 12_000_000).unwrap_err();
        assert!(
            e.contains("item 2 (iovl)") && e.contains("100000x3000"),
            "{e}"
        );
        // Truncated anywhere: no panic.
        let f = build(&grid, &big);
        for n in 0..f.len() {
            let _ = check_canvases(&f[..n], 1);
        }
    }

    #[test]
    fn version_1_ids_and_odd_boxes() {
        // 32-bit item IDs.
        let mut iref = vec![1u8, 0, 0, 0];
        let mut body = 70_000u32.to_be_bytes().to_vec();
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&70_000u32.to_be_bytes());
        iref.extend(bx(b"dimg", &body));
        let mut meta = vec![0u8; 4];
        meta.extend(bx(b"iref", &iref));
        assert!(check(&bx(b"meta", &meta)).is_err());
        // Truncated, zero-sized and garbage data never panic.
        let f = file(&[(b"dimg", 1, &[2, 1])]);
        for n in 0..f.len() {
            let _ = check(&f[..n]);
        }
        assert_eq!(check(&[0, 0, 0, 0, b'm', b'e', b't', b'a']), Ok(()));
        assert_eq!(check(&[0, 0, 0, 1, b'm', b'e', b't', b'a', 0, 0]), Ok(()));
    }
}
