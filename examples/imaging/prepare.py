"""Generate the imaging example: a synthetic chest-radiograph-like cohort, a small CNN, its exports.

No labelled 2-D medical image set with demographics installs offline (see the project's
docs/offline-data.md), so the images are generated, with site and subgroup effects known by
construction (README.md states every number). Run from the repository root:

    .venv/bin/python examples/imaging/prepare.py                # ~2,400 images, the example
    .venv/bin/python examples/imaging/prepare.py --n-patients 330 --out /tmp/img   # small, for tests

It writes, under --out (default: this folder; a previous run's images there are replaced):

    images/<site>/<image id>.png   64x64 8-bit grayscale
    train.csv                      development site A only; used to train the model, never audited
    reference.csv                  held-out site A patients: the operating point is chosen here
    test.csv                       held-out site A patients and every patient of sites B, C and D
    model.pt                       TorchScript of the trained CNN (eval mode); input (N, 1, 64, 64)
                                   in [0, 1] (= PNG / 255), output one logit per image
    model.onnx                     the same network exported to ONNX (variable batch)

and prints the held-out AUROC and the numbers the README quotes. Everything is seeded:
two runs with the same arguments on the same machine write the same manifests, images and
probabilities (torch runs on 2 threads with deterministic algorithms).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import binary_erosion, gaussian_filter

HERE = Path(__file__).resolve().parent
SIZE = 64
SEED = 2024
N_PATIENTS = 2000

# --- the cohort, by construction (README.md, "The effects built in") ---------------------------
SEX_P = {"F": 0.5, "M": 0.5}
AGE_BANDS = ("18-49", "50-69", "70+")
AGE_P = (0.35, 0.40, 0.25)
# Prevalence rises with age; the images carry no trace of age, so at one threshold the miss
# rate (FNR) should NOT differ by age band: a null check for the fairness plugin.
PREVALENCE = {"18-49": 0.15, "50-69": 0.25, "70+": 0.35}
# Share of patients per site; site A is the development site (train, reference, part of test).
SITE_P = {"A": 0.55, "B": 0.15, "C": 0.15, "D": 0.15}
# Site A patients: 55% train, 20% reference, 25% test (by patient, so no patient is in two files).
SPLIT_A = (0.55, 0.20, 0.25)
REPEAT_P = 0.20  # share of patients with a second (repeat) study
# Nodule peak contrast (added to the exposure image, whose lung fields lie near 0.22) and the
# subgroup effect: in women the nodules are 0.7 times as bright (overlying breast soft tissue).
NODULE_AMPLITUDE = 0.12
NODULE_FACTOR = {"F": 0.7, "M": 1.0}
NODULE_SIGMA = (1.8, 2.8)  # blob width in pixels (Gaussian sigma), uniform
ANATOMY_SMOOTH = 2.0  # Gaussian sigma (pixels) that softens the anatomy's edges
DATES = (np.datetime64("2022-01-01"), np.datetime64("2023-12-31"))


@dataclass(frozen=True)
class Scanner:
    """How a site's scanner turns the exposure image e in [0, 1] into pixel values."""

    gamma: float  # e ** gamma
    gain: float   # then offset + gain * (.)
    offset: float
    noise: float  # then + N(0, noise^2) per pixel, clipped to [0, 1], x 255, rounded

    def acquire(self, exposure: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        v = self.offset + self.gain * exposure ** self.gamma + rng.normal(0.0, self.noise, exposure.shape)
        return np.round(np.clip(v, 0.0, 1.0) * 255).astype(np.uint8)


SCANNERS = {
    "A": Scanner(gamma=1.00, gain=1.00, offset=0.00, noise=0.025),  # development site
    "B": Scanner(gamma=1.00, gain=0.97, offset=0.02, noise=0.025),  # close to A
    "C": Scanner(gamma=1.00, gain=1.00, offset=0.00, noise=0.045),  # noisy detector
    "D": Scanner(gamma=1.30, gain=0.80, offset=0.08, noise=0.025),  # low contrast, strong gamma
}


# --- images -------------------------------------------------------------------------------------

_YY, _XX = np.mgrid[-1:1:SIZE * 1j, -1:1:SIZE * 1j]


def _ellipse(cy, cx, ay, ax):
    return ((_YY - cy) / ay) ** 2 + ((_XX - cx) / ax) ** 2 <= 1.0


def draw_anatomy(rng: np.random.Generator, sex: str) -> tuple[np.ndarray, np.ndarray]:
    """A smooth exposure image (body, two lung fields, mediastinum, ribs) and the lung mask."""
    tissue = rng.uniform(0.55, 0.65)
    img = np.full((SIZE, SIZE), 0.05)
    img[_ellipse(0.05, 0.0, rng.uniform(0.9, 0.97), rng.uniform(0.85, 0.95))] = tissue
    lungs = np.zeros((SIZE, SIZE), bool)
    ay, ax, cy = rng.uniform(0.55, 0.65), rng.uniform(0.26, 0.32), rng.uniform(-0.12, -0.02)
    for side in (-1, 1):
        lungs |= _ellipse(cy + rng.normal(0, 0.02), side * rng.uniform(0.38, 0.44), ay * rng.uniform(0.95, 1.05), ax)
    lungs &= _YY < rng.uniform(0.45, 0.55) - 0.15 * _XX ** 2  # the diaphragm's domes
    lung_level = rng.uniform(0.19, 0.25)
    img[lungs] = lung_level
    # Ribs: faint curved bands over the lung fields, patient-specific spacing and phase.
    ribs = np.sin(rng.uniform(9.0, 11.0) * (_YY + 0.25 * _XX ** 2) + rng.uniform(0, 2 * np.pi))
    img += lungs * 0.05 * np.clip(ribs, 0, None) ** 2
    img += 0.25 * np.exp(-(_XX / 0.13) ** 2) * (_YY > -0.8)  # mediastinum and spine
    if sex == "F":  # breast soft-tissue shadows over the lower lateral lung fields
        for side in (-1, 1):
            img += 0.07 * np.exp(-(((_YY - 0.35) / 0.25) ** 2 + ((_XX - side * 0.5) / 0.3) ** 2))
    img = gaussian_filter(img, ANATOMY_SMOOTH) + gaussian_filter(rng.normal(0, 0.03, (SIZE, SIZE)), 3.0)
    return np.clip(img, 0, 1), binary_erosion(lungs, iterations=4)


def nodule(rng: np.random.Generator, mask: np.ndarray) -> tuple[int, int, float]:
    ys, xs = np.nonzero(mask)
    k = rng.integers(len(ys))
    return int(ys[k]), int(xs[k]), float(rng.uniform(*NODULE_SIGMA))


def add_nodule(exposure, where, amplitude):
    y, x, sigma = where
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return np.clip(exposure + amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma ** 2)), 0, 1)


# --- the cohort ---------------------------------------------------------------------------------

def make_cohort(n_patients: int, out: Path, rng: np.random.Generator) -> pd.DataFrame:
    sites = rng.choice(list(SITE_P), n_patients, p=list(SITE_P.values()))
    sex = rng.choice(list(SEX_P), n_patients, p=list(SEX_P.values()))
    age = rng.choice(AGE_BANDS, n_patients, p=AGE_P)
    label = (rng.random(n_patients) < np.array([PREVALENCE[a] for a in age])).astype(int)
    repeat = rng.random(n_patients) < REPEAT_P
    span = int((DATES[1] - DATES[0]).astype(int))
    split = np.where(sites == "A", rng.choice(["train", "reference", "test"], n_patients, p=SPLIT_A), "test")
    rows = []
    for i in range(n_patients):
        pid = f"P{i + 1:05d}"
        exposure, lungs = draw_anatomy(rng, sex[i])
        where = nodule(rng, lungs) if label[i] else None
        amplitude = NODULE_AMPLITUDE * NODULE_FACTOR[sex[i]] * rng.uniform(0.8, 1.2)
        first = DATES[0] + rng.integers(span + 1)
        dates = [first]
        if repeat[i]:  # a repeat study 30-300 days later (or earlier, near the end of the period)
            gap = np.timedelta64(int(rng.integers(30, 301)), "D")
            dates.append(first + gap if first + gap <= DATES[1] else first - gap)
        for k, date in enumerate(dates):
            image = exposure
            if where is not None:  # the nodule persists; a repeat study sees it slightly moved
                y, x, s = where
                shift = (0, 0) if k == 0 else rng.integers(-1, 2, 2)
                image = add_nodule(image, (y + shift[0], x + shift[1], s), amplitude)
            pixels = SCANNERS[sites[i]].acquire(image, rng)
            name = f"images/{sites[i]}/{pid}-{k + 1}.png"
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(out / name)
            rows.append({"image": name, "nodule": int(label[i]), "patient_id": pid, "sex": sex[i],
                         "age_band": age[i], "site": sites[i], "study_date": str(date), "split": split[i]})
    return pd.DataFrame(rows)


def load_pixels(out: Path, frame: pd.DataFrame) -> np.ndarray:
    """The images as the audit reads them: PNG / 255, shape (N, 1, 64, 64), float32."""
    return np.stack([np.asarray(Image.open(out / p), dtype=np.float32) / 255.0 for p in frame.image])[:, None]


# --- the model ----------------------------------------------------------------------------------

def build_model():
    import torch
    from torch import nn

    class NoduleNet(nn.Module):
        """Three batch-normalised convolutions, then a nodule logit at each of 16x16 locations
        (a 1x1 convolution: one linear map of the 32 features), pooled by log-sum-exp (a smooth
        maximum: a nodule is small and can be anywhere) into one logit per image."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            )
            self.logit_map = nn.Conv2d(32, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.logsumexp(torch.flatten(self.logit_map(self.features(x)), 1), dim=1, keepdim=True)

    return NoduleNet()


def train(x: np.ndarray, y: np.ndarray, epochs: int):
    import torch

    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))[:, None]
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(32):
            xb = xt[idx]
            # Light augmentation: left-right flips, shifts of up to 2 pixels, gain 0.9-1.1, offset +-0.03.
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
            xb = torch.roll(xb, (dy, dx), (-2, -1))
            gain = 0.9 + 0.2 * torch.rand(len(idx), 1, 1, 1, generator=gen)
            offset = (torch.rand(len(idx), 1, 1, 1, generator=gen) - 0.5) * 0.06
            xb = (gain * xb + offset).clamp(0, 1)
            opt.zero_grad()
            loss_fn(model(xb), yt[idx]).backward()
            opt.step()
    return model.eval()


def predict(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.sigmoid(model(torch.from_numpy(x))).numpy()[:, 0].astype(np.float64)


def export(model, x: np.ndarray, out: Path) -> tuple[float, float, str]:
    """model.pt (TorchScript) and model.onnx; the largest probability differences from the module."""
    import onnxruntime
    import torch

    example = torch.from_numpy(x[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
        torch.jit.script(model).save(str(out / "model.pt"))
        try:
            torch.onnx.export(model, (example,), str(out / "model.onnx"), dynamo=True, external_data=False,
                              input_names=["x"], output_names=["logit"], verbose=False,
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
            exporter = "dynamo"
        except Exception as exc:  # noqa: BLE001 - say so and fall back to the legacy exporter
            print(f"dynamo ONNX export failed ({type(exc).__name__}: {exc}); using the legacy exporter")
            torch.onnx.export(model, (example,), str(out / "model.onnx"), dynamo=False,
                              input_names=["x"], output_names=["logit"], dynamic_axes={"x": {0: "batch"}})
            exporter = "legacy"
    sample = x[:32]
    p_module = predict(model, sample)
    p_script = predict(torch.jit.load(str(out / "model.pt")).eval(), sample)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: sample})[0]
    p_onnx = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
    return float(np.abs(p_script - p_module).max()), float(np.abs(p_onnx - p_module).max()), exporter


# --- reporting ----------------------------------------------------------------------------------

def auroc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y)) == 2 else float("nan")


def summary(test: pd.DataFrame, threshold: float) -> None:
    def line(name, g):
        pos = g[g.nodule == 1]
        auc = auroc(g.nodule, g.p)
        print(f"  {name:<14} images {len(g):5d}  patients {g.patient_id.nunique():5d}  nodules {len(pos):4d}"
              f" ({g.nodule.mean():.1%})  AUROC {auc:.3f}  sensitivity {np.mean(pos.p >= threshold):.3f}"
              f"  specificity {np.mean(g[g.nodule == 0].p < threshold):.3f}")

    line("test, all", test)
    for col in ("site", "sex", "age_band"):
        for value, g in test.groupby(col):
            line(f"{col}={value}", g)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=N_PATIENTS, help=f"patients (default {N_PATIENTS})")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    args = parser.parse_args(argv)
    if args.n_patients < 100:
        parser.error("--n-patients: at least 100 (every site and split needs some patients)")

    import torch

    # The exporter logs one line per torchvision operator it cannot register; we use none.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("images/[ABCD]/P*-[12].png"):  # a previous run's images, perhaps larger
        stale.unlink()
    start = time.perf_counter()
    frame = make_cohort(args.n_patients, out, np.random.default_rng(SEED))
    columns = ["image", "nodule", "patient_id", "sex", "age_band", "site", "study_date"]
    parts = {s: frame[frame.split == s][columns].reset_index(drop=True) for s in ("train", "reference", "test")}
    for name, part in parts.items():
        part.to_csv(out / f"{name}.csv", index=False)
    t_data = time.perf_counter() - start
    print(f"{len(frame)} images of {frame.patient_id.nunique()} patients "
          f"({(frame.groupby('patient_id').size() == 2).sum()} with a repeat study), "
          f"{frame.nodule.mean():.1%} with a nodule; sites "
          + ", ".join(f"{s} {n}" for s, n in frame.site.value_counts().sort_index().items())
          + f"; train {len(parts['train'])}, reference {len(parts['reference'])}, test {len(parts['test'])} images"
          f" ({t_data:.1f} s)")

    x = {name: load_pixels(out, part) for name, part in parts.items()}
    start = time.perf_counter()
    model = train(x["train"], parts["train"].nodule.to_numpy(), args.epochs)
    t_train = time.perf_counter() - start
    p_ref = predict(model, x["reference"])
    print(f"trained NoduleNet ({sum(p.numel() for p in model.parameters())} parameters) on "
          f"{len(parts['train'])} site A images, {args.epochs} epochs, {t_train:.1f} s; held-out AUROC "
          f"(reference.csv, site A: {len(p_ref)} images, {parts['reference'].nodule.sum()} nodules) "
          f"{auroc(parts['reference'].nodule, p_ref):.3f}")

    # The operating point as the audit chooses it: the highest threshold reaching 80% sensitivity
    # on the reference data (for the README's numbers only; the audit computes its own).
    pos = np.sort(p_ref[parts["reference"].nodule.to_numpy() == 1])[::-1]
    threshold = float(pos[int(np.ceil(0.8 * len(pos))) - 1]) if len(pos) else 0.5
    test = parts["test"].assign(p=predict(model, x["test"]))
    print(f"threshold for 80% sensitivity on reference.csv: {threshold:.4f}; on test.csv:")
    summary(test, threshold)

    d_script, d_onnx, exporter = export(model, x["test"], out)
    ok = max(d_script, d_onnx) <= 1e-5
    print(f"exports: model.pt (TorchScript), model.onnx ({exporter} exporter); largest probability difference "
          f"from the module on 32 images: TorchScript {d_script:.1e}, onnxruntime {d_onnx:.1e} "
          f"({'OK' if ok else 'FAILED'}: tolerance 1e-5)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
