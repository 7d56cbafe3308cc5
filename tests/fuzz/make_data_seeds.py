#!/usr/bin/python3
"""make_data_seeds.py - writes the seed corpora of the data-file fuzzers (tests/fuzz/corpus_<harness>/):
valid files of each format, small, plus a few malformed ones, so mutations start from deep inside the
format. Run with /usr/bin/python3 (needs numpy and PIL); the output is committed. Regression files that
the fuzzers found (crash-*, named for the bug) live in the same folders and are not written here.
  npy         .npy files: each dtype, versions 1.0/2.0/3.0, 0-d, empty, bool
  npz         .npz archives: np.savez and np.savez_compressed, ZIP64, names without .npy
  image       4 bytes of transform (see fuzz_image.c) + a PNG or JPEG file
  checkpoint  checkpoints as program/checkpoint.c writes them, with a plot history section
  weights     exports of fuzz_weights.c's fake program, with metadata_props after the model
  lora        adapters files (--export-adapters) of fuzz_lora.c's fake program
"""
import io
import os
import struct
import zipfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def out(harness, name, data):
    d = os.path.join(HERE, "corpus_" + harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy_bytes(a, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, a)
    else:
        np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


def npy():
    rng = np.random.default_rng(1)
    for dt in ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]:
        out("npy", dt + ".npy", npy_bytes((rng.standard_normal((2, 3)) * 10).astype(dt)))
    out("npy", "bool.npy", npy_bytes(np.array([True, False, True])))
    out("npy", "scalar.npy", npy_bytes(np.float32(3.5)))
    out("npy", "empty.npy", npy_bytes(np.zeros((0, 4), np.float32)))
    out("npy", "rank8.npy", npy_bytes(np.ones((1, 2, 1, 2, 1, 2, 1, 2), np.int8)))
    out("npy", "v2.npy", npy_bytes(np.arange(6, dtype=np.int64).reshape(3, 2), (2, 0)))
    out("npy", "v3.npy", npy_bytes(np.arange(4, dtype=np.float32), (3, 0)))
    good = npy_bytes(np.arange(8, dtype=np.float32).reshape(2, 4))
    out("npy", "bad_truncated.npy", good[:-5])
    out("npy", "bad_extra.npy", good + b"\0\0\0\0")
    out("npy", "bad_fortran.npy", npy_bytes(np.asfortranarray(np.ones((2, 3), np.float32))))
    out("npy", "bad_bigendian.npy", npy_bytes(np.ones(3, ">i4")))
    out("npy", "bad_bool.npy", npy_bytes(np.array([True, False]))[:-1] + b"\x02")
    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999, 99999999999), }"
    out("npy", "bad_overflow.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr)


def npz():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1], np.int64)
    for name, save in [("savez.npz", np.savez), ("compressed.npz", np.savez_compressed)]:
        b = io.BytesIO()
        save(b, x=x, y=y)
        out("npz", name, b.getvalue())
    b = io.BytesIO()
    np.savez(b, x=rng.integers(0, 255, (3, 2, 2), dtype=np.uint8), y=rng.standard_normal((3, 2)).astype(np.float32))
    out("npz", "u8_float_y.npz", b.getvalue())
    # members named without .npy, deflated, with a ZIP64 directory
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        with z.open("x", "w", force_zip64=True) as f:
            f.write(npy_bytes(x[:2]))
        with z.open("y", "w", force_zip64=True) as f:
            f.write(npy_bytes(y[:2]))
    out("npz", "zip64.npz", b.getvalue())
    b = io.BytesIO()
    np.savez(b, x=x)
    out("npz", "bad_no_y.npz", b.getvalue())
    b = io.BytesIO()
    np.savez(b, x=x, y=y[:3])
    out("npz", "bad_lengths.npz", b.getvalue())
    good = open(os.path.join(HERE, "corpus_npz", "compressed.npz"), "rb").read()
    out("npz", "bad_truncated.npz", good[: len(good) // 2])
    damaged = bytearray(good)
    damaged[60] ^= 0xFF
    out("npz", "bad_crc.npz", bytes(damaged))


def image():
    from PIL import Image
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), "RGB")
    grey = rgb.convert("L")

    def enc(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    # the prefix: RGB/grey, crop, augment crop/flip; height, width; resize (see fuzz_image.c)
    files = {
        "rgb.png": (b"\x01\x08\x08\x00", enc(rgb, "PNG")),
        "grey.png": (b"\x02\x05\x07\x0a", enc(grey, "PNG")),
        "rgba.png": (b"\x0d\x0a\x0a\x14", enc(rgb.convert("RGBA"), "PNG")),
        "la.png": (b"\x00\x03\x03\x00", enc(grey.convert("LA"), "PNG")),
        "palette.png": (b"\x01\x10\x0c\x00", enc(rgb.convert("P", palette=Image.ADAPTIVE, colors=8), "PNG")),
        "gray16.png": (b"\x00\x04\x04\x00", enc(Image.fromarray(rng.integers(0, 65535, (5, 6), dtype=np.uint16)), "PNG")),
        "rgb.jpg": (b"\x01\x08\x08\x00", enc(rgb, "JPEG", quality=80)),
        "grey.jpg": (b"\x00\x06\x06\x09", enc(grey, "JPEG", quality=80)),
        "progressive.jpg": (b"\x0f\x07\x09\x0b", enc(rgb, "JPEG", quality=70, progressive=True)),
        "subsampled.jpg": (b"\x01\x0c\x10\x00", enc(rgb, "JPEG", quality=60, subsampling=2)),
        "bad_cmyk.jpg": (b"\x01\x08\x08\x00", enc(rgb.convert("CMYK"), "JPEG")),
    }
    # a palette with a transparent entry, as tests/data/make_data.py makes it
    trns = open(os.path.join(HERE, "..", "data", "img", "palette_trns.png"), "rb").read()
    files["palette_trns.png"] = (b"\x01\x08\x08\x00", trns)
    for name, (prefix, data) in files.items():
        if data:
            out("image", name, prefix + data)
    png = files["rgb.png"][1]
    jpg = files["rgb.jpg"][1]
    out("image", "bad_truncated.png", b"\x01\x08\x08\x00" + png[: len(png) - 30])
    out("image", "bad_truncated.jpg", b"\x01\x08\x08\x00" + jpg[: len(jpg) // 2])
    out("image", "bad_signature.png", b"\x01\x08\x08\x00" + b"\x89PNX" + png[4:])
    crc = bytearray(png)
    crc[40] ^= 0x55
    out("image", "bad_crc.png", b"\x01\x08\x08\x00" + bytes(crc))
    # a header claiming a huge image with no pixel data behind it
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    out("image", "bad_bomb.png", b"\x01\x08\x08\x00" + png[:8] + chunk + png[33:])


def pad8(b):
    return b + b"\0" * ((8 - len(b) % 8) % 8)


def checkpoint_bytes(sections, desc=b"mlp.onnx compiled with '' for batch 4", fp=0x1122334455667788, version=1):
    """program/checkpoint.c's layout (see the comment at its top)."""
    head = b"ONXTCKPT" + struct.pack("<IIQI", version, len(sections), fp, len(desc))
    out_ = head + struct.pack("<I", zlib.crc32(head + pad8(desc))) + pad8(desc)
    for name, data in sections:
        h = struct.pack("<IIQI", len(name), 0, len(data), zlib.crc32(data))
        out_ += h + struct.pack("<I", zlib.crc32(h + pad8(name))) + pad8(name) + pad8(data)
    return out_


def history_bytes(steps, epochs):
    b = b"ONXTPLT1" + struct.pack("<QQ", len(steps), len(epochs))
    for s in steps:
        b += struct.pack("<dd", *s)
    for e in epochs:
        b += struct.pack("<ddddd", *e)
    return b


def checkpoint():
    nan = float("nan")
    params = np.arange(10, dtype=np.float32).tobytes()
    order = np.array([3, 0, 2, 1], np.uint64).tobytes()
    hist = history_bytes([(0.25, 2.3), (0.5, 1.9), (0.75, 1.2), (1.0, 0.9)],
                         [(1.0, 1.1, 1.3, 0.6, 0.55), (2.0, 0.8, nan, 0.7, nan)])
    full = checkpoint_bytes([(b"run", bytes(range(64))), (b"params", params), (b"order", order), (b"history", hist)])
    out("checkpoint", "resume.ckpt", full)
    out("checkpoint", "params_only.ckpt", checkpoint_bytes([(b"params", params)], desc=b""))
    out("checkpoint", "empty_section.ckpt", checkpoint_bytes([(b"e", b""), (b"seven77", b"1234567")]))
    out("checkpoint", "no_sections.ckpt", checkpoint_bytes([]))
    out("checkpoint", "history_only.ckpt", checkpoint_bytes([(b"history", history_bytes([(0.0, 1e300)], []))]))
    out("checkpoint", "bad_truncated.ckpt", full[:-20])
    out("checkpoint", "bad_version.ckpt", checkpoint_bytes([(b"params", params)], version=2))
    out("checkpoint", "bad_duplicate.ckpt", checkpoint_bytes([(b"params", params), (b"params", params)]))
    out("checkpoint", "bad_history.ckpt", checkpoint_bytes([(b"history", hist[:-8])]))
    bad = bytearray(full)
    bad[100] ^= 1
    out("checkpoint", "bad_crc.ckpt", bytes(bad))


def varint(n):
    b = b""
    while True:
        if n < 0x80:
            return b + bytes([n])
        b += bytes([n & 0x7F | 0x80])
        n >>= 7


def prop(key, value):
    """A ModelProto metadata_props entry (field 14, StringStringEntryProto {key = 1, value = 2})."""
    e = b"\x0a" + varint(len(key)) + key + b"\x12" + varint(len(value)) + value
    return b"\x72" + varint(len(e)) + e


def weights():
    # fuzz_weights.c's fake program: a 96-byte template with tensors at 16 (24 bytes), 48 (8) and 72 (8)
    t = bytearray((i * 37 + 11) & 0xFF for i in range(96))
    t[16:40] = np.arange(6, dtype=np.float32).tobytes()
    t[48:56] = np.array([0.5, -0.5], np.float32).tobytes()
    t[72:80] = np.array([1.0, 2.0], np.float32).tobytes()
    t = bytes(t)
    out("weights", "plain.onnx", t)
    out("weights", "classes.onnx", t + prop(b"onnxtune.classes", b'["cat","dog \\"x\\"","\\u00e9\\u4e2d",""]'))
    pre = b'{"torchvision":"Resize(256) CenterCrop(224)","resize":256,"crop":[224,224],"mean":[0.485,0.456,0.406],' \
          b'"std":[0.229,0.224,0.225]}'
    out("weights", "metadata.onnx", t + prop(b"onnxtune.classes", b'["a","b"]') + prop(b"onnxtune.preprocess", pre) +
        prop(b"other", b"kept"))
    out("weights", "empty_classes.onnx", t + prop(b"onnxtune.classes", b"[]"))
    out("weights", "bad_short.onnx", t[:90])
    bad = bytearray(t)
    bad[5] ^= 1
    out("weights", "bad_template.onnx", bytes(bad))
    out("weights", "bad_tail.onnx", t + b"\x0a\x03abc")
    out("weights", "bad_classes.onnx", t + prop(b"onnxtune.classes", b'["a",'))
    out("weights", "bad_entry.onnx", t + b"\x72\x05\x0a\x09abc")


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def tensor(name, dims, values, raw=True, packed_dims=False):
    """A TensorProto: dims (1), data_type 1 = float (2), name (8), raw_data (9) or packed float_data (4)."""
    if packed_dims:
        b = field(1, b"".join(varint(d) for d in dims))
    else:
        b = b"".join(varint(1 << 3) + varint(d) for d in dims)
    b += varint(2 << 3) + varint(1) + field(8, name)
    data = np.asarray(values, np.float32).tobytes()
    return b + (field(9, data) if raw else field(4, data))


def adapters_model(tensors, extra=b""):
    """ModelProto {ir_version 8 (1), graph (7) {name (2), initializer (5)...}, metadata_props}."""
    graph = field(2, b"lora_adapters") + b"".join(field(5, t) for t in tensors)
    return varint(1 << 3) + varint(8) + field(7, graph) + extra


def lora():
    # fuzz_lora.c's fake program: fc.weight.lora_A [2,3], fc.weight.lora_B [4,2], head.weight [3,2] in the file
    a = tensor(b"fc.weight.lora_A", [2, 3], np.arange(6) * 0.1)
    b = tensor(b"fc.weight.lora_B", [4, 2], np.arange(8) * -0.2)
    h = tensor(b"head.weight", [3, 2], np.arange(6) + 1.0)
    cfg = prop(b"onnxtune.lora", b'{"peft_type": "LORA", "r": 2, "lora_alpha": 4}')
    out("lora", "adapters.onnx", adapters_model([a, b, h], cfg))
    out("lora", "no_head.onnx", adapters_model([b, a]))
    out("lora", "float_data.onnx", adapters_model([tensor(b"fc.weight.lora_A", [2, 3], np.ones(6), raw=False,
                                                          packed_dims=True), b]))
    out("lora", "bad_shape.onnx", adapters_model([tensor(b"fc.weight.lora_A", [3, 3], np.ones(9)), b]))
    out("lora", "bad_name.onnx", adapters_model([a, b, tensor(b"other.weight", [2], [1, 2])]))
    out("lora", "bad_missing.onnx", adapters_model([a]))
    out("lora", "bad_truncated.onnx", adapters_model([a, b, h])[:-7])


if __name__ == "__main__":
    npy()
    npz()
    image()
    checkpoint()
    weights()
    lora()
