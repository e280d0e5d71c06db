# A toy model file in the transformers layout, for lmgen's tests.
import torch
from torch import nn
import torch.nn.functional as F


class ToyNorm(nn.Module):
    """Root-mean-square norm without a scale.

The docstring runs back to column 0 on purpose: it must not end the class.
    """

    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


@torch.no_grad()
def unrelated():
    return {"class ToyGatedMLP": 1}


class ToyGatedMLP(
    nn.Module,
):
    def __init__(self, hidden_size, intermediate_size):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x):
        gate = F.silu(self.gate_proj(x))
        return self.down_proj(
            gate * self.up_proj(x)
        )
# a comment after the class belongs to what follows


class ToyGatedMLPV2(ToyGatedMLP):
    pass
