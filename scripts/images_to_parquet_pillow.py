#!/usr/bin/env python3
"""The Python reference of `nsl convert --images DIR --samples OUT.parquet` (issue 27 benchmark).

    python scripts/images_to_parquet_pillow.py DIR OUT.parquet [--workers N]

Does what nsl does with Pillow + numpy + pyarrow: one subfolder per class (sorted names → label
ids), files sorted, each image decoded with Pillow (mode kept: 8-bit gray stays one channel,
others become RGB), pixels / 255 as float32 laid out [c, h, w], and a samples table (id = relative
path, features = fixed_size_list<float32>, label = int64, zstd) with nsl's metadata. Decoding runs
in N worker processes (default 2: the two cores nsl's rayon uses).
"""
import argparse
import json
import os
from multiprocessing import Pool

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def decode(path):
    with Image.open(path) as image:
        if image.mode != "L":
            image = image.convert("RGB")
        a = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    if a.ndim == 3:
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a).reshape(-1), (1, *a.shape) if a.ndim == 2 else a.shape


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("out")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    classes = sorted(d for d in os.listdir(args.dir) if os.path.isdir(os.path.join(args.dir, d)))
    ids, paths, labels = [], [], []
    for label, name in enumerate(classes):
        for root, _, files in sorted(os.walk(os.path.join(args.dir, name))):
            for f in sorted(files):
                if os.path.splitext(f)[1].lower() in EXTENSIONS:
                    path = os.path.join(root, f)
                    paths.append(path)
                    ids.append(os.path.relpath(path, args.dir).replace(os.sep, "/"))
                    labels.append(label)
    with Pool(args.workers) as pool:
        decoded = pool.map(decode, paths, chunksize=256)
    shapes = {shape for _, shape in decoded}
    assert len(shapes) == 1, f"images of different shapes: {shapes}"
    shape = shapes.pop()
    features = np.stack([values for values, _ in decoded])
    d = features.shape[1]
    table = pa.table(
        {
            "id": pa.array(ids, pa.utf8()),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1), pa.float32()), d),
            "label": pa.array(labels, pa.int64()),
        }
    )
    table = table.replace_schema_metadata(
        {
            "nsl.format_version": "1",
            "nsl.item_shape": ",".join(map(str, shape)),
            "nsl.class_names": json.dumps(classes),
        }
    )
    pq.write_table(table, args.out, compression="zstd")
    print(f"{len(ids)} images {shape} → {args.out}")


if __name__ == "__main__":
    main()
