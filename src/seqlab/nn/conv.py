r"""Text-CNN building blocks: 1-d convolution over time with masks, pooling, max-norm.

``MaskedConv1d`` convolves (B, C_in, T) -> (B, C_out, T') and keeps track of which output
steps are real, so padding never changes a result:

* ``padding="valid"``: ``T' = floor((T - d·(w-1) - 1) / s) + 1``; a sequence shorter than
  the receptive field ``d·(w-1)+1`` is zero-padded to it (Kim, 2014 pads sentences too) and
  has one output step.
* ``padding="same"``: ``d·(w-1)`` zeros split left/right, ``T' = ceil(T / s)``.
* ``padding="full"`` (wide convolution, Kalchbrenner et al., 2014): ``d·(w-1)`` zeros on
  each side, so every filter position sees each word, also in a one-word phrase;
  ``T' = floor((T + d·(w-1) - 1) / s) + 1``. Kim's (2014) code pads sentences this way.
* ``separable=True``: depthwise conv (one filter per input channel, ``groups=C_in``) then a
  pointwise 1x1 conv (Chollet, 2017): ``C_in·w + C_in·C_out`` weights instead of
  ``C_in·C_out·w``.

Inputs are zeroed at padded steps before every convolution, so stacked layers see the
same zeros a single unpadded sequence would. ``mask`` (B, T) is True at real steps.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.errors import ConfigError

Padding = Literal["valid", "same", "full"]


class MaskedConv1d(nn.Module):
    """One text convolution of width ``width`` (see the module docstring)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        stride: int = 1,
        dilation: int = 1,
        padding: Padding = "valid",
        separable: bool = False,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, width, stride, dilation) < 1:
            raise ConfigError(
                "conv channels, width, stride and dilation must be >= 1, got "
                f"{in_channels}, {out_channels}, {width}, {stride}, {dilation}"
            )
        if padding not in ("valid", "same", "full"):
            raise ConfigError(f"conv padding must be 'valid', 'same' or 'full', got {padding!r}")
        self.width, self.stride, self.dilation, self.padding = width, stride, dilation, padding
        self.receptive_field = dilation * (width - 1) + 1
        self.depthwise: nn.Conv1d | None = None
        if separable:
            self.depthwise = nn.Conv1d(
                in_channels, in_channels, width, dilation=dilation, groups=in_channels
            )
            self.conv = nn.Conv1d(in_channels, out_channels, 1)
        else:
            self.conv = nn.Conv1d(in_channels, out_channels, width, dilation=dilation)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Real output steps per sequence (B,) for input lengths (B,)."""
        if self.padding == "same":
            return (lengths + self.stride - 1) // self.stride
        if self.padding == "full":
            return (lengths + self.receptive_field - 2) // self.stride + 1
        span = lengths.clamp(min=self.receptive_field) - self.receptive_field
        return span // self.stride + 1

    def forward(self, input: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``input`` (B, C_in, T), ``mask`` (B, T) -> (output (B, C_out, T'), mask (B, T'))."""
        steps = input.shape[2]
        input = input * mask.unsqueeze(1).to(input.dtype)
        if self.padding == "full":
            input = F.pad(input, (self.receptive_field - 1, self.receptive_field - 1))
        elif self.padding == "same":
            total = self.receptive_field - 1
            input = F.pad(input, (total // 2, total - total // 2))
        elif torch.jit.is_tracing():
            # a traced (exported) graph serves every length: always pad by the receptive
            # field; the extra output steps fall outside the output mask
            input = F.pad(input, (0, self.receptive_field - 1))
        elif steps < self.receptive_field:
            input = F.pad(input, (0, self.receptive_field - steps))
        if self.depthwise is not None:
            # the depthwise conv runs at stride 1, the pointwise one subsamples
            output = self.conv(self.depthwise(input)[:, :, :: self.stride])
        else:
            output = F.conv1d(
                input, self.conv.weight, self.conv.bias, self.stride, 0, self.dilation
            )
        lengths = self.output_lengths(mask.long().sum(1))
        out_mask = torch.arange(output.shape[2], device=input.device) < lengths.unsqueeze(1)
        return output, out_mask


def masked_max_over_time(features: Tensor, mask: Tensor) -> Tensor:
    """Max-over-time pooling: ``features`` (B, C, T), ``mask`` (B, T) -> (B, C)."""
    return features.masked_fill(~mask.unsqueeze(1), float("-inf")).max(dim=2).values


def masked_mean_over_time(features: Tensor, mask: Tensor) -> Tensor:
    """Global average pooling over real steps: (B, C, T), (B, T) -> (B, C)."""
    weights = mask.unsqueeze(1).to(features.dtype)  # (B, 1, T)
    return (features * weights).sum(2) / weights.sum(2).clamp(min=1.0)


def apply_max_norm(weight: Tensor, max_norm: float) -> None:
    """Rescale in place each row of ``weight`` (out, in) whose L2 norm exceeds ``max_norm``
    (Hinton et al., 2012; Kim, 2014 uses 3 on the output layer). Rows within the bound are
    left as they are, and a weight with none above it is not written at all, so that a
    second forward pass before the backward (adversarial training) keeps the first one's
    graph valid."""
    with torch.no_grad():
        if bool((weight.norm(dim=1) > max_norm).any()):
            weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=max_norm))
