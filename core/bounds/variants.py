"""The bound's variants: the paper's formula (`exact`) and the two published implementations.

docs/diffusion-bound.md#variants. Each variant is a set of named choices, so that the published figures can be
reproduced exactly and the corrected estimate is one flag away.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class BoundVariant:
    """How one variant estimates each term."""

    name: str
    encoder_variance: str  # "var": sigma^2(T) (exact); "std": sigma(T), as the Swiss roll code does
    mixture: str  # "full": all m training points; "minibatch": the current minibatch of 128
    prior_sqrt: bool  # encoder_prior as the mean of sqrt(KL) (True) or the mean KL (False)
    lipschitz: str  # "generator": along G_T from pi; "train-reverse-clock"; "clean-batch"
    sum_beta_extra_term: bool  # Sum beta over k = 0..N (True) instead of k = 0..N-1
    score_matching: str  # "full-pass": DSM on S at the end; "last-epoch": mean of last epoch's minibatch losses; "last-minibatch"
    description: str
    truncate_steps: bool = False  # with a fixed EM step size: N = int(T / step) (published image code), not round


VARIANTS: dict[str, BoundVariant] = {
    "exact": BoundVariant(
        "exact", "var", "full", True, "generator", False, "full-pass",
        "the paper's formula (docs/diffusion-bound.md#exact): sigma^2(T), mixture over all m, L along G_T from pi",
    ),
    "reference-2d": BoundVariant(
        "reference-2d", "std", "full", True, "train-reverse-clock", False, "last-epoch",
        "the published Swiss roll code: sigma(T) as variance, L probed from training points at the reverse clock",
    ),
    "reference-images": BoundVariant(
        "reference-images", "var", "minibatch", False, "clean-batch", True, "last-minibatch",
        "the published image code: minibatch mixture, mean KL to the prior, L on a clean batch, N + 1 beta terms",
        truncate_steps=True,
    ),
}

MINIBATCH_MIXTURE_SIZE = 128


def get_variant(name: str) -> BoundVariant:
    """The named variant, or a ConfigError listing the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown bound variant {name!r}; choose one of {', '.join(VARIANTS)}") from None
