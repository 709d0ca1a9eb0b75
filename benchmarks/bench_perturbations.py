"""Time of each image perturbation per 1,000 images of 1 x 224 x 224 (float32).

Each perturbation is applied at severity 3 to batches of ``--batch`` images (default 100)
until ``--images`` images (default 1,000) have been perturbed, after one warm-up batch; the
wall-clock time is reported per 1,000 images. Generic perturbations by default; ``--all``
adds the MRI, X-ray and CT ones (MONAI's run one sample at a time). ``--device cuda`` times
on a GPU (synchronised before each clock reading).

Usage: python benchmarks/bench_perturbations.py [--images 1000] [--batch 100] [--all]
       [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from audit.robustness import PERTURBATIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--all", action="store_true", help="also modality-specific ones")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    generator = torch.Generator().manual_seed(0)
    # Smooth-ish images in [0, 1]: low-resolution noise upsampled, like anatomy at a glance.
    low = torch.rand(args.batch, 1, args.size // 16, args.size // 16, generator=generator)
    batch = torch.nn.functional.interpolate(low, size=(args.size, args.size), mode="bicubic",
                                            align_corners=False).clamp(0, 1).to(device)
    n_batches = max(1, -(-args.images // args.batch))
    chosen = [p for p in PERTURBATIONS.values() if args.all or p.family == "generic"]
    print(f"{len(chosen)} perturbations, {n_batches} x {args.batch} images of "
          f"1 x {args.size} x {args.size}, severity 3, device {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'perturbation':<18} {'family':<8} {'s / 1,000 images':>17}")
    for p in chosen:
        p.apply(batch, 3, seed=0)  # warm-up: lazy imports, kernels, caches
        sync()
        start = time.perf_counter()
        for i in range(n_batches):
            ids = range(i * args.batch, (i + 1) * args.batch)
            p.apply(batch, 3, seed=0, sample_ids=ids)
        sync()
        elapsed = time.perf_counter() - start
        per_1000 = elapsed / (n_batches * args.batch) * 1000
        print(f"{p.name:<18} {p.family:<8} {per_1000:>17.3f}")


if __name__ == "__main__":
    main()
