"""Peak memory of the prepare stage on generated image folders of growing size.

It works in chunks, so the peak should stay flat.

    python bench/prepare_memory.py [--sizes 5000 20000] [--image-size 64]

Each size runs download (folder copy) and prepare in a fresh child process and prints that process's
peak resident memory (VmHWM), its wall time, and the ratio of peak memory to the smallest size's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from pipeline.config import DatasetConfig
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import fetch
folder, work, size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
config = DatasetConfig(source="folder", path=str(folder), image_size=size, channels=3, views=("gray", "edges", "lab"),
                       forward={{"add_noise": {{"sigma": 0.2}}}})
start = time.perf_counter()
fetch("bench", config, work / "raw", work / "downloads")
manifest = prepare_dataset("bench", config, work / "raw", work / "prepared", seed=0)
# VmHWM, not ru_maxrss: Linux carries the forking parent's peak into ru_maxrss across exec, VmHWM starts afresh
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"peak_mib": peak_kib / 1024,
                   "seconds": time.perf_counter() - start, "counts": manifest["counts"]}}))
"""


def make_folder(folder: Path, count: int, side: int) -> None:
    """`count` smooth colour JPEGs of side×side pixels in 10 class sub-folders: cheap to write, real to decode."""
    rng = np.random.default_rng(0)
    for index in range(count):
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((side, side), Image.BILINEAR)
        target = folder / f"class{index % 10}" / f"{index:06d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--source-side", type=int, default=96, help="side of the generated images before resizing")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for count in sorted(args.sizes):
            folder, work = Path(scratch) / f"images{count}", Path(scratch) / f"work{count}"
            started = time.perf_counter()
            make_folder(folder, count, args.source_side)
            made = time.perf_counter() - started
            child = subprocess.run(
                [sys.executable, "-c", CHILD.format(root=str(ROOT)), str(folder), str(work), str(args.image_size)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            results.append((count, result))
            print(
                f"{count:>7} images ({args.source_side}px JPEG -> {args.image_size}px, views gray+edges+lab, "
                "add_noise): "
                f"peak {result['peak_mib']:7.1f} MiB, prepare {result['seconds']:6.1f} s (folder written in "
                f"{made:.1f} s)"
            )
    smallest = results[0][1]["peak_mib"]
    for count, result in results[1:]:
        print(
            f"peak memory at {count} images / at {results[0][0]}: {result['peak_mib'] / smallest:.2f}x "
            f"for {count / results[0][0]:.1f}x the images"
        )


if __name__ == "__main__":
    main()
