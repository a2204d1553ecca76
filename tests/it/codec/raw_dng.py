"""Writes a DNG with pidng from a 16-bit linear-light PPM: an RGGB mosaic of its pixels (12-bit),
with the XYZ(D65) -> linear sRGB matrix as ColorMatrix1, so that developing the DNG gives the
picture back. Usage: raw_dng.py in.ppm out.dng orientation"""

import sys

import numpy as np
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import (CalibrationIlluminant, CFAPattern, DNGVersion,
                        PhotometricInterpretation, PreviewColorSpace)


def read_ppm16(path):
    data = open(path, "rb").read()
    fields, at = [], 0
    while len(fields) < 4:
        while data[at:at + 1].isspace():
            at += 1
        if data[at:at + 1] == b"#":
            at = data.index(b"\n", at)
            continue
        end = at
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[at:end])
        at = end
    at += 1
    assert fields[0] == b"P6" and int(fields[3]) == 65535, fields
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data[at:at + w * h * 6], dtype=">u2").reshape(h, w, 3)


src, out, orientation = sys.argv[1], sys.argv[2], int(sys.argv[3])
rgb = read_ppm16(src).astype(np.uint16) >> 4
h, w, _ = rgb.shape
raw = np.zeros((h, w), np.uint16)
raw[0::2, 0::2] = rgb[0::2, 0::2, 0]
raw[0::2, 1::2] = rgb[0::2, 1::2, 1]
raw[1::2, 0::2] = rgb[1::2, 0::2, 1]
raw[1::2, 1::2] = rgb[1::2, 1::2, 2]

xyz_to_srgb = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]
t = DNGTags()
t.set(Tag.ImageWidth, w)
t.set(Tag.ImageLength, h)
t.set(Tag.TileWidth, w)
t.set(Tag.TileLength, h)
t.set(Tag.Orientation, orientation)
t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
t.set(Tag.SamplesPerPixel, 1)
t.set(Tag.BitsPerSample, 12)
t.set(Tag.CFARepeatPatternDim, [2, 2])
t.set(Tag.CFAPattern, CFAPattern.RGGB)
t.set(Tag.BlackLevel, 0)
t.set(Tag.WhiteLevel, 4095)
t.set(Tag.ColorMatrix1, [[round(v * 10000), 10000] for v in xyz_to_srgb])
t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
t.set(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]])
t.set(Tag.BaselineExposure, [[0, 1]])
t.set(Tag.Make, "thumbfs")
t.set(Tag.Model, "test camera")
t.set(Tag.DNGVersion, DNGVersion.V1_4)
t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
t.set(Tag.PreviewColorSpace, PreviewColorSpace.sRGB)

r = RAW2DNG()
r.options(t, path="", compress=False)
open(out, "wb").write(r.convert(raw))
