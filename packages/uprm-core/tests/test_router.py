"""The trade-off router (eq.6), the basic router, and the z-loss (eq.7) against values
computed by hand in plain Python floats."""

import math

import pytest
import torch
from torch import nn

from uprm import BasicRouter, TradeoffRouter, tradeoff_z_loss


class FixedLogits(nn.Module):
    """Stands in for the router's FFN so the logits are known exactly."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def forward(self, h):
        return self.logits.expand(*h.shape[:-1], self.logits.numel()).clone()


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def constant(value, b=1, t=2, d=3):
    return torch.full((b, t, d), float(value))


@pytest.mark.parametrize(
    "logits",
    [
        [0.7],  # N = 0: coarse only
        [1.5, -0.5],  # N = 1
        [1.0, 2.0, 0.0, 3.0],  # N = 3, the coarse logit is the largest
        [4.0, -1.0, 0.5, 0.0],  # N = 3, one fine expert dominates
    ],
)
def test_tradeoff_router_matches_eq6(logits):
    n = len(logits) - 1
    router = TradeoffRouter(hidden_size=3, num_fine=n)
    router.ffn = FixedLogits(logits)
    fine_values = [10.0 * (i + 1) for i in range(n)]
    coarse_value = -2.0
    z, out_logits = router(constant(0.0), [constant(v) for v in fine_values], constant(coarse_value))

    p = softmax(logits)
    r = p[:n]
    g = max(r) if r else 0.0
    expected = sum(ri * v for ri, v in zip(r, fine_values)) + (1 - g) * coarse_value
    assert z.shape == (1, 2, 3)
    assert out_logits.shape == (1, 2, n + 1)
    torch.testing.assert_close(z, constant(expected), rtol=1e-6, atol=1e-6)
    weights = router.mixing_weights(out_logits)[0, 0].tolist()
    assert weights == pytest.approx([*r, 1 - g], rel=1e-6)


def test_one_fine_expert_does_not_silence_the_coarse_expert():
    # A softmax over the fine experts alone would give R = G = 1 and drop E_g.
    router = TradeoffRouter(hidden_size=3, num_fine=1)
    router.ffn = FixedLogits([0.0, 0.0])
    z, _ = router(constant(0.0), [constant(0.0)], constant(1.0))
    torch.testing.assert_close(z, constant(0.5))


@pytest.mark.parametrize("logits", [[0.3], [1.0, 2.0], [1.0, 2.0, 0.0, 3.0]])
def test_basic_router_is_a_plain_soft_moe(logits):
    n = len(logits) - 1
    router = BasicRouter(hidden_size=3, num_fine=n)
    router.ffn = FixedLogits(logits)
    values = [float(i + 1) for i in range(n)] + [7.0]
    z, _ = router(constant(0.0), [constant(v) for v in values[:-1]], constant(values[-1]))
    p = softmax(logits)
    torch.testing.assert_close(z, constant(sum(pi * v for pi, v in zip(p, values))), rtol=1e-6, atol=1e-6)
    assert router.mixing_weights(torch.tensor(logits)).sum().item() == pytest.approx(1.0)
    assert not router.uses_z_loss and TradeoffRouter.uses_z_loss


def test_router_rejects_the_wrong_number_of_fine_outputs():
    router = TradeoffRouter(hidden_size=3, num_fine=2)
    with pytest.raises(ValueError, match="2 fine experts, got 1"):
        router(constant(0.0), [constant(1.0)], constant(1.0))


def test_router_logits_are_per_token_and_coarse_last():
    torch.manual_seed(0)
    router = TradeoffRouter(hidden_size=8, num_fine=3)
    h = torch.randn(2, 5, 8)
    _, logits = router(h, [torch.randn(2, 5, 8) for _ in range(3)], torch.randn(2, 5, 8))
    assert logits.shape == (2, 5, 4)
    # token-wise: changing one token's input changes only that token's logits
    h2 = h.clone()
    h2[1, 3] += 1.0
    _, logits2 = router(h2, [torch.randn(2, 5, 8) for _ in range(3)], torch.randn(2, 5, 8))
    changed = (logits2 - logits).abs().sum(-1) > 0
    assert changed[1, 3] and changed.sum() == 1


@pytest.mark.parametrize("cls", [TradeoffRouter, BasicRouter])
def test_input_norm_routes_by_the_direction_of_h_not_its_scale(cls):
    torch.manual_seed(0)
    plain, normed = cls(hidden_size=8, num_fine=2), cls(hidden_size=8, num_fine=2, input_norm=True)
    normed.load_state_dict(plain.state_dict())  # no parameters of its own: the same state dict loads
    assert set(normed.state_dict()) == set(plain.state_dict())
    h = torch.randn(2, 5, 8)
    h = h - h.mean(-1, keepdim=True)  # LayerNorm centres: compare on centred tokens
    outs = [torch.randn(2, 5, 8) for _ in range(3)]
    _, small = normed(0.1 * h, outs[:2], outs[2])
    _, large = normed(10.0 * h, outs[:2], outs[2])
    assert torch.allclose(small, large, atol=1e-3)  # the scale of h no longer moves the logits
    _, p_small = plain(0.1 * h, outs[:2], outs[2])
    _, p_large = plain(10.0 * h, outs[:2], outs[2])
    assert not torch.allclose(p_small, p_large, atol=1e-3)  # eq.6 as written: it does
    assert "input_norm=True" in repr(normed) and "input_norm=False" in repr(plain)


def lse(xs):
    return math.log(sum(math.exp(x) for x in xs))


def test_z_loss_matches_eq7_without_mask():
    logits = [[[0.0, 0.0], [math.log(3.0), 0.0]], [[1.0, 2.0], [-1.0, 5.0]]]
    expected = sum(lse(tok) ** 2 for seq in logits for tok in seq) / 4
    got = tradeoff_z_loss(torch.tensor(logits))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert got.dtype == torch.float32


@pytest.mark.parametrize("n_fine", [0, 1, 3])
def test_z_loss_masks_padding_tokens(n_fine):
    g = torch.Generator().manual_seed(n_fine)
    logits = torch.randn(2, 4, n_fine + 1, generator=g) * 3
    mask = torch.tensor([[True, True, False, False], [True, False, True, False]])
    kept = [logits[b, t].tolist() for b in range(2) for t in range(4) if mask[b, t]]
    expected = sum(lse(tok) ** 2 for tok in kept) / len(kept)
    assert tradeoff_z_loss(logits, mask).item() == pytest.approx(expected, rel=1e-5)
    # the padded tokens' values do not matter at all
    noisy = logits.clone()
    noisy[~mask] = 1e4
    assert tradeoff_z_loss(noisy, mask).item() == pytest.approx(expected, rel=1e-5)


def test_z_loss_of_an_all_padding_batch_is_zero_not_nan():
    logits = torch.randn(1, 3, 2)
    assert tradeoff_z_loss(logits, torch.zeros(1, 3, dtype=torch.bool)).item() == 0.0


def test_z_loss_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match="does not match"):
        tradeoff_z_loss(torch.randn(2, 3, 2), torch.ones(2, 4, dtype=torch.bool))


def test_z_loss_gradient_is_analytic():
    # d/dx_j (lse(x))² = 2 · lse(x) · softmax(x)_j, averaged over tokens
    x = torch.tensor([[[0.5, -1.0, 2.0]]], requires_grad=True)
    tradeoff_z_loss(x).backward()
    values = x.detach()[0, 0].tolist()
    expected = [2 * lse(values) * p for p in softmax(values)]
    assert x.grad[0, 0].tolist() == pytest.approx(expected, rel=1e-5)


def test_z_loss_pushes_all_logits_down():
    """Minimising eq.7 alone lowers every expert's logit (each column's mean, on every
    token the log-sum-exp), towards lse = 0: no expert, the coarse one included, can
    dominate by growing its logit."""
    torch.manual_seed(0)
    router = TradeoffRouter(hidden_size=8, num_fine=3)
    h = torch.randn(4, 6, 8)
    with torch.no_grad():
        router.ffn[-1].bias.copy_(torch.tensor([1.0, 2.0, 0.5, 3.0]))  # start with large logits, coarse largest
        _, before = router(h, [h, h, h], h)
    opt = torch.optim.SGD(router.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        _, logits = router(h, [h, h, h], h)
        loss = tradeoff_z_loss(logits)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, after = router(h, [h, h, h], h)
    assert losses[-1] < losses[0] / 2
    assert (after.mean(dim=(0, 1)) < before.mean(dim=(0, 1)) - 0.2).all(), (before.mean((0, 1)), after.mean((0, 1)))
    lse_before, lse_after = torch.logsumexp(before, -1), torch.logsumexp(after, -1)
    assert (lse_after < lse_before).all() and (lse_after.abs() < lse_before.abs()).all()
    # the largest logit (the coarse one) fell the most: the push is proportional to softmax(x)
    drop = before.mean(dim=(0, 1)) - after.mean(dim=(0, 1))
    assert int(drop.argmax()) == 3


@pytest.mark.parametrize("cls", [TradeoffRouter, BasicRouter])
@pytest.mark.parametrize("n_fine", [0, 1, 3])
def test_gradients_reach_router_and_every_expert_output(cls, n_fine):
    torch.manual_seed(n_fine)
    router = cls(hidden_size=8, num_fine=n_fine)
    h = torch.randn(2, 5, 8, requires_grad=True)
    fine = [torch.randn(2, 5, 8, requires_grad=True) for _ in range(n_fine)]
    coarse = torch.randn(2, 5, 8, requires_grad=True)
    z, logits = router(h, fine, coarse)
    loss = z.square().mean() + tradeoff_z_loss(logits)
    loss.backward()
    for p in router.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    for t in [h, coarse, *fine]:
        assert t.grad is not None and t.grad.abs().sum() > 0
