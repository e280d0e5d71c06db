# A cut-down torch/nn/modules/activation.py in the torch layout, for lmgen's tests.
from torch.nn import functional as F
from .module import Module


class Sigmoid(Module):
    def forward(self, input):
        return torch.sigmoid(input)


class SiLU(Module):
    r"""Applies the Sigmoid Linear Unit (SiLU) function, element-wise.

    .. math::
        \text{silu}(x) = x * \sigma(x)
    """

    __constants__ = ["inplace"]
    inplace: bool

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Mish(Module):
    def forward(self, input):
        return F.mish(input)
