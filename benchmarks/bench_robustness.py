"""Cost of a robustness audit against plain inference, and its peak memory at two sizes.

On the imaging example (examples/imaging: 64 x 64 PNGs and the small TorchScript CNN; run
``make imaging`` or ``python examples/imaging/prepare.py`` first), for a manifest of N rows and
one of 2N rows (the test manifest repeated, with new patient ids):

- **robustness audit**: ``future-audit run --plugin robustness`` with the example's
  perturbations at 5 severities (P perturbation-severity runs), wall time of the whole command
  (reading, clean and perturbed inference, statistics, results.json);
- **plain inference** over the same number of images: each batch read once and passed through
  the model P + 1 times (clean and once per run) with ``torch.inference_mode()``, nothing else.

Printed: both times and their ratio (the target is at most 1.3), and the peak resident memory
of each audit process (the target is flat: the 2N audit should not need much more than the N
one, since images are streamed in batches).

Usage: python benchmarks/bench_robustness.py [--rows N] [--threads T]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "imaging"
PERTURBATIONS = ["gaussian_noise", "gaussian_blur", "contrast", "jpeg", "downsample", "rotation",
                 "xray_exposure", "xray_gamma"]
SEVERITIES = 5


def manifest(rows: int, folder: Path) -> Path:
    test = pd.read_csv(EXAMPLE / "test.csv")
    parts = []
    for k in range(-(-rows // len(test))):
        part = test.copy()
        part["patient_id"] = part["patient_id"].astype(str) + f"-{k}"
        parts.append(part)
    out = pd.concat(parts, ignore_index=True).iloc[:rows].copy()
    # Paths stay relative to the example's folder: the manifest is written there.
    path = folder / f"bench-{rows}.csv"
    out.to_csv(path, index=False)
    return path


def config(path: Path, folder: Path) -> Path:
    toml = folder / f"bench-{path.stem}.toml"
    toml.write_text(f"""
[data]
path = "{path}"
label = "nodule"
id = "patient_id"
sensitive = ["sex", "age_band"]
image_column = "image"
[model]
path = "{EXAMPLE / 'model.pt'}"
batch_size = 64
[model.outputs]
activation = "sigmoid"
outputs = [0]
[imaging.preprocess]
normalize = "range"
range = [0, 255]
[robustness]
perturbations = {PERTURBATIONS!r}
operating_point = "sensitivity:0.8"
[run]
seed = 2024
plugins = ["robustness"]
[report]
out = "{folder / ('out-' + path.stem)}"
formats = ["json"]
""".replace("'", '"'))
    return toml


def audit(toml: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one audit in its own process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            f"rc = subprocess.call([{str(Path(sys.executable).parent / 'future-audit')!r}, 'run', '--config', "
            f"{str(toml)!r}, '--quiet']); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if out[2] not in ("0", "1"):
        raise SystemExit(f"the audit failed (exit {out[2]}); run it by hand: future-audit run --config {toml}")
    return float(out[0]), float(out[1])


def plain(path: Path, runs: int, batch: int = 64) -> float:
    """Seconds to read each image once and pass it through the model ``runs`` times."""
    import torch
    from PIL import Image

    model = torch.jit.load(str(EXAMPLE / "model.pt"), map_location="cpu").eval()
    files = pd.read_csv(path)["image"].tolist()
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(files), batch):
            x = np.stack([np.asarray(Image.open(EXAMPLE / f), dtype=np.float32) / 255.0 for f in files[i:i + batch]])
            x = torch.from_numpy(x)[:, None]
            for _ in range(runs):
                torch.sigmoid(model(x))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="N (default: the test manifest's rows)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if not (EXAMPLE / "model.pt").exists():
        raise SystemExit("examples/imaging has no model.pt: run `python examples/imaging/prepare.py` first.")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    n = args.rows or len(pd.read_csv(EXAMPLE / "test.csv"))
    runs = len(PERTURBATIONS) * SEVERITIES
    with tempfile.TemporaryDirectory(dir=EXAMPLE) as tmp:
        folder = Path(tmp)
        rows = []
        for size in (n, 2 * n):
            path = manifest(size, EXAMPLE)
            try:
                seconds, peak = audit(config(path, folder))
                base = plain(path, runs + 1)
            finally:
                path.unlink()
            rows.append((size, seconds, base, peak))
    print(f"robustness audit of the imaging example: {len(PERTURBATIONS)} perturbations x {SEVERITIES} severities "
          f"= {runs} runs, plus the clean pass")
    print(f"{'rows':>6} {'images':>8} {'audit s':>8} {'plain s':>8} {'ratio':>6} {'peak MiB':>9}")
    for size, seconds, base, peak in rows:
        print(f"{size:>6} {size * (runs + 1):>8} {seconds:>8.1f} {base:>8.1f} {seconds / base:>6.2f} {peak:>9.0f}")
    print(f"peak memory at 2N / at N: {rows[1][3] / rows[0][3]:.2f} (flat is 1.0)")
    print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
