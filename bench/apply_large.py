"""`aegan apply` on one 36-megapixel photo: time and peak memory with decode-time reduction against a full decode.

    python bench/apply_large.py [--width 7360 --height 4912]

Builds a throw-away project (the tiny digits autoencoder of the tests, trained for real), writes one smooth
colour JPEG of width × height, then runs apply on it in fresh child processes: first as it runs (the JPEG decoded
at an eighth or less of its size, `pipeline.data.decode.read_pixels(reduce_to=…)`), then with the reduction
switched off (the full decode, the reference). Each child prints its wall time for the apply call and its peak
resident memory (VmHWM); a baseline child that loads everything but decodes no image gives the start-up share.
The target is ≤ 5 s and ≤ 300 MB for the reduced run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
import pipeline.data.decode as decode
from pipeline.config import load_params
from pipeline.inference import apply_to_file
project, photo, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "full":
    reduced = decode.read_pixels
    decode.read_pixels = lambda file, reduce_to=None: reduced(file)  # the reference: no reduction while decoding
params = load_params(project / "params.yaml")
start = time.perf_counter()
if mode != "baseline":
    apply_to_file(params, "ae_tiny", model_dir=project / "models" / "ae_tiny", image_path=photo,
                  out_path=project / f"out_{{mode}}.png")
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries the forking parent's peak into ru_maxrss across exec, VmHWM starts afresh
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": seconds, "peak_mib": peak_kib / 1024}}))
"""


def child(project: Path, photo: Path, mode: str) -> dict:
    code = CHILD.format(root=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code, str(project), str(photo), mode], capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"{mode} run failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=7360)
    parser.add_argument("--height", type=int, default=4912)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.conftest import build_project, tiny_params

    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "project"
        project.mkdir()
        build_project(tiny_params(), project)
        photo = Path(scratch) / "photo.jpg"
        coarse = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((args.width, args.height), Image.BILINEAR).save(photo, quality=90)
        megapixels = args.width * args.height / 1e6
        print(f"photo: {args.width} × {args.height} ({megapixels:.1f} MP), {photo.stat().st_size / 1e6:.1f} MB JPEG")
        runs = {mode: child(project, photo, mode) for mode in ("baseline", "reduced", "full")}
    print(f"{'run':<10}{'apply s':>10}{'peak MiB':>10}")
    for mode, run in runs.items():
        print(f"{mode:<10}{run['seconds']:>10.2f}{run['peak_mib']:>10.0f}")
    reduced, full = runs["reduced"], runs["full"]
    print(
        f"reduced / full: time {reduced['seconds'] / full['seconds']:.3f}×, peak memory "
        f"{reduced['peak_mib'] / full['peak_mib']:.2f}×"
    )
    print(
        f"targets: ≤ 5 s ({'met' if reduced['seconds'] <= 5 else 'missed'}), "
        f"≤ 300 MB ({'met' if reduced['peak_mib'] * 1.048576 <= 300 else 'missed'})"
    )


if __name__ == "__main__":
    main()
