"""The token network computes on a batch's distinct tokens what it computes token by token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textproj import nets
from textproj.nets import TokenProjectionNet

LENGTHS = [5, 0, 1, 9, 2, 3]  # an empty text and texts shorter than the widest window
POOLS = [(False, False), (True, False), (False, True), (True, True)]  # (max_pool, mean_pool)


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    distinct = torch.from_numpy(rng.integers(0, 2, size=(7, 24)).astype(np.float32))
    rows = torch.from_numpy(rng.integers(0, len(distinct), size=sum(LENGTHS)))
    return distinct, rows, torch.tensor(LENGTHS)


@pytest.mark.parametrize(("max_pool", "mean_pool"), POOLS)
@pytest.mark.parametrize("windows", [(1, 2, 3), (4, 1), (2,)])
def test_distinct_tokens_give_the_token_by_token_outputs_and_gradients(
    windows, max_pool, mean_pool
) -> None:
    torch.manual_seed(0)
    net = TokenProjectionNet(24, 8, 5, windows, 4, max_pool=max_pool, mean_pool=mean_pool)
    distinct, rows, lengths = _batch(seed=len(windows))

    grads = []
    for args in [(distinct[rows], lengths), (distinct, lengths, rows)]:
        net.zero_grad()
        logits = net(*args)
        (logits * torch.arange(1.0, 5.0)).sum().backward()
        grads.append((logits.detach(), [p.grad.clone() for p in net.parameters()]))

    (by_token, token_grads), (by_distinct, distinct_grads) = grads
    assert by_token.shape == (len(LENGTHS), 4)
    torch.testing.assert_close(by_distinct, by_token, atol=1e-5, rtol=1e-5)
    for got, expected in zip(distinct_grads, token_grads, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("max_pool", "mean_pool"), POOLS)
def test_the_forward_pass_is_the_padded_convolution_and_pooling(
    max_pool: bool, mean_pool: bool
) -> None:
    torch.manual_seed(4)
    windows = (3, 1)
    net = TokenProjectionNet(24, 8, 5, windows, 4, max_pool=max_pool, mean_pool=mean_pool).eval()
    distinct, rows, lengths = _batch(seed=6)
    with torch.no_grad():
        got = net(distinct, lengths, rows)
        first = nets.stored_weight(net.bottleneck.weight, 8)
        hidden = torch.relu(nets.centered(distinct[rows]) @ first.T + net.bottleneck.bias)
        expected, start = [], 0
        for n in LENGTHS:  # one text at a time: zero rows past its end, one row if it has none
            x = hidden[start : start + n] if n else hidden.new_zeros((1, 8))
            start += n
            attended, largest, means = [], [], []
            for j, k in enumerate(windows):
                padded = torch.cat([x, x.new_zeros((k - 1, 8))]).T[None]
                value, attention = net.value[j], net.attention[j]
                v = torch.conv1d(padded, nets.stored_weight(value.weight, 8), value.bias)[0]
                a = torch.conv1d(padded, nets.stored_weight(attention.weight, 8), attention.bias)
                attended.append((torch.softmax(a[0], dim=1) * v).sum(1))
                largest.append(v.max(dim=1).values)
                means.append(v.mean(dim=1))
            pooled = torch.cat(attended + largest * max_pool + means * mean_pool)
            expected.append(pooled @ nets.stored_weight(net.output.weight, 8).T + net.output.bias)
    torch.testing.assert_close(got, torch.stack(expected), atol=1e-5, rtol=1e-5)
    assert net.output.in_features == 5 * len(windows) * (1 + max_pool + mean_pool)


def test_an_empty_text_gets_the_output_of_no_tokens() -> None:
    torch.manual_seed(1)
    net = TokenProjectionNet(24, 8, 5, (1, 2), n_labels=3).eval()
    distinct, rows, lengths = _batch(seed=3)
    with torch.no_grad():
        alone = net(distinct[:0], torch.tensor([0]))
        among = net(distinct, lengths, rows)
    torch.testing.assert_close(among[1:2], alone)
    assert not torch.equal(among[0], among[1])


def test_token_dropout_drops_whole_occurrences() -> None:
    torch.manual_seed(2)
    net = TokenProjectionNet(24, 8, 5, (1,), n_labels=3, token_dropout=0.5)
    distinct, _, _ = _batch(seed=4)
    with torch.no_grad():
        empty = net.eval()(distinct[:0], torch.tensor([0]))
        net.train()
        # 40 copies of a one-token text: each copy's token is dropped (its window reads zeros,
        # so it gets the empty text's output) or kept, independently of the other copies
        outs = net(
            distinct[:1], torch.ones(40, dtype=torch.long), torch.zeros(40, dtype=torch.long)
        )
    dropped = torch.isclose(outs, empty).all(dim=1)
    assert 5 < int(dropped.sum()) < 35
    kept = outs[~dropped]
    torch.testing.assert_close(kept, kept[:1].expand_as(kept))


def test_window_pool_gradients_are_the_numerical_ones() -> None:
    from textproj.nets import WindowPool, window_taps

    gen = torch.Generator().manual_seed(5)
    lengths = torch.tensor([3, 0, 1, 4])
    blocks, n_windows = (3 * 2 * 2, 2 * 2 * 2, 1 * 2 * 2), 3  # windows 1-3, 2 channels
    products = torch.randn(6, sum(blocks), dtype=torch.float64, generator=gen)
    products[-1] = 0  # the zero row
    products.requires_grad_()
    bias = torch.randn(blocks[0], dtype=torch.float64, generator=gen, requires_grad=True)
    occurrences, segment = window_taps(lengths, len(blocks))
    rows = torch.randint(0, 5, (int(lengths.sum()),), generator=gen)
    taps = torch.cat([rows, torch.tensor([5])])[occurrences]

    for pools in POOLS:

        def pool(products: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            args = (taps, segment, len(lengths), blocks, n_windows, pools)  # noqa: B023
            return WindowPool.apply(products, bias, *args)

        assert pool(products, bias).shape == (4, n_windows * 2 * (1 + sum(pools)))
        assert torch.autograd.gradcheck(pool, (products, bias))


@pytest.mark.parametrize(
    ("bits", "max_pool", "mean_pool"), [(4, False, False), (8, False, False), (4, True, True)]
)
def test_a_net_rebuilt_from_its_exported_tensors_scores_what_the_trained_one_does(
    bits, max_pool, mean_pool
) -> None:
    torch.manual_seed(3)
    pools = {"max_pool": max_pool, "mean_pool": mean_pool}
    net = TokenProjectionNet(24, 6, 5, (1, 2, 3), 4, weight_bits=bits, **pools).eval()
    tensors = nets.export_projection_net(net)
    rebuilt = nets.build_projection_net(nets.network_config(net), bits)
    nets.load_quantized(rebuilt, tensors)
    distinct, rows, lengths = _batch(2)
    with torch.no_grad():
        expected, got = net(distinct, lengths, rows), rebuilt.eval()(distinct, lengths, rows)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert rebuilt.weight_bits == bits
