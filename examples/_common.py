"""Shared by the examples: the data folder (real SIIM or synthetic) and a small plain-torch backbone."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dicomxray.testing import make_siim_dataset


def ensure_data(data: Path | None, *, studies: int = 64, image_size: tuple[int, int] = (1024, 1280)) -> Path:
    """``data`` if given (a SIIM-COVID folder: train/ + CSVs), else a synthetic one generated once."""
    if data is not None:
        return data
    folder = Path("demo_out") / "siim-examples"
    if not (folder / "train_image_level.csv").exists():
        print(f"generating a synthetic SIIM-style folder in {folder} ({studies} studies) ...", flush=True)
        make_siim_dataset(folder, studies=studies, size=image_size, seed=1)
    return folder


def conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallBackbone(nn.Module):
    """Five stride-2 stages (1 -> 256 channels); returns the stride-4 and stride-32 feature maps."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(conv_block(1, w, 2), conv_block(w, w * 2, 2))  # stride 4
        self.deep = nn.Sequential(conv_block(w * 2, w * 4, 2), conv_block(w * 4, w * 8, 2), conv_block(w * 8, w * 16, 2))
        self.out_channels = (w * 2, w * 16)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s4 = self.stem(x)
        return s4, self.deep(s4)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_one_epoch(model: nn.Module, loader: Any, opt: torch.optim.Optimizer, loss_fn: Callable[[dict], torch.Tensor],
                    *, epoch: int, max_steps: int | None = None) -> list[float]:
    """One pass over ``loader``; ``loss_fn(batch)`` returns the loss.  Returns the per-step losses."""
    model.train()
    losses = []
    for step, batch in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        loss = loss_fn(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        print(f"epoch {epoch} step {step:3d} loss {loss.item():.4f}", flush=True)
    return losses


def sized_boxes(boxes: np.ndarray, scores: Any, *, min_size: float = 1.0) -> tuple[np.ndarray, list[float]]:
    """Predicted boxes at least ``min_size`` original pixels wide and high (clipping can leave slivers,
    which a submission refuses), with their scores."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    s = np.asarray(scores.tolist() if hasattr(scores, "tolist") else scores, np.float64).reshape(-1)
    keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return b[keep], s[keep].tolist()


def small_task_args(argv: list[str] | None, doc: str | None, *, epochs: int, cache: str) -> argparse.Namespace:
    """The options the small task examples share: a data folder (default: synthetic), size, epochs, steps, batch."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="a folder in the data set's layout; default: synthetic")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--max-steps", type=int, default=None, help="stop each epoch after this many steps (smoke tests)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cache-dir", type=Path, default=Path("demo_out") / cache)
    return parser.parse_args(argv)
