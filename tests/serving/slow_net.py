"""A tiny torch network that can be told to take its time: a candidate that hangs."""

from __future__ import annotations

import time

import torch


class Net(torch.nn.Module):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.delay:
            time.sleep(self.delay)
        return self.linear(x)
