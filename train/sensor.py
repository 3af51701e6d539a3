"""Camera randomisation for rendered frames while training (``--sensor-augment``).

A rasterised frame is too clean: flat colours, razor edges, no noise, no compression, one white
balance. A detector trained on it learns those tells and finds nothing in real footage. Domain
randomisation (Tobin et al. 2017; Tremblay et al. 2018, shared/REFERENCES.md) varies what must
not matter so the network keys on shape instead. ``SensorAugment`` varies what a real camera
varies, each with its own probability, in the order light meets it:

- exposure and white balance: brightness x U(0.7, 1.3), per-channel gain x U(0.9, 1.1);
- contrast x U(0.7, 1.3) about the image mean, saturation x U(0.5, 1.2), gamma U(0.8, 1.25);
- lens and focus: a Gaussian blur of sigma U(0.3, 1.5) px, or a resolution loss (down to
  U(0.5, 0.9) of the size and back up);
- sensor noise: Gaussian, sigma U(2, 8) grey levels;
- compression: JPEG at quality U(30, 90).

Labels are untouched (nothing moves). Every draw comes from the training loop's generator (one
per step and image), so a run is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
import torch

from longtail.errors import ParameterError
from longtail.train.entries import Entry


@dataclass(frozen=True)
class SensorAugment:
    """Camera randomisation (see the module docstring); ``p`` scales every step's probability
    (1: blur or resolution loss half the time, noise half, JPEG half, colour always)."""

    label: ClassVar[str] = "camera randomised"  # how a run's log describes a source with it
    p: float = 1.0

    def __post_init__(self):
        if not 0.0 < self.p <= 1.0:
            raise ParameterError("sensor_augment", f"expected 0 < p <= 1, got {self.p}")

    def __call__(self, image: torch.Tensor, entry: Entry, rng: np.random.Generator,
                 depth: np.ndarray | None = None) -> tuple[torch.Tensor, str]:
        """The image (3, H, W) uint8 with a random camera applied, and ``"sensor"``."""
        # every draw made up front, in a fixed order, whether or not it is used
        colour = rng.random() < self.p
        gain = rng.uniform(0.7, 1.3) * rng.uniform(0.9, 1.1, 3)
        contrast, saturation, gamma = rng.uniform(0.7, 1.3), rng.uniform(0.5, 1.2), np.exp(rng.uniform(-0.22, 0.22))
        optics, sigma, scale = rng.random(), rng.uniform(0.3, 1.5), rng.uniform(0.5, 0.9)
        noise, noise_sigma, noise_seed = rng.random() < 0.5 * self.p, rng.uniform(2.0, 8.0), int(rng.integers(2**31))
        jpeg, quality = rng.random() < 0.5 * self.p, int(rng.integers(30, 91))

        img = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
        H, W = img.shape[:2]
        if colour:
            x = img.astype(np.float32) * np.float32(1 / 255)
            x *= gain.astype(np.float32)
            grey = x.mean(axis=2, keepdims=True)
            x = grey + np.float32(saturation) * (x - grey)  # saturation about each pixel's grey
            mean = np.float32(x.mean())
            x = mean + np.float32(contrast) * (x - mean)
            np.clip(x, 0.0, 1.0, out=x)
            x **= np.float32(gamma)
            img = (x * 255.0 + 0.5).astype(np.uint8)
        if optics < 0.25 * self.p:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        elif optics < 0.5 * self.p:
            small = cv2.resize(img, (max(1, round(W * scale)), max(1, round(H * scale))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        if noise:
            n = np.random.default_rng(noise_seed).normal(0.0, noise_sigma, img.shape).astype(np.float32)
            img = np.clip(img.astype(np.float32) + n, 0, 255).astype(np.uint8)
        if jpeg:
            _, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            assert decoded is not None  # the JPEG was encoded just above
            img = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous(), "sensor"

    def describe(self) -> dict:
        return {"sensor": {"p": self.p}}
