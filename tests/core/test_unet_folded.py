"""The U-Net ensemble's folded forward (members side by side along the channel axis) against the formula it
replaces: each member through the single UNet module, and torch.func.vmap over it (reference_forward)."""

import pytest
import torch
from torch.func import functional_call

from core.diffusion.unet import EnsembleUNet, reference_forward, unet_spec

# (preset, channels, image size, members): the sweep's digits ensemble, colour images, one member, and a
# preset with attention inside the down and up blocks (resolution 16) as well as in the middle.
CASES = [("small", 1, 8, 3), ("small", 3, 8, 2), ("small", 1, 8, 1), ("paper-mnist", 1, 16, 2)]


def ensemble(preset: str, channels: int, size: int, members: int) -> EnsembleUNet:
    model = EnsembleUNet(members, unet_spec(preset, channels, size))
    model.initialize([torch.Generator().manual_seed(10 + e) for e in range(members)])
    with torch.no_grad():  # GroupNorm's affine away from (1, 0), so a mixed-up member or channel shows
        for name, p in zip(model.names, model.stacked):
            if "norm" in name:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.3)
    return model


def inputs(model: EnsembleUNet, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    y = torch.randn(model.n_members, n, model.data_dim, generator=gen)
    t = torch.rand(model.n_members, n, generator=gen) * 2  # a different time per image and member
    return y, t


def per_member(model: EnsembleUNet, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Member e's drift from the plain single-member module with member e's weights."""
    s = model.spec
    outs = []
    for e in range(model.n_members):
        params = {name: p[e] for name, p in zip(model.names, model.stacked)}
        images = y[e].reshape(-1, s.channels, s.image_size, s.image_size)
        outs.append(functional_call(model._base, params, (images, t[e])).reshape(y.shape[1], -1))
    return torch.stack(outs)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_folded_forward_equals_each_member_alone_and_the_vmap_reference(case):
    model = ensemble(*case)
    y, t = inputs(model)
    with torch.no_grad():
        out = model(y, t)
        alone = per_member(model, y, t)
        vmapped = reference_forward(model, y, t)
    assert out.shape == y.shape and out.is_contiguous()
    torch.testing.assert_close(out, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out, vmapped, rtol=1e-4, atol=1e-5)
    assert (out - alone).abs().max() < 1e-3 * alone.abs().max()  # float rounding, not a different network


@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=lambda c: "-".join(map(str, c)))
def test_folded_gradients_equal_the_vmap_reference(case):
    model = ensemble(*case)
    y, t = inputs(model)
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))

    def grads(forward):
        model.zero_grad(set_to_none=True)
        yy = y.clone().requires_grad_(True)
        (forward(yy, t) * weights).sum().backward()
        return [yy.grad] + [p.grad.clone() for p in model.stacked]

    folded, reference = grads(model), grads(lambda a, b: reference_forward(model, a, b))
    # Float rounding of sums over images and pixels, against the largest gradient (a conv bias before a
    # one-channel GroupNorm has gradient 0, so some tensors hold rounding noise alone).
    scale = max(g.abs().max() for g in reference)
    worst = max((a - b).abs().max() for a, b in zip(folded, reference))
    assert worst <= 1e-5 * scale, worst / scale
    big = [(a, b) for a, b in zip(folded, reference) if b.abs().max() > 1e-3 * scale]
    assert len(big) > len(reference) // 2
    for a, b in big:
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()


def test_upsampling_without_autograd_equals_the_autograd_path():
    model = ensemble("paper-mnist", 1, 16, 2)
    y, t = inputs(model)
    with torch.no_grad():
        plain = model(y, t)
    tracked = model(y.clone().requires_grad_(True), t).detach()
    torch.testing.assert_close(plain, tracked, rtol=0, atol=0)


def test_each_member_sees_only_its_own_images_and_times():
    model = ensemble("small", 1, 8, 3)
    y, t = inputs(model)
    y2, t2 = y.clone(), t.clone()
    y2[1] += 1.0
    t2[1] *= 0.5
    with torch.no_grad():
        before, after = model(y, t), model(y2, t2)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.allclose(before[1], after[1])
