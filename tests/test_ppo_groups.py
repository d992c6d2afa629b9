"""Per-task advantage normalization and gradient clipping (what task experts train with), against hand
computations."""
import torch

from policies.ppo import clip_grad_norm_by_group, normalize_by_group


def test_each_groups_advantages_are_normalized_on_their_own():
    x = torch.tensor([1.0, 100.0, 3.0, 300.0, 5.0, 7.0])
    group = torch.tensor([0, 1, 0, 1, 0, 2])
    out = normalize_by_group(x, group, 3)
    # group 0: 1, 3, 5 -> mean 3, unbiased std 2; group 1: 100, 300 -> mean 200, std 141.42; group 2 has one value
    s1 = (2 * 100.0 ** 2) ** 0.5
    want = torch.tensor([-1.0, -100.0 / s1, 0.0, 100.0 / s1, 1.0, 0.0])
    torch.testing.assert_close(out, want)
    # the whole-batch normalization would have left group 0 near zero: that is what this replaces
    whole = (x - x.mean()) / x.std()
    assert whole[[0, 2, 4]].abs().max() < 0.7


def test_each_group_is_clipped_on_its_own_and_the_total_norm_is_reported():
    big = [torch.tensor([30.0, 40.0]), torch.zeros(3)]          # norm 50
    small = [torch.tensor([0.3, 0.4])]                           # norm 0.5, under the clip
    base = torch.tensor([[6.0, 8.0], [0.0, 0.0]])
    view = [base[0]]                                             # norm 10, a view into a larger gradient
    total = clip_grad_norm_by_group([big, small, view, []], 1.0)
    assert abs(total - (50.0 ** 2 + 0.5 ** 2 + 10.0 ** 2) ** 0.5) < 1e-4
    torch.testing.assert_close(big[0], torch.tensor([0.6, 0.8]), atol=1e-5, rtol=0)
    torch.testing.assert_close(small[0], torch.tensor([0.3, 0.4]))   # a global clip would have shrunk it 51 times
    torch.testing.assert_close(base[0], torch.tensor([0.6, 0.8]), atol=1e-5, rtol=0)
