//! Operations on in-memory images against the same operations in libvips.

use crate::common;

mod colour;
mod smartcrop;

use std::path::Path;
use std::process::Command;

use common::*;
use thumbfs::image::{BoxStream, Header, Metadata, SampleFormat};
use thumbfs::spec::Rotation;
use thumbfs::{ops, Image, Samples};

fn vips(args: &[&str]) {
    let out = Command::new("vips").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vips {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A noisy 8-bit RGB test picture of odd size, made by libvips, as PPM.
fn picture(dir: &Path) -> String {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    vips(&[
        "gaussnoise",
        &p("n.v"),
        "333",
        "217",
        "--mean",
        "128",
        "--sigma",
        "60",
    ]);
    vips(&[
        "bandjoin",
        &format!("{} {} {}", p("n.v"), p("n.v"), p("n.v")),
        &p("j.v"),
    ]);
    vips(&["rot", &p("j.v"), &p("r.v"), "d180"]);
    vips(&["add", &p("j.v"), &p("r.v"), &p("s.v")]);
    vips(&["linear", &p("s.v"), &p("l.v"), "0.5", "0"]);
    vips(&["cast", &p("l.v"), &p("pic.ppm"), "uchar"]);
    p("pic.ppm")
}

fn load_ppm(path: &str) -> Image {
    let px = parse_pnm(&std::fs::read(path).unwrap());
    Image {
        header: Header {
            width: px.width,
            height: px.height,
            bands: px.bands as u8,
            format: SampleFormat::U8,
            bit_depth: 8,
            meta: Metadata::upright(),
        },
        samples: Samples::U8(px.data.iter().map(|&v| v as u8).collect()),
    }
}

fn stream(img: &Image) -> BoxStream<'static> {
    Box::new(img.clone().into_stream(7))
}

fn samples(img: &Image) -> Vec<u16> {
    match &img.samples {
        Samples::U8(v) => v.iter().map(|&x| x as u16).collect(),
        _ => unreachable!(),
    }
}

#[test]
fn shrink_matches_vips_where_blocks_are_whole() {
    let dir = tempfile::tempdir().unwrap();
    let pic = picture(dir.path());
    let img = load_ppm(&pic);
    for f in [2u32, 3] {
        let ours = Image::collect(ops::shrink(stream(&img), f).unwrap()).unwrap();
        assert_eq!(ours.header.width, 333u32.div_ceil(f));
        let out = dir.path().join(format!("s{f}.ppm"));
        vips(&[
            "shrink",
            &pic,
            out.to_str().unwrap(),
            &f.to_string(),
            &f.to_string(),
        ]);
        let reference = parse_pnm(&std::fs::read(&out).unwrap());
        // vips rounds the output size, we keep partial edge blocks: compare the whole blocks.
        let (w, h) = (333 / f, 217 / f);
        let ours = samples(&ours);
        let mut max = 0;
        for y in 0..h as usize {
            for x in 0..(w * 3) as usize {
                let a = ours[y * (ours.len() / 217usize.div_ceil(f as usize)) + x];
                let b = reference.data[y * (reference.width * 3) as usize + x];
                max = max.max(a.abs_diff(b));
            }
        }
        assert!(max <= 1, "shrink {f}: max difference {max}");
    }
}

#[test]
fn resize_is_close_to_vips_lanczos3() {
    let dir = tempfile::tempdir().unwrap();
    let pic = picture(dir.path());
    let img = load_ppm(&pic);
    let ours = Image::collect(ops::resize(stream(&img), 150, 98).unwrap()).unwrap();
    let out = dir.path().join("r.ppm");
    // vips resize keeps the aspect from one scale; give it both.
    vips(&[
        "resize",
        &pic,
        out.to_str().unwrap(),
        &(150.0 / 333.0).to_string(),
        "--vscale",
        &(98.0 / 217.0).to_string(),
        "--kernel",
        "lanczos3",
    ]);
    let reference = parse_pnm(&std::fs::read(&out).unwrap());
    assert_eq!((reference.width, reference.height), (150, 98));
    let p = psnr(&samples(&ours), &reference.data, 255);
    eprintln!("resize vs vips: {p:.1} dB");
    assert!(p >= 30.0, "{p:.1} dB");
}

#[test]
fn mirrors_and_rotations_match_vips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pic = picture(dir.path());
    let img = load_ppm(&pic);
    let cases: [(&str, Vec<&str>, BoxStream); 5] = [
        (
            "flip",
            vec!["flip", "vertical"],
            ops::flip(stream(&img)).unwrap(),
        ),
        (
            "flop",
            vec!["flip", "horizontal"],
            ops::flop(stream(&img)).unwrap(),
        ),
        (
            "rot90",
            vec!["rot", "d90"],
            ops::rotate(stream(&img), Rotation::R90).unwrap(),
        ),
        (
            "rot180",
            vec!["rot", "d180"],
            ops::rotate(stream(&img), Rotation::R180).unwrap(),
        ),
        (
            "rot270",
            vec!["rot", "d270"],
            ops::rotate(stream(&img), Rotation::R270).unwrap(),
        ),
    ];
    for (name, args, ours) in cases {
        let out = dir.path().join(format!("{name}.ppm"));
        vips(&[args[0], &pic, out.to_str().unwrap(), args[1]]);
        let reference = parse_pnm(&std::fs::read(&out).unwrap());
        let ours = Image::collect(ours).unwrap();
        assert_eq!(
            (ours.header.width, ours.header.height),
            (reference.width, reference.height)
        );
        assert_eq!(samples(&ours), reference.data, "{name}");
    }
}

#[test]
fn invert_grey_and_crop() {
    let dir = tempfile::tempdir().unwrap();
    let pic = picture(dir.path());
    let img = load_ppm(&pic);
    let inv = Image::collect(ops::invert(stream(&img)).unwrap()).unwrap();
    let out = dir.path().join("inv.ppm");
    vips(&["invert", &pic, out.to_str().unwrap()]);
    assert_eq!(samples(&inv), parse_pnm(&std::fs::read(&out).unwrap()).data);

    let rect = thumbfs::spec::CropRect {
        x: 10,
        y: 20,
        width: 100,
        height: 50,
    };
    let c = Image::collect(ops::crop(stream(&img), rect).unwrap()).unwrap();
    let out = dir.path().join("crop.ppm");
    vips(&["crop", &pic, out.to_str().unwrap(), "10", "20", "100", "50"]);
    assert_eq!(samples(&c), parse_pnm(&std::fs::read(&out).unwrap()).data);
    let too_big = thumbfs::spec::CropRect {
        x: 300,
        y: 0,
        width: 100,
        height: 10,
    };
    assert!(ops::crop(stream(&img), too_big).is_err());

    let g = Image::collect(ops::grey(stream(&img)).unwrap()).unwrap();
    assert_eq!(g.header.bands, 1);
    // Every source pixel is grey (equal bands), so luma equals the input value.
    let src = samples(&img);
    let grey: Vec<u16> = src.chunks(3).map(|p| p[0]).collect();
    assert_eq!(samples(&g), grey);
}
