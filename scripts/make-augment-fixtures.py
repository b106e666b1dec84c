#!/usr/bin/python3
"""Reference fixtures for the fused augmentation engine, from independent implementations.

Regenerate (from the repository root, with Debian's python3, which has PIL, torch and
torchvision; the pyenv python3 on PATH has no torch):

    /usr/bin/python3 scripts/make-augment-fixtures.py

The output is deterministic (fixed seed; no threads matter) and goes to test/fixtures/augment/:

    fixtures.json   the index: images and cases (see below)
    inputs.u8       the input images, uint8, CHW, concatenated
    pil.u8          PIL's results, uint8, CHW, concatenated
    torchvision.u8  torchvision's results on uint8 tensors, CHW, concatenated
    torchvision.f32 torchvision's results on float32 tensors, little-endian, CHW, concatenated

test/augment-fixtures.test.ts feeds each input (as float32 = uint8 / 255, shape [1, C, H, W])
through applyOp(images, op, m) and compares with the reference.

Images (uint8, CHW):
    rgb12x16  3x12x16, uniform noise 0..255 (non-square on purpose: catches W/H mix-ups)
    rgb9x9    3x9x9, a per-channel gradient plus noise, restricted to 40..200, so AutoContrast
              and Equalize change it a lot
    gray12x16 1x12x16, a smooth pattern plus noise in 30..220

Cases: for every op of lib/search-space.ts except Cutout (it has no independent equivalent),
each image, and a few magnitudes m in [0, 1], the reference output for the value
v = lo + m * (hi - lo) (computed in float32, as applyOp does). Each case records op, m, v,
image, reference ("PIL" or "torchvision"), file, offset (in elements), dtype and shape.

    ShearX/Y, TranslateX/Y, Rotate (PIL, Image.transform AFFINE / Image.rotate, BILINEAR, fill
      gray 128). The conventions of native/augment/ops.h, in pixel-index coordinates with the
      centre (cx, cy) = ((W-1)/2, (H-1)/2), give for each output pixel (x, y) the input point
        ShearX:     (x + v*(y - cy), y)
        ShearY:     (x, y + v*(x - cx))
        TranslateX: (x - v*W, y)
        TranslateY: (x, y - v*H)
        Rotate:     counter-clockwise by v degrees about the centre (PIL's rotate(v))
      PIL's AFFINE data (a, b, c, d, e, f) maps the output pixel centre (x+0.5, y+0.5) to the
      input point (a*X + b*Y + c, d*X + e*Y + f), also in pixel-centre coordinates (index + 0.5),
      so ShearX is (1, v, -v*H/2, 0, 1, 0), ShearY (1, 0, 0, v, 1, -v*W/2), TranslateX
      (1, 0, -v*W, 0, 1, 0), TranslateY (1, 0, 0, 0, 1, -v*H). The translations use magnitudes
      where v*W (v*H) is a whole number of pixels of that image, so they differ per image.
      PIL clamps bilinear neighbours at the border where ops.h uses the fill: the test compares
      only pixels whose source point lies inside [0, W-1] x [0, H-1] (all of its bilinear
      neighbours with nonzero weight inside), and pixels whose source point is beyond every
      neighbour (the fill) separately.
    AutoContrast, Equalize, Invert (no magnitude: one case per image, m = 0.5): PIL's ImageOps
      and torchvision on uint8 tensors.
    Solarize (threshold v, not an integer or exactly 128) and Posterize (bits = floor(v) of
      4, 5, 7): PIL's ImageOps and torchvision on uint8 tensors.
    Contrast, Color, Brightness, Sharpness (blend factor v, one below 1, one just below, one
      above that clips): PIL's ImageEnhance (8-bit: it rounds the mean of Contrast and the gray
      of Color, and truncates blends) and torchvision on float32 tensors (adjust_contrast,
      adjust_saturation, adjust_brightness, adjust_sharpness: float semantics, no rounding).
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image, ImageEnhance, ImageOps

SEED = 20240611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'augment')

# The ranges of lib/search-space.ts (OPS), by name.
RANGES = {
    'ShearX': (-0.3, 0.3),
    'ShearY': (-0.3, 0.3),
    'TranslateX': (-0.45, 0.45),
    'TranslateY': (-0.45, 0.45),
    'Rotate': (-30, 30),
    'AutoContrast': None,
    'Invert': None,
    'Equalize': None,
    'Solarize': (0, 256),
    'Posterize': (4, 8),
    'Contrast': (0.1, 1.9),
    'Color': (0.1, 1.9),
    'Brightness': (0.1, 1.9),
    'Sharpness': (0.1, 1.9),
}

FILL = 128


def value_of(op, m):
    """v = lo + m * (hi - lo), as applyOp computes it: float32 tensor ops with scalars."""
    lo, hi = RANGES[op] or (0, 0)
    prod = np.float32(np.float32(m) * np.float32(hi - lo))
    return float(np.float32(prod + np.float32(lo)))


def magnitude_of(op, v):
    lo, hi = RANGES[op]
    return (v - lo) / (hi - lo)


def make_images(rng):
    images = {}
    images['rgb12x16'] = rng.integers(0, 256, size=(3, 12, 16), dtype=np.uint8)
    yy, xx = np.mgrid[0:9, 0:9].astype(np.float64)
    planes = [xx / 8.0, yy / 8.0, (xx + yy) / 16.0]
    smooth = np.stack(planes) * 0.8 + 0.2 * rng.random((3, 9, 9))
    images['rgb9x9'] = np.round(40 + 160 * smooth).clip(40, 200).astype(np.uint8)
    yy, xx = np.mgrid[0:12, 0:16].astype(np.float64)
    pattern = 0.5 + 0.35 * np.sin(xx / 2.5) * np.cos(yy / 3.0) + 0.15 * (rng.random((12, 16)) - 0.5)
    images['gray12x16'] = np.round(30 + 190 * pattern).clip(30, 220).astype(np.uint8)[None]
    return images


def to_pil(chw):
    return Image.fromarray(chw[0], 'L') if chw.shape[0] == 1 else Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0)), 'RGB')


def from_pil(image):
    array = np.asarray(image, dtype=np.uint8)
    return array[None].copy() if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def fill_of(chw):
    return FILL if chw.shape[0] == 1 else (FILL,) * 3


def pil_geometric(op, v, chw):
    image = to_pil(chw)
    _, height, width = chw.shape
    fill = fill_of(chw)
    if op == 'Rotate':
        return from_pil(image.rotate(v, resample=Image.Resampling.BILINEAR, fillcolor=fill))
    data = {
        'ShearX': (1, v, -v * height / 2, 0, 1, 0),
        'ShearY': (1, 0, 0, v, 1, -v * width / 2),
        'TranslateX': (1, 0, -v * width, 0, 1, 0),
        'TranslateY': (1, 0, 0, 0, 1, -v * height),
    }[op]
    return from_pil(image.transform((width, height), Image.Transform.AFFINE, data,
                                    resample=Image.Resampling.BILINEAR, fillcolor=fill))


def pil_op(op, v, chw):
    if op in ('ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate'):
        return pil_geometric(op, v, chw)
    image = to_pil(chw)
    if op == 'AutoContrast':
        return from_pil(ImageOps.autocontrast(image))
    if op == 'Invert':
        return from_pil(ImageOps.invert(image))
    if op == 'Equalize':
        return from_pil(ImageOps.equalize(image))
    if op == 'Solarize':
        return from_pil(ImageOps.solarize(image, threshold=v))
    if op == 'Posterize':
        return from_pil(ImageOps.posterize(image, bits=int(math.floor(v))))
    enhancer = {'Contrast': ImageEnhance.Contrast, 'Color': ImageEnhance.Color,
                'Brightness': ImageEnhance.Brightness, 'Sharpness': ImageEnhance.Sharpness}[op]
    return from_pil(enhancer(image).enhance(v))


def torchvision_uint8(op, v, chw):
    img = torch.from_numpy(chw.copy())
    if op == 'AutoContrast':
        out = TF.autocontrast(img)
    elif op == 'Invert':
        out = TF.invert(img)
    elif op == 'Equalize':
        out = TF.equalize(img)
    elif op == 'Solarize':
        out = TF.solarize(img, v)
    elif op == 'Posterize':
        out = TF.posterize(img, int(math.floor(v)))
    else:
        raise ValueError(op)
    assert out.dtype == torch.uint8
    return out.numpy()


def torchvision_float(op, v, chw):
    img = torch.from_numpy(chw.copy()).to(torch.float32) / 255
    fn = {'Contrast': TF.adjust_contrast, 'Color': TF.adjust_saturation,
          'Brightness': TF.adjust_brightness, 'Sharpness': TF.adjust_sharpness}[op]
    out = fn(img, v)
    assert out.dtype == torch.float32
    return out.numpy().astype('<f4')


def magnitudes(op, name, shape):
    """The magnitudes of the cases of `op` on image `name` of shape CxHxW."""
    _, height, width = shape
    if RANGES[op] is None:
        return [0.5]
    if op == 'TranslateX':  # whole pixels of this image's width
        shifts = {16: (-6, 2, 7), 9: (-4, -2, 3)}[width]
        return [magnitude_of(op, s / width) for s in shifts]
    if op == 'TranslateY':
        shifts = {12: (-5, 2, 4), 9: (-4, 1, 3)}[height]
        return [magnitude_of(op, s / height) for s in shifts]
    return {
        'ShearX': [0.0, 0.35, 0.9],       # v = -0.3, -0.09, 0.24
        'ShearY': [0.1, 0.6, 1.0],        # v = -0.24, 0.06, 0.3
        'Rotate': [0.0, 0.3, 0.85],       # v = -30, -12, 21 degrees
        'Solarize': [0.3, 0.5, 0.65],     # thresholds 76.8, 128, 166.4
        'Posterize': [0.0, 0.3, 0.8],     # bits 4, 5, 7
        'Contrast': [0.0, 0.3, 0.9],      # factors 0.1, 0.64, 1.72
        'Color': [0.0, 0.3, 0.9],
        'Brightness': [0.0, 0.3, 0.9],
        'Sharpness': [0.0, 0.3, 0.9],
    }[op]


class Blob:
    def __init__(self, file, dtype):
        self.file = file
        self.dtype = dtype
        self.parts = []
        self.length = 0

    def add(self, array):
        array = np.ascontiguousarray(array, dtype=self.dtype)
        offset = self.length
        self.parts.append(array.reshape(-1))
        self.length += array.size
        return offset

    def write(self, folder):
        data = np.concatenate(self.parts) if self.parts else np.zeros(0, self.dtype)
        with open(os.path.join(folder, self.file), 'wb') as f:
            f.write(data.tobytes())
        return len(data.tobytes())


def main():
    rng = np.random.default_rng(SEED)
    images = make_images(rng)
    os.makedirs(OUT, exist_ok=True)
    blobs = {
        'inputs': Blob('inputs.u8', np.uint8),
        'pil': Blob('pil.u8', np.uint8),
        'tv8': Blob('torchvision.u8', np.uint8),
        'tvf': Blob('torchvision.f32', np.dtype('<f4')),
    }
    index = {
        'generator': 'scripts/make-augment-fixtures.py',
        'versions': {'PIL': Image.__version__, 'torch': torch.__version__, 'torchvision': torchvision.__version__},
        'seed': SEED,
        'fill': FILL,
        'images': [],
        'cases': [],
    }
    for name, chw in images.items():
        index['images'].append({'name': name, 'file': 'inputs.u8', 'offset': blobs['inputs'].add(chw),
                                'dtype': 'uint8', 'shape': list(chw.shape)})

    def record(op, m, v, name, reference, blob, array):
        index['cases'].append({'op': op, 'm': m, 'v': v, 'image': name, 'reference': reference,
                               'file': blob.file, 'offset': blob.add(array),
                               'dtype': 'uint8' if blob.dtype == np.uint8 else 'float32',
                               'shape': list(array.shape)})

    for op in RANGES:
        for name, chw in images.items():
            for m in magnitudes(op, name, chw.shape):
                v = value_of(op, m)
                if op in ('TranslateX', 'TranslateY'):
                    # The whole-pixel shift m was chosen for (float32 v is off by ~1e-7 of it).
                    size = chw.shape[2] if op == 'TranslateX' else chw.shape[1]
                    v = round(v * size) / size
                record(op, m, v, name, 'PIL', blobs['pil'], pil_op(op, v, chw))
                if op in ('AutoContrast', 'Invert', 'Equalize', 'Solarize', 'Posterize'):
                    record(op, m, v, name, 'torchvision', blobs['tv8'], torchvision_uint8(op, v, chw))
                elif op in ('Contrast', 'Color', 'Brightness', 'Sharpness'):
                    record(op, m, v, name, 'torchvision', blobs['tvf'], torchvision_float(op, v, chw))

    total = 0
    for blob in blobs.values():
        total += blob.write(OUT)
    # One image or case a line: small, and diffs stay readable.
    lines = ['{']
    for key in ('generator', 'versions', 'seed', 'fill'):
        lines.append(f' {json.dumps(key)}: {json.dumps(index[key])},')
    for key in ('images', 'cases'):
        rows = [f'  {json.dumps(row)}' for row in index[key]]
        lines.append(f' {json.dumps(key)}: [\n' + ',\n'.join(rows) + '\n ]' + (',' if key == 'images' else ''))
    lines.append('}')
    text = '\n'.join(lines) + '\n'
    json.loads(text)
    with open(os.path.join(OUT, 'fixtures.json'), 'w') as f:
        f.write(text)
    total += len(text)
    print(f'{len(index["cases"])} cases, {total} bytes in {os.path.relpath(OUT)}', file=sys.stderr)


if __name__ == '__main__':
    main()
