#!/usr/bin/env python3
"""Writes MNIST digits from IDX files as a folder of PNGs, one subfolder per class (issue 27).

    python scripts/mnist_png.py datasets/mnist/t10k-images-idx3-ubyte.gz \
        datasets/mnist/t10k-labels-idx1-ubyte.gz OUT_DIR [--npy OUT.npy]

Digit i with label k becomes OUT_DIR/k/i.png (8-bit gray, i zero-padded to 5 digits), so
`nsl convert --images OUT_DIR` reads them in the order (label, index). With --npy, the images are
also written as one uint8 array of shape (n, 28, 28) (and OUT.labels.npy, int64), for the .npy
round trip. Needs numpy and Pillow.
"""
import argparse
import gzip
import os
import struct

import numpy as np
from PIL import Image


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, f"{path}: not an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images")
    p.add_argument("labels")
    p.add_argument("out")
    p.add_argument("--npy", help="also write the images as one uint8 .npy (and the labels next to it)")
    args = p.parse_args()
    images, labels = read_idx(args.images), read_idx(args.labels)
    assert len(images) == len(labels)
    for k in sorted(set(labels.tolist())):
        os.makedirs(os.path.join(args.out, str(k)), exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image, mode="L").save(os.path.join(args.out, str(label), f"{i:05d}.png"))
    if args.npy:
        np.save(args.npy, images)
        np.save(args.npy[: -len(".npy")] + ".labels.npy", labels.astype(np.int64))
    print(f"{len(images)} digits → {args.out}")


if __name__ == "__main__":
    main()
