"""Adversarial losses and gradient penalties, as pure functions of discriminator logits.

Two formulations are kept side by side, because which one trains better here was measured
(``training/README.md``), not assumed:

- ``logistic`` — the non-saturating logistic loss of StyleGAN:
  D: ``softplus(D(fake)) + softplus(−D(real))``; G: ``softplus(−D(fake))``.
- ``rpgan`` — relativistic pairing (R3GAN, Huang et al. 2024): each fake is judged against
  a real image, D: ``softplus(D(fake) − D(real))``; G: ``softplus(D(real) − D(fake))``.
  With R1 (on reals) and R2 (on fakes) it is locally convergent, which the logistic loss
  with R1 alone is not guaranteed to be.

Penalties: ``R1 = E‖∇ₓD(x)‖²`` on reals, ``R2`` the same on fakes, each weighted ``γ/2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("logistic", "rpgan")


def d_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss (mean over the batch) from logits [B] of reals and fakes."""
    if kind == "logistic":
        return F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
    if kind == "rpgan":
        return F.softplus(d_fake - d_real).mean()
    raise ValueError(f"unknown loss {kind!r}; choose from {list(LOSSES)}")


def g_loss(kind: str, d_real: torch.Tensor | None, d_fake: torch.Tensor) -> torch.Tensor:
    """Generator loss; ``d_real`` (logits of paired reals) is needed by ``rpgan`` only."""
    if kind == "logistic":
        return F.softplus(-d_fake).mean()
    if kind == "rpgan":
        if d_real is None:
            raise ValueError("the rpgan generator loss needs the logits of real images")
        return F.softplus(d_real - d_fake).mean()
    raise ValueError(f"unknown loss {kind!r}; choose from {list(LOSSES)}")


def gradient_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``E‖∇ D‖²`` over the batch, differentiable (``inputs`` must require grad)."""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.pow(2).sum(dim=(1, 2, 3)).mean()
