#!/usr/bin/python3
"""make_data.py - the fixtures of tests/test_dataset.c and tests/test_image.c, and their references.

Run with Debian's python3 (numpy, PIL, torchvision 0.14):  /usr/bin/python3 tests/data/make_data.py
Deterministic; writes only under tests/data/. References come from the real thing: numpy for the .npz
archives, PIL for decoding, torchvision.datasets.ImageFolder for listing a folder and torchvision
transforms (on the PIL images ImageFolder loads) for resize/crop/normalise; a plain-Python splitmix64
Fisher-Yates for the shuffles.
"""
import os
import shutil
import struct
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ = os.path.join(HERE, "npz")
IMG = os.path.join(HERE, "img")
REF = os.path.join(HERE, "ref")
FOLDER = os.path.join(HERE, "folder")
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)


# ---------------------------------------------------------------------------------------------- .npz

def zip64_archive(members):
    """A stored ZIP whose central directory uses ZIP64 throughout (sizes, offsets and counts 0xFFFF...
    with the ZIP64 extra field, a ZIP64 end record and locator), as a >4 GiB np.savez would write it."""
    out, central = bytearray(), bytearray()
    for name, data in members:
        name = name.encode()
        crc = zlib.crc32(data)
        off = len(out)
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(name), len(local_extra)) + name + local_extra + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    cd_off = len(out)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(members), len(members), len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


def npy_bytes(a):
    import io
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def make_npz():
    fresh(NPZ)
    # values the C test recomputes: x = 0.5 * arange, y = reversed class indices
    x = (np.arange(5 * 2 * 3, dtype=np.float32) * 0.5).reshape(5, 2, 3)
    y = np.array([4, 3, 2, 1, 0], dtype=np.int64)
    np.savez(os.path.join(NPZ, "arrays.npz"), x=x, y=y)
    np.savez_compressed(os.path.join(NPZ, "arrays_deflated.npz"), x=x, y=y)
    with open(os.path.join(NPZ, "arrays_zip64.npz"), "wb") as f:
        f.write(zip64_archive([("x.npy", npy_bytes(x)), ("y.npy", npy_bytes(y))]))
    # exact dtypes: uint8 images and float32 targets stay what they are
    np.savez(os.path.join(NPZ, "uint8_x.npz"), x=np.arange(4 * 3, dtype=np.uint8).reshape(4, 3) * 7,
             y=np.arange(4 * 2, dtype=np.float32).reshape(4, 2) / 4)
    np.savez(os.path.join(NPZ, "only_x.npz"), x=x)
    np.savez(os.path.join(NPZ, "bad_ydtype.npz"), x=x, y=y.astype(np.uint8))
    np.savez(os.path.join(NPZ, "mismatch.npz"), x=x, y=y[:4])
    for name in os.listdir(NPZ):    # numpy reads back what we wrote, ZIP64 one included
        with np.load(os.path.join(NPZ, name)) as z:
            if "y" in z and name.startswith("arrays"):
                assert (z["x"] == x).all() and (z["y"] == y).all(), name


# ---------------------------------------------------------------------------------------------- images

def smooth(h, w, c, seed):
    """An image with structure (so JPEG and resizing have something to do) and some noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    planes = []
    for k in range(c):
        v = 127 + 90 * np.sin(xx * (0.3 + 0.1 * k) + yy * 0.17 * (k + 1)) + rng.normal(0, 20, (h, w))
        planes.append(np.clip(v, 0, 255))
    a = np.stack(planes, axis=-1).astype(np.uint8)
    return a[..., 0] if c == 1 else a


GOOD = ["rgb8.png", "gray8.png", "palette.png", "rgba.png", "gray1.png", "rgb.jpg", "gray.jpg", "progressive.jpg",
        "wide.png"]
BAD = ["truncated.png", "truncated.jpg", "garbage.png", "empty.jpg", "badcrc.png"]


def make_images():
    fresh(IMG)
    p = lambda n: os.path.join(IMG, n)
    Image.fromarray(smooth(29, 37, 3, 1), "RGB").save(p("rgb8.png"))
    Image.fromarray(smooth(33, 40, 1, 2), "L").save(p("gray8.png"))
    Image.fromarray(smooth(31, 23, 3, 3), "RGB").quantize(16).save(p("palette.png"))
    Image.fromarray(smooth(17, 19, 4, 4), "RGBA").save(p("rgba.png"))
    Image.fromarray(smooth(11, 13, 1, 5) > 127).save(p("gray1.png"))
    Image.fromarray(smooth(48, 64, 3, 6), "RGB").save(p("rgb.jpg"), quality=90)
    Image.fromarray(smooth(26, 30, 1, 7), "L").save(p("gray.jpg"), quality=85)
    Image.fromarray(smooth(40, 50, 3, 8), "RGB").save(p("progressive.jpg"), quality=80, progressive=True)
    Image.fromarray(smooth(7, 61, 3, 9), "RGB").save(p("wide.png"))
    # a palette with a transparent entry (tRNS): libpng expands it to RGBA, PIL's convert("RGB") drops it
    Image.fromarray(smooth(9, 14, 3, 10), "RGB").quantize(8).save(p("palette_trns.png"), transparency=2)
    png = open(p("rgb8.png"), "rb").read()
    jpg = open(p("rgb.jpg"), "rb").read()
    open(p("truncated.png"), "wb").write(png[: len(png) * 6 // 10])
    open(p("truncated.jpg"), "wb").write(jpg[: len(jpg) * 6 // 10])
    open(p("garbage.png"), "wb").write(np.random.default_rng(9).integers(0, 256, 300, dtype=np.uint8).tobytes())
    open(p("empty.jpg"), "wb").close()
    bad = bytearray(png)
    idat = bad.index(b"IDAT")
    bad[idat + 40] ^= 0x55      # inside the compressed pixels: the chunk CRC no longer matches
    open(p("badcrc.png"), "wb").write(bytes(bad))
    for name in GOOD:           # PIL reads the good ones and refuses the bad ones
        Image.open(p(name)).convert("RGB")
    for name in BAD:
        try:
            Image.open(p(name)).convert("RGB")
        except Exception:
            continue
        raise SystemExit(f"PIL loads {name}: not a corrupt fixture")


def pil_loader(path, channels):
    """ImageFolder's loader (convert("RGB")), then transforms.Grayscale(1) for a one-channel model."""
    with open(path, "rb") as f:
        img = Image.open(f).convert("RGB")
    return transforms.Grayscale(1)(img) if channels == 1 else img


# name, channels, H, W, resize (0: none), crop (0: Resize((H, W)) instead), mean, std
CONFIGS = [
    ("c3_r20_crop16", 3, 16, 16, 20, 1, *IMAGENET),
    ("c1_r13_crop11x9", 1, 11, 9, 13, 1, [0.5], [0.25]),
    ("c3_exact10x14", 3, 10, 14, 0, 0, *IMAGENET),
    ("c1_r8_crop12x10", 1, 12, 10, 8, 1, [0.0], [1.0]),
    ("c3_r45_crop18x14", 3, 18, 14, 45, 1, [0.5, 0.4, 0.3], [0.2, 0.3, 0.4]),
    ("c3_r33_exact12x18", 3, 12, 18, 33, 0, *IMAGENET),
]


def pipeline(cfg):
    _, c, h, w, resize, crop, mean, std = cfg
    t = []
    if resize:
        t.append(transforms.Resize(resize))
    t.append(transforms.CenterCrop((h, w)) if crop else transforms.Resize((h, w)))
    t += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(t)


# PIL's Image.resize(BILINEAR) of two fixtures to many sizes: shrinking, growing, both, extreme ratios
RESIZES = [(1, 1), (5, 40), (100, 3), (74, 58), (18, 14), (37, 13), (36, 29), (37, 30), (11, 7)]


def make_refs():
    fresh(REF)
    for name, mode in (("rgb8.png", "RGB"), ("gray8.png", "L")):
        img = Image.open(os.path.join(IMG, name)).convert(mode)
        for w, h in RESIZES:
            a = np.array(img.resize((w, h), Image.BILINEAR), dtype=np.uint8)
            np.save(os.path.join(REF, f"resize_{mode}_{w}x{h}.npy"), a.reshape(h, w, -1))
    with open(os.path.join(REF, "resizes.txt"), "w") as f:
        f.write("".join(f"{w} {h}\n" for w, h in RESIZES))
    with open(os.path.join(REF, "files.txt"), "w") as f:
        f.write("".join(n + "\n" for n in GOOD))
    with open(os.path.join(REF, "configs.txt"), "w") as f:
        for cfg in CONFIGS:
            name, c, h, w, resize, crop, mean, std = cfg
            mean = (mean * 3)[:3]
            std = (std * 3)[:3]
            f.write(f"{name} {c} {h} {w} {resize} {crop} " + " ".join(repr(float(v)) for v in mean + std) + "\n")
    for name in GOOD + ["palette_trns.png"]:   # decoded only (not in the transform references)
        for c in (1, 3):
            a = np.array(pil_loader(os.path.join(IMG, name), c), dtype=np.uint8)
            np.save(os.path.join(REF, f"decode_{os.path.splitext(name)[0]}_{os.path.splitext(name)[1][1:]}_c{c}.npy"),
                    a.reshape(a.shape[0], a.shape[1], c))
    for cfg in CONFIGS:
        t = pipeline(cfg)
        out = np.stack([t(pil_loader(os.path.join(IMG, n), cfg[1])).numpy() for n in GOOD])
        np.save(os.path.join(REF, f"tf_{cfg[0]}.npy"), out.astype(np.float32))


# ---------------------------------------------------------------------------------------------- folder

# class folder -> files (relative path inside it, source fixture); ordering traps: upper case before lower,
# "sub" before "sub b" before "sub/deeper", extensions in any case, a folder inside a class.
FOLDER_FILES = {
    "Zebra": [("z1.PNG", "rgb8.png"), ("sub/z2.jpg", "rgb.jpg"), ("sub b/z3.png", "gray8.png"),
              ("sub/deeper/z4.jpeg", "gray.jpg"), ("sub/a.png", "wide.png")],
    "cat": [("a.jpeg", "progressive.jpg"), ("B.png", "palette.png"), ("c.JPG", "rgb.jpg"),
            ("broken.png", "truncated.png"), ("notes.txt", None), ("pic.bmp", "bmp")],
    "dog": [("d1.png", "rgba.png"), ("d2.png", "gray1.png"), ("empty.jpg", "empty.jpg"),
            ("garbage.jpg", "garbage.png"), ("zz.jpg", "truncated.jpg")],
}
FOLDER_CFG = ("folder", 3, 16, 16, 20, 1, *IMAGENET)


def make_folder():
    fresh(FOLDER)
    for cls, files in FOLDER_FILES.items():
        for rel, src in files:
            dst = os.path.join(FOLDER, cls, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if src is None:
                open(dst, "w").write("not an image\n")
            elif src == "bmp":
                Image.fromarray(smooth(5, 5, 3, 10), "RGB").save(dst, format="BMP")
            else:
                shutil.copyfile(os.path.join(IMG, src), dst)
    ours = (".png", ".jpg", ".jpeg")
    ds = torchvision.datasets.ImageFolder(FOLDER, is_valid_file=lambda p: p.lower().endswith(ours))
    t = pipeline(FOLDER_CFG)
    xs, ys, lines, bad = [], [], [], []
    for path, label in ds.samples:
        rel = os.path.relpath(path, FOLDER)
        try:
            x = t(pil_loader(path, 3)).numpy()
        except Exception:
            bad.append(rel)     # what the C loader must skip (with a warning)
            continue
        xs.append(x)
        ys.append(label)
        lines.append(f"{rel}\t{label}\n")
    with open(os.path.join(REF, "folder_list.txt"), "w") as f:
        f.write("".join(lines))
    with open(os.path.join(REF, "folder_bad.txt"), "w") as f:
        f.write("".join(b + "\n" for b in bad))
    with open(os.path.join(REF, "folder_classes.txt"), "w") as f:
        f.write("".join(c + "\n" for c in ds.classes))
    np.save(os.path.join(REF, "folder_x.npy"), np.stack(xs).astype(np.float32))
    np.save(os.path.join(REF, "folder_y.npy"), np.array(ys, dtype=np.int64))


# ---------------------------------------------------------------------------------------------- shuffles

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def shuffle(n, state):
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def make_shuffles():
    # (n, seed, epoch): the state is seed * 2^20 + epoch
    cases = [(10, 7, 3), (1000, 12345, 1), (257, 0, 0)]
    rows = [[n, seed, epoch] + shuffle(n, ((seed << 20) + epoch) & M64) for n, seed, epoch in cases]
    flat = np.array([v for r in rows for v in r], dtype=np.int64)
    np.save(os.path.join(REF, "shuffles.npy"), flat)


if __name__ == "__main__":
    torch.set_num_threads(1)
    make_npz()
    make_images()
    make_refs()
    make_folder()
    make_shuffles()
    print("tests/data: npz, img, ref, folder written")
