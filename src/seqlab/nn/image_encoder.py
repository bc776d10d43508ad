r"""A small convolutional image encoder that keeps a feature map (Show, Attend and Tell's
"annotation vectors", Xu et al., 2015).

.. code-block:: text

    x^0 = [image; x-coordinate; y-coordinate]   coordinates in [-1, 1]   (B, 3, H, W)
    x^l = maxpool_2x2( relu( BN( conv_3x3(x^{l-1}) ) ) )  for l < L, no pool at the last layer
    a = x^L read row by row: one annotation vector per location        (B, H'·W', C)

With L layers H' = H / 2^(L-1) and W' = W / 2^(L-1) (floor at each pooling). The two
coordinate channels (CoordConv, Liu et al. 2018) let the features say where they are, so
a decoder's content-based attention can move left to right; without them a small CNN's
features are nearly translation invariant and the attention has no position to go by.

Batch normalisation (``batch_norm=True``, Ioffe & Szegedy 2015) after each convolution
is what lets the features learn digits at all on a mostly empty canvas: without it the
coordinate channels (values in [-1, 1] at every pixel) dominate the activations and a
digit (64 of a scene's 768 pixels, values in [0, 1]) moves them little, so a uniform
attention (the mean over locations, where every decoder starts) sees nearly the same
context for every image; measured in docs/results/speech.md (captioning).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvEncoder(nn.Module):
    """``ConvEncoder(channels, num_layers, batch_norm)``: images (B, H, W) -> annotations
    (B, K, C)."""

    def __init__(self, channels: int, num_layers: int = 3, batch_norm: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"ConvEncoder needs num_layers >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        for layer in range(num_layers):
            in_channels = 3 if layer == 0 else channels
            layers.append(nn.Conv2d(in_channels, channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.ReLU())
            if layer < num_layers - 1:
                layers.append(nn.MaxPool2d(2))
        self.layers = nn.Sequential(*layers)
        self.channels = channels

    def feature_map(self, images: Tensor) -> Tensor:
        """(B, H, W) -> (B, C, H', W')."""
        batch, height, width = images.shape
        ys = torch.linspace(-1.0, 1.0, height, device=images.device, dtype=images.dtype)
        xs = torch.linspace(-1.0, 1.0, width, device=images.device, dtype=images.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
        coordinates = torch.stack([grid_x, grid_y]).expand(batch, 2, height, width)
        return self.layers(torch.cat([images.unsqueeze(1), coordinates], dim=1))

    def forward(self, images: Tensor) -> Tensor:
        """(B, H, W) -> (B, H'·W', C), locations row by row."""
        return self.feature_map(images).flatten(2).transpose(1, 2)
