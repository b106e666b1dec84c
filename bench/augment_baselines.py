#!/usr/bin/python3
"""Per-image augmentation baselines for bench/augment.ts (run with Debian's /usr/bin/python3).

The workload matches the fused engine's benchmark: RGB images, each with a random sub-policy
of two of the 15 AutoAugment ops (one of the 105 pairs i < j), each op applied with
probability 0.5 at a uniform random magnitude mapped onto the op's range (SPEC 1.1).

  (a) pil:         the per-image PIL pipeline of the Fast AutoAugment / DADA data loaders:
                   Image.fromarray, the ops as in their augmentations.py (Image.transform AFFINE,
                   rotate, ImageOps, ImageEnhance, CutoutAbs drawing a rectangle), each on
                   img.copy() as their apply_augment does, then ToTensor (np.asarray / 255, CHW
                   float32), single process.
  (b) torchvision: torchvision.transforms.functional per image on float tensors [C, H, W]
                   (uint8 round trips for equalize and posterize), torch.set_num_threads(1).

Usage: /usr/bin/python3 bench/augment_baselines.py SIZE COUNT SEED
Prints one JSON line: {"pil_images_per_s": ..., "torchvision_images_per_s": ..., ...}, with the CPU
cores other processes kept busy while each was timed (*_background_cores, from /proc/stat).
"""
import json
import math
import random
import sys

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode

from bench_common import LoadMeter

torch.set_num_threads(1)

# The 15 ops and their ranges (lib/search-space.ts OPS, SPEC 1.1), in the kernel's order.
RANGES = [
    ("ShearX", -0.3, 0.3),
    ("ShearY", -0.3, 0.3),
    ("TranslateX", -0.45, 0.45),
    ("TranslateY", -0.45, 0.45),
    ("Rotate", -30.0, 30.0),
    ("AutoContrast", 0.0, 0.0),
    ("Invert", 0.0, 0.0),
    ("Equalize", 0.0, 0.0),
    ("Solarize", 0.0, 256.0),
    ("Posterize", 4.0, 8.0),
    ("Contrast", 0.1, 1.9),
    ("Color", 0.1, 1.9),
    ("Brightness", 0.1, 1.9),
    ("Sharpness", 0.1, 1.9),
    ("Cutout", 0.0, 0.2),
]
PAIRS = [(i, j) for i in range(len(RANGES)) for j in range(i + 1, len(RANGES))]  # 105


# ---- (a) PIL, as Fast AutoAugment's / DADA's augmentations.py ----

def pil_shear_x(img, v, rng):
    return img.transform(img.size, Image.AFFINE, (1, v, 0, 0, 1, 0))


def pil_shear_y(img, v, rng):
    return img.transform(img.size, Image.AFFINE, (1, 0, 0, v, 1, 0))


def pil_translate_x(img, v, rng):
    v = v * img.size[0]
    return img.transform(img.size, Image.AFFINE, (1, 0, v, 0, 1, 0))


def pil_translate_y(img, v, rng):
    v = v * img.size[1]
    return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, v))


def pil_rotate(img, v, rng):
    return img.rotate(v)


def pil_auto_contrast(img, _, rng):
    return ImageOps.autocontrast(img)


def pil_invert(img, _, rng):
    return ImageOps.invert(img)


def pil_equalize(img, _, rng):
    return ImageOps.equalize(img)


def pil_solarize(img, v, rng):
    return ImageOps.solarize(img, v)


def pil_posterize(img, v, rng):
    return ImageOps.posterize(img, int(v))


def pil_contrast(img, v, rng):
    return ImageEnhance.Contrast(img).enhance(v)


def pil_color(img, v, rng):
    return ImageEnhance.Color(img).enhance(v)


def pil_brightness(img, v, rng):
    return ImageEnhance.Brightness(img).enhance(v)


def pil_sharpness(img, v, rng):
    return ImageEnhance.Sharpness(img).enhance(v)


def pil_cutout(img, v, rng):
    if v <= 0.0:
        return img
    v = v * img.size[0]
    w, h = img.size
    x0 = rng.uniform(0, w)
    y0 = rng.uniform(0, h)
    x0 = int(max(0, x0 - v / 2.0))
    y0 = int(max(0, y0 - v / 2.0))
    x1 = min(w, x0 + v)
    y1 = min(h, y0 + v)
    img = img.copy()
    ImageDraw.Draw(img).rectangle((x0, y0, x1, y1), (125, 123, 114))
    return img


PIL_OPS = [
    pil_shear_x, pil_shear_y, pil_translate_x, pil_translate_y, pil_rotate, pil_auto_contrast, pil_invert,
    pil_equalize, pil_solarize, pil_posterize, pil_contrast, pil_color, pil_brightness, pil_sharpness, pil_cutout,
]


def pil_pipeline(array, rng):
    """One image through the loader: PIL image, random sub-policy, ToTensor."""
    img = Image.fromarray(array)
    for op in PAIRS[rng.randrange(len(PAIRS))]:
        if rng.random() < 0.5:
            _, lo, hi = RANGES[op]
            img = PIL_OPS[op](img.copy(), lo + rng.random() * (hi - lo), rng)  # apply_augment copies
    return TF.to_tensor(img)  # torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255)


# ---- (b) torchvision.transforms.functional on float tensors [C, H, W] ----

BILINEAR = InterpolationMode.BILINEAR  # the fused engine samples bilinearly


def to_u8(x):
    return x.mul(255).round_().to(torch.uint8)


def tv_shear_x(x, v, rng):
    return TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0, shear=[math.degrees(math.atan(v)), 0.0], interpolation=BILINEAR)


def tv_shear_y(x, v, rng):
    return TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, math.degrees(math.atan(v))], interpolation=BILINEAR)


def tv_translate_x(x, v, rng):
    return TF.affine(x, angle=0.0, translate=[int(round(v * x.shape[-1])), 0], scale=1.0, shear=[0.0, 0.0], interpolation=BILINEAR)


def tv_translate_y(x, v, rng):
    return TF.affine(x, angle=0.0, translate=[0, int(round(v * x.shape[-2]))], scale=1.0, shear=[0.0, 0.0], interpolation=BILINEAR)


def tv_rotate(x, v, rng):
    return TF.rotate(x, v, interpolation=BILINEAR)


def tv_auto_contrast(x, _, rng):
    return TF.autocontrast(x)


def tv_invert(x, _, rng):
    return TF.invert(x)


def tv_equalize(x, _, rng):
    return TF.equalize(to_u8(x)).float().div_(255)


def tv_solarize(x, v, rng):
    return TF.solarize(x, min(v / 255.0, 1.0))


def tv_posterize(x, v, rng):
    return TF.posterize(to_u8(x), int(v)).float().div_(255)


def tv_contrast(x, v, rng):
    return TF.adjust_contrast(x, v)


def tv_color(x, v, rng):
    return TF.adjust_saturation(x, v)


def tv_brightness(x, v, rng):
    return TF.adjust_brightness(x, v)


def tv_sharpness(x, v, rng):
    return TF.adjust_sharpness(x, v)


def tv_cutout(x, v, rng):
    h, w = x.shape[-2:]
    side = int(v * w + 0.5)
    if side <= 0:
        return x
    cy, cx = int(rng.random() * h), int(rng.random() * w)
    y0, x0 = max(0, cy - side // 2), max(0, cx - side // 2)
    return TF.erase(x, y0, x0, min(side, h - y0), min(side, w - x0), 0.5)


TV_OPS = [
    tv_shear_x, tv_shear_y, tv_translate_x, tv_translate_y, tv_rotate, tv_auto_contrast, tv_invert,
    tv_equalize, tv_solarize, tv_posterize, tv_contrast, tv_color, tv_brightness, tv_sharpness, tv_cutout,
]


def tv_pipeline(x, rng):
    for op in PAIRS[rng.randrange(len(PAIRS))]:
        if rng.random() < 0.5:
            _, lo, hi = RANGES[op]
            x = TV_OPS[op](x, lo + rng.random() * (hi - lo), rng)
    return x


def images_per_s(pipeline, pool, count, warmup, rng):
    """Images per second, and the CPU cores other processes kept busy meanwhile."""
    for k in range(warmup):
        pipeline(pool[k % len(pool)], rng)
    meter = LoadMeter()
    for k in range(count):
        pipeline(pool[k % len(pool)], rng)
    wall, background = meter.stop()
    return count / wall, background


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: augment_baselines.py SIZE COUNT SEED")
    size, count, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(seed)
    arrays = np.random.default_rng(seed).integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    warmup = max(16, count // 16)

    pil_rate, pil_background = images_per_s(pil_pipeline, arrays, count, warmup, random.Random(seed))

    tensors = [torch.from_numpy(a).permute(2, 0, 1).contiguous().float().div_(255) for a in arrays]
    tv_rate, tv_background = images_per_s(tv_pipeline, tensors, count, warmup, random.Random(seed + 1))

    print(json.dumps({
        "pil_images_per_s": pil_rate,
        "torchvision_images_per_s": tv_rate,
        "pil_background_cores": pil_background,
        "torchvision_background_cores": tv_background,
        "size": size,
        "images": count,
        "pil": PIL.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
