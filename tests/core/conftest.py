"""Shared fixtures of the core tests."""

import pytest


@pytest.fixture
def diverge_last_member(monkeypatch):
    """Make the last ensemble member's DSM loss NaN from the ``after``-th training step on (a member that fails
    while its sweep group goes on); progress events are sent at every step."""
    import core.sweep as sweep
    import core.training.diffusion as training

    def install(after: int) -> None:
        real, calls = training.dsm_terms, []

        def last_member_diverges(model, sde, x, T, gens):
            losses, score_sq = real(model, sde, x, T, gens)
            calls.append(1)
            if len(calls) >= after:
                losses = losses.clone()
                losses[-1] = float("nan")
            return losses, score_sq

        monkeypatch.setattr(training, "dsm_terms", last_member_diverges)
        monkeypatch.setattr(sweep, "PROGRESS_SECONDS", 0.0)

    return install
