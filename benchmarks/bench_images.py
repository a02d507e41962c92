"""Resizing and the augmentation layers in images/s, pyminidl beside Keras 3 on PyTorch, in one run.

Workloads: 60,000 28x28x1 images in batches of 256 (MNIST-sized) and 10,000 224x224x3 images in
batches of 32 (ImageNet-sized; drawn from a pool of 320 distinct images so memory stays small).
Each layer runs in training mode (the augmentation active) over every image once, after a warm-up
batch. Keras runs in this process when ``import keras`` works with KERAS_BACKEND=torch, or in a
second interpreter given by ``--peer-python`` (a venv with ``torch==2.13.0`` and ``keras``), started
by this script; it also returns its bilinear Resizing of the first batch, compared here before timing
counts.

Run:  python benchmarks/bench_images.py [--peer-python /path/to/keras-venv/bin/python] [--scale 0.1]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import setup_threads  # noqa: E402

CASES = [  # (name, constructor source evaluated with `layers` bound to the framework's layers module)
    ("Resizing bilinear", "layers.Resizing({h2}, {w2})"),
    ("Resizing nearest", "layers.Resizing({h2}, {w2}, interpolation='nearest')"),
    ("RandomFlip", "layers.RandomFlip(seed=1)"),
    ("RandomRotation", "layers.RandomRotation(0.1, seed=1)"),
    ("RandomTranslation", "layers.RandomTranslation(0.1, 0.1, seed=1)"),
    ("RandomZoom", "layers.RandomZoom(0.2, seed=1)"),
    ("RandomContrast", "layers.RandomContrast(0.3, seed=1)"),
    ("RandomCrop", "layers.RandomCrop({hc}, {wc}, seed=1)"),
]
WORKLOADS = [  # (name, count, (h, w, c), batch, resize target, crop)
    ("28x28x1", 60000, (28, 28, 1), 256, (32, 32), (24, 24)),
    ("224x224x3", 10000, (224, 224, 3), 32, (160, 160), (192, 192)),
]


def _pool(np, shape, count, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count,) + shape).astype(np.float32)


def run_framework(framework, scale, dump=None):
    """{(workload, case): images/s} for "pyminidl" or "keras" (importing the framework here)."""
    import numpy as np
    if framework == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
        import torch
        layers = keras.layers

        def apply(layer, x):
            y = layer(x, training=True)
            return y.cpu().numpy() if hasattr(y, "cpu") else np.asarray(y)
    else:
        from pyminidl import layers

        def apply(layer, x):
            return layer(x, training=True)
    results = {}
    for wname, count, shape, batch, (h2, w2), (hc, wc) in WORKLOADS:
        count = max(batch, int(count * scale))
        pool = _pool(np, shape, min(count, 60000 if shape[0] < 64 else 320))
        if dump is not None and wname == WORKLOADS[1][0]:
            np.save(dump, apply(layers.Resizing(h2, w2), pool[:batch]))
        for cname, ctor in CASES:
            layer = eval(ctor.format(h2=h2, w2=w2, hc=hc, wc=wc), {"layers": layers})
            apply(layer, pool[:batch])  # warm-up (and build)
            done, t0 = 0, time.perf_counter()
            while done < count:
                start = done % len(pool)
                n = min(batch, count - done, len(pool) - start)
                apply(layer, pool[start:start + n])
                done += n
            results[f"{wname}|{cname}"] = count / (time.perf_counter() - t0)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="interpreter with keras and torch (run as a second process)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the image counts to run")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--only", choices=["pyminidl", "keras"], help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_threads(args.threads)
    if args.only:  # a child run: JSON on stdout
        if args.only == "keras":
            import torch
            torch.set_num_threads(args.threads)
        print(json.dumps(run_framework(args.only, args.scale, args.dump)))
        return
    import numpy as np

    ours = run_framework("pyminidl", args.scale)
    peer, note, dump = None, "", os.path.join(tempfile.mkdtemp(), "keras_resize.npy")
    cmd = [args.peer_python or sys.executable, os.path.abspath(__file__), "--only", "keras", "--scale",
           str(args.scale), "--threads", str(args.threads), "--dump", dump]
    env = dict(os.environ, KERAS_BACKEND="torch")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode == 0:
        peer = json.loads(proc.stdout.strip().splitlines()[-1])
        from pyminidl import layers
        _, _, shape, batch, size, _ = WORKLOADS[1]
        mine = layers.Resizing(*size)(_pool(np, shape, 320)[:batch])
        diff = float(np.abs(np.load(dump) - mine).max())
        note = f"Resizing bilinear 224->160 vs Keras: max |diff| = {diff:.3g} on values in [0, 255]"
        assert diff < 1e-3, note
    else:
        note = "Keras 3 on PyTorch not available (" + (proc.stderr.strip().splitlines() or ["?"])[-1] + \
               "): pyminidl only"
    print(f"threads={args.threads} scale={args.scale}  {note}")
    print(f"{'workload':<11} {'layer':<19} {'pyminidl img/s':>15} {'keras img/s':>12} {'ratio':>7}")
    for key, rate in ours.items():
        wname, cname = key.split("|")
        other = peer.get(key) if peer else None
        ratio = f"{rate / other:6.2f}x" if other else "   n/a"
        print(f"{wname:<11} {cname:<19} {rate:15,.0f} {other or float('nan'):12,.0f} {ratio:>7}")
        print(json.dumps({"op": cname, "shape": wname, "backend": "pyminidl", "threads": args.threads,
                          "images_per_s": rate, "peer_images_per_s": other}), file=sys.stderr)


if __name__ == "__main__":
    main()
