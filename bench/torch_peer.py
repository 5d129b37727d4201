"""PyTorch as a benchmark peer: trains the bench's MLP, CNN or LSTM one step per "step" line on stdin
and answers "ok" once the loss is back in Python, so bench/torch.ts times it interleaved with the others.

Usage: python3 bench/torch_peer.py MODEL BATCH X_FILE Y_FILE SHAPE...   (MODEL: mlp | cnn | lstm)
X_FILE holds float32 inputs for k batches back to back, Y_FILE their int32 class indices.
"""
import os
import sys

import numpy as np
import torch
from torch import nn


def build(kind: str) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 5 * 5, 10),
        )
    if kind == "lstm":
        class LastState(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(32, 128, batch_first=True)
                self.fc = nn.Linear(128, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out, _ = self.lstm(x)
                return self.fc(out[:, -1])
        return LastState()
    raise SystemExit(f"torch_peer: MODEL must be mlp, cnn or lstm (got {kind!r})")


def blas_in_use() -> str:
    """The BLAS library this process loaded (Debian picks it by update-alternatives: reference or OpenBLAS)."""
    with open("/proc/self/maps") as maps:
        libs = {os.path.basename(line.split()[-1]) for line in maps if "blas" in line.split()[-1]}
    openblas = sorted(lib for lib in libs if "openblas" in lib)
    if openblas:
        return f"{openblas[0]} (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'auto')})"
    return f"{', '.join(sorted(libs))} (the reference BLAS: apt-get install libopenblas0-pthread for a fast one)" if libs else "none loaded"


def main() -> None:
    kind, batch, x_file, y_file, *shape = sys.argv[1:]
    torch.set_num_threads(1)
    torch.manual_seed(1)
    batch_n = int(batch)
    sample = [int(s) for s in shape]
    xs = torch.from_numpy(np.fromfile(x_file, dtype=np.float32).copy()).reshape(-1, batch_n, *sample)
    ys = torch.from_numpy(np.fromfile(y_file, dtype=np.int32).astype(np.int64)).reshape(-1, batch_n)
    model = build(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    # What ran: the version, the threads, the SIMD level ATen dispatches to, and the BLAS core type.
    config = torch.__config__.show()
    cpu = next((line.strip(" -") for line in config.splitlines() if "CPU capability" in line), "CPU capability unknown")
    print(f"ready PyTorch {torch.__version__}, {torch.get_num_threads()} thread, {cpu}, BLAS {blas_in_use()}", flush=True)
    k = 0
    for line in sys.stdin:
        if line.strip() != "step":
            continue
        i = k % xs.shape[0]
        k += 1
        opt.zero_grad()
        loss = loss_fn(model(xs[i]), ys[i])
        loss.backward()
        opt.step()
        loss.item()
        print("ok", flush=True)


if __name__ == "__main__":
    main()
