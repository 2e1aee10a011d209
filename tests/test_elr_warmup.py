"""Tests of lrtheory.tools.elr_warmup (ELRWarmup, unit_elrs)."""
import io
import math

import pytest
import torch

from lrtheory.tools.elr_warmup import ELRWarmup, unit_elrs


def _orth(w, g):
    """Part of g orthogonal to w (the gradient of a scale-invariant loss is orthogonal to w)."""
    return g - (g * w).sum() / (w * w).sum() * w


def _two_layers(lr=100.0, momentum=0.0, grads=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    if grads:
        w1.grad = _orth(w1.detach(), torch.randn(4, 3, generator=gen, dtype=torch.float64)) * 0.3
        w2.grad = _orth(w2.detach(), torch.randn(5, 2, generator=gen, dtype=torch.float64)) * 0.02
    opt = torch.optim.SGD([w1, w2], lr=lr, momentum=momentum)
    return w1, w2, opt, gen


def _expected_factor(lr, gain, pairs):
    """pairs: (||g||, ||W_prev||, ||W_now||) per layer -> min(1, 1/sqrt(b_max b_min))."""
    b = [lr * gain * g * n0 / n**2 for g, n0, n in pairs]
    return min(1.0, 1.0 / math.sqrt(max(b) * min(b)))


def test_unit_elrs_value():
    # f(w) = sum(w/||w||) at w = (3, 4): grad = (I - u u^T) 1 / ||w||, norm 0.04, ratio 0.008 (by hand)
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    (w / w.norm()).sum().backward()
    assert unit_elrs([w])[0] == pytest.approx(0.008, rel=1e-12)  # exact arithmetic up to round-off


def test_unit_elrs_bad_inputs():
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="params"):
        unit_elrs([])
    with pytest.raises(ValueError, match="grads"):
        unit_elrs([w])  # no gradient
    with pytest.raises(ValueError, match="grads"):
        unit_elrs([w], [torch.ones(2)])
    with pytest.raises(ValueError, match="zero norm"):
        unit_elrs([torch.zeros(3)], [torch.ones(3)])


def test_first_lr_is_critical_lr_of_extreme_layers():
    w1, w2, opt, _ = _two_layers(lr=100.0)
    pairs = [(float(w.grad.norm()), float(w.detach().norm()), float(w.detach().norm())) for w in (w1, w2)]
    sched = ELRWarmup(opt)
    expected = _expected_factor(100.0, 1.0, pairs) * 100.0
    assert expected < 100.0  # the setting is built so that the warm-up is active
    assert sched.get_last_lr()[0] == pytest.approx(expected, rel=1e-12)  # same formula, round-off only
    assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)


def test_step_uses_previous_norm_and_new_norm():
    # the gradient is the one the optimizer step used (read by a step hook), the norms those
    # before and after that step
    w1, w2, opt, gen = _two_layers(lr=100.0)
    sched = ELRWarmup(opt)
    for _ in range(3):
        prev = [float(w.detach().norm()) for w in (w1, w2)]
        for w, s in ((w1, 0.3), (w2, 0.02)):  # new gradients, orthogonal to the current weights
            w.grad = _orth(w.detach(), torch.randn(w.shape, generator=gen, dtype=torch.float64)) * s
        gnorms = [float(w.grad.norm()) for w in (w1, w2)]
        opt.step()
        pairs = [(g, n0, float(w.detach().norm())) for w, g, n0 in zip((w1, w2), gnorms, prev)]
        sched.step()
        assert sched.get_last_lr()[0] == pytest.approx(100.0 * _expected_factor(100.0, 1.0, pairs), rel=1e-12)


def test_momentum_gain_enters_the_critical_lr():
    # the heavy-ball buffer starts at zero: gain 1 at the first step, then 1.9, 2.71, ... (1 - 0.9^(k+1))/0.1;
    # before, the steady-state gain 10 was used from the first step (its first LR 10x below the critical LR)
    w1, w2, opt, gen = _two_layers(lr=100.0, momentum=0.9)
    pairs = [(float(w.grad.norm()), float(w.detach().norm()), float(w.detach().norm())) for w in (w1, w2)]
    sched = ELRWarmup(opt)
    assert sched.get_last_lr()[0] == pytest.approx(100.0 * _expected_factor(100.0, 1.0, pairs), rel=1e-12)
    for k, gain in ((1, 1.9), (2, 2.71), (3, 3.439)):
        prev = [float(w.detach().norm()) for w in (w1, w2)]
        for w, s in ((w1, 0.3), (w2, 0.02)):
            w.grad = _orth(w.detach(), torch.randn(w.shape, generator=gen, dtype=torch.float64)) * s
        gnorms = [float(w.grad.norm()) for w in (w1, w2)]
        opt.step()
        pairs = [(g, n0, float(w.detach().norm())) for w, g, n0 in zip((w1, w2), gnorms, prev)]
        sched.step()
        assert not sched.done
        assert sched.get_last_lr()[0] == pytest.approx(100.0 * _expected_factor(100.0, gain, pairs), rel=1e-12), k


def test_warmup_does_not_end_while_the_momentum_buffer_grows():
    # a target just below the critical LR at gain 1 but above it at the steady-state gain 10: the first
    # LR is the target (factor 1), yet the warm-up goes on (ending there would let later steps run
    # up to 10x above the critical LR)
    w1, w2, opt, _ = _two_layers(lr=1.0, momentum=0.9)
    b = [float(w.grad.norm()) / float(w.detach().norm()) for w in (w1, w2)]
    crit = 1.0 / math.sqrt(b[0] * b[1])
    for g in opt.param_groups:
        g["lr"] = 0.5 * crit  # below the critical LR at gain 1, 5x above it at gain 10
    sched = ELRWarmup(opt)
    assert sched.get_last_lr()[0] == pytest.approx(0.5 * crit, rel=1e-12) and sched.factor == 1.0
    assert not sched.done


def test_a_scheduler_joining_a_run_takes_the_steady_state_gain():
    w1, w2, opt, _ = _two_layers(lr=100.0, momentum=0.9)
    g = [w.grad.clone() for w in (w1, w2)]
    opt.step()  # the momentum buffers exist now
    for w, gi in zip((w1, w2), g):
        w.grad = _orth(w.detach(), gi)
    pairs = [(float(w.grad.norm()), float(w.detach().norm()), float(w.detach().norm())) for w in (w1, w2)]
    sched = ELRWarmup(opt)
    assert sched.get_last_lr()[0] == pytest.approx(100.0 * _expected_factor(100.0, 10.0, pairs), rel=1e-12)


def test_no_gradients_at_construction_first_step_sets_the_critical_lr():
    # before: the first step ran at lr = 0 (and the state could not be restored at step 0)
    w1, w2, opt, gen = _two_layers(grads=False)
    sched = ELRWarmup(opt)
    assert sched.get_last_lr() == [100.0] and not sched.done  # nothing measured yet: the target
    for w, s in ((w1, 0.3), (w2, 0.02)):
        w.grad = _orth(w.detach(), torch.randn(w.shape, generator=gen, dtype=torch.float64)) * s
    pairs = [(float(w.grad.norm()), float(w.detach().norm()), float(w.detach().norm())) for w in (w1, w2)]
    lr1 = 100.0 * _expected_factor(100.0, 1.0, pairs)
    w0 = w1.detach().clone()
    opt.step()  # the step hook sets the first LR from these gradients before the update
    assert torch.allclose(w1.detach(), w0 - lr1 * w1.grad, rtol=1e-13, atol=0)
    assert sched.get_last_lr()[0] == pytest.approx(lr1, rel=1e-12)


def test_no_gradient_at_the_first_step_is_an_error():
    w1, w2, opt, _ = _two_layers(grads=False)
    sched = ELRWarmup(opt)
    w1.grad = torch.zeros_like(w1)
    with pytest.raises(ValueError, match="params: tracked tensor 1 has no gradient at the first optimizer.step"):
        opt.step()
    assert sched.get_last_lr() == [100.0]


def test_reaches_target_and_stays():
    w1, w2, opt, _ = _two_layers(lr=1e-3)  # tiny target: below the critical LR from the start
    sched = ELRWarmup(opt)
    assert sched.done and sched.get_last_lr() == [1e-3]
    w1.grad.mul_(1e6)  # even a huge gradient does not restart the warm-up
    opt.step()
    sched.step()
    assert sched.get_last_lr() == [1e-3]


def test_missing_gradients_keep_the_lr():
    w1, w2, opt, _ = _two_layers(lr=100.0)
    sched = ELRWarmup(opt)
    lr0 = sched.get_last_lr()[0]
    opt.zero_grad(set_to_none=True)
    opt.step()  # no gradients: SGD skips every tensor, nothing is measured
    sched.step()
    assert sched.get_last_lr()[0] == lr0
    sched.step()  # a scheduler step without an optimizer step changes nothing either
    assert sched.get_last_lr()[0] == lr0


def _net_and_data(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 16, bias=False), torch.nn.BatchNorm1d(16, affine=False), torch.nn.ReLU(),
        torch.nn.Linear(16, 16, bias=False), torch.nn.BatchNorm1d(16, affine=False), torch.nn.ReLU(),
        torch.nn.Linear(16, 16, bias=False), torch.nn.BatchNorm1d(16, affine=False), torch.nn.ReLU(),
        torch.nn.Linear(16, 3)).double()
    x = torch.randn(64, 8, dtype=torch.float64)
    y = torch.randint(0, 3, (64,))
    return net, x, y


def _train(net, x, y, opt, sched, steps):
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_runs_on_a_model_and_warms_up(momentum, nesterov):
    net, x, y = _net_and_data()
    ws = [net[i].weight for i in (0, 3, 6)]
    opt = torch.optim.SGD(net.parameters(), lr=50.0, momentum=momentum, nesterov=nesterov)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    sched = ELRWarmup(opt, params=ws)
    lrs = [sched.get_last_lr()[0]] + _train(net, x, y, opt, sched, 15)
    assert lrs[0] < 50.0  # warm-up active at a large target LR
    assert all(0.0 < v <= 50.0 for v in lrs)
    assert all(math.isfinite(float(p.detach().sum())) for p in net.parameters())


def test_state_dict_round_trip():
    net, x, y = _net_and_data()
    ws = [net[i].weight for i in (0, 3, 6)]
    opt = torch.optim.SGD(net.parameters(), lr=50.0, momentum=0.9)
    sched = ELRWarmup(opt, params=ws)
    _train(net, x, y, opt, sched, 3)
    buf = io.BytesIO()
    torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    cont = _train(net, x, y, opt, sched, 4)
    # restore into fresh objects
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=False)
    net2, _, _ = _net_and_data(seed=1)
    net2.load_state_dict(ckpt["net"])
    opt2 = torch.optim.SGD(net2.parameters(), lr=50.0, momentum=0.9)
    opt2.load_state_dict(ckpt["opt"])
    sched2 = ELRWarmup(opt2, params=[net2[i].weight for i in (0, 3, 6)])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.factor == pytest.approx(ckpt["sched"]["factor"], rel=0)
    resumed = _train(net2, x, y, opt2, sched2, 4)
    assert resumed == pytest.approx(cont, rel=1e-12)  # same float64 ops in the same order


def test_bad_arguments():
    w1, w2, opt, _ = _two_layers()
    with pytest.raises(ValueError, match="optimizer"):
        ELRWarmup(torch.optim.Adam([w1], lr=1e-3))
    with pytest.raises(ValueError, match="lr"):
        ELRWarmup(torch.optim.SGD([w1], lr=0.0))
    with pytest.raises(ValueError, match="params"):
        ELRWarmup(opt, params=[torch.zeros(3, 3)])
    with pytest.raises(ValueError, match="params"):
        ELRWarmup(opt, params=["W"])
    with pytest.raises(ValueError, match="params"):
        ELRWarmup(torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=1.0))  # nothing >= 2-D
    with pytest.raises(ValueError, match="last_epoch"):
        ELRWarmup(opt, last_epoch=-2)
    sched = ELRWarmup(opt)
    with pytest.raises(ValueError, match="state_dict"):
        sched.load_state_dict({"foo": 1})
    bad = sched.state_dict()
    bad["_index"] = [(0, 7)]
    with pytest.raises(ValueError, match="state_dict"):
        sched.load_state_dict(bad)


def test_is_an_lr_scheduler():
    _, _, opt, _ = _two_layers()
    assert isinstance(ELRWarmup(opt), torch.optim.lr_scheduler.LRScheduler)


def test_momentum_gains():
    from lrtheory.tools.elr_warmup import _sgd_gain
    # steady state of buf = m buf + (1 - d) g: (1 - d) / (1 - m); Nesterov adds the current gradient
    assert _sgd_gain({"momentum": 0.0, "dampening": 0.7}) == 1.0  # torch ignores dampening without momentum
    assert _sgd_gain({"momentum": 0.9, "dampening": 0.0}) == pytest.approx(10.0, rel=1e-12)
    assert _sgd_gain({"momentum": 0.9, "dampening": 0.5}) == pytest.approx(5.0, rel=1e-12)
    assert _sgd_gain({"momentum": 0.9, "dampening": 0.0, "nesterov": True}) == pytest.approx(10.0, rel=1e-12)
    # after k earlier steps of a buffer started at the gradient itself (worked by hand):
    # heavy ball 1, 1 + 0.9, 1 + 0.9 + 0.81; with dampening 0.5: 1, 0.9 + 0.5, 0.81 + 0.5 (1 + 0.9)
    assert _sgd_gain({"momentum": 0.9}, 0) == 1.0
    assert _sgd_gain({"momentum": 0.9}, 1) == pytest.approx(1.9, rel=1e-14)
    assert _sgd_gain({"momentum": 0.9}, 2) == pytest.approx(2.71, rel=1e-14)
    assert _sgd_gain({"momentum": 0.9, "dampening": 0.5}, 1) == pytest.approx(1.4, rel=1e-14)
    assert _sgd_gain({"momentum": 0.9, "dampening": 0.5}, 2) == pytest.approx(1.76, rel=1e-14)
    assert _sgd_gain({"momentum": 0.9, "nesterov": True}, 0) == pytest.approx(1.9, rel=1e-14)  # g + 0.9 g
    assert _sgd_gain({"momentum": 0.9, "nesterov": True}, 1) == pytest.approx(1 + 0.9 * 1.9, rel=1e-14)
    assert _sgd_gain({"momentum": 0.0}, 3) == 1.0


def test_param_groups_with_different_target_lrs():
    gen = torch.Generator().manual_seed(1)
    w1 = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    w1.grad = _orth(w1.detach(), torch.randn(4, 3, generator=gen, dtype=torch.float64))
    w2.grad = _orth(w2.detach(), torch.randn(5, 2, generator=gen, dtype=torch.float64))
    opt = torch.optim.SGD([{"params": [w1], "lr": 100.0}, {"params": [w2], "lr": 1000.0}], lr=1.0)
    sched = ELRWarmup(opt)
    b = [lr * float(w.grad.norm()) / float(w.detach().norm()) for lr, w in ((100.0, w1), (1000.0, w2))]
    lam = min(1.0, 1.0 / math.sqrt(max(b) * min(b)))
    assert lam < 1.0
    # one common factor, each group keeps its ratio to its target (round-off only)
    assert sched.get_last_lr() == pytest.approx([100.0 * lam, 1000.0 * lam], rel=1e-12)


# ---------------------------------------------------------------- torch's scheduler contract (issue 19)
def _fresh(seed=0, lr=50.0, momentum=0.9, backward_first=True):
    net, x, y = _net_and_data(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    if backward_first:
        torch.nn.functional.cross_entropy(net(x), y).backward()
    return net, x, y, opt


def _loop(net, x, y, opt, sched, steps, order="standard"):
    lrs = []
    for _ in range(steps):
        if order == "standard":  # zero_grad, backward, step, sched.step
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        else:  # backward, step, zero_grad, sched.step: gradients gone when the scheduler steps
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            opt.zero_grad()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_get_lr_has_no_side_effects():
    # before: calling get_lr() changed the schedule
    runs = []
    for peek in (False, True):
        net, x, y, opt = _fresh()
        sched = ELRWarmup(opt, params=[net[i].weight for i in (0, 3, 6)])
        lrs = []
        for _ in range(6):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            if peek:
                a, b = sched.get_lr(), sched.get_lr()
                assert a == b
            sched.step()
            lrs.append(sched.get_last_lr()[0])
            if peek:
                assert a[0] == lrs[-1]  # get_lr() announced what step() then set
        runs.append(lrs)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("backward_first", [True, False])
def test_loop_order_does_not_matter(backward_first):
    # before: opt.step(); opt.zero_grad(); sched.step() kept the LR at 0 forever
    out = []
    for order in ("standard", "zero_grad_before_sched"):
        # a target far above the critical LR, so that the warm-up is active for all 8 steps (with momentum's
        # gain counted from a zero buffer it ends sooner than it did with the steady-state gain)
        net, x, y, opt = _fresh(backward_first=backward_first, lr=1e4)
        sched = ELRWarmup(opt, params=[net[i].weight for i in (0, 3, 6)])
        if order != "standard":
            opt.zero_grad()  # this loop clears the gradients after each step
        out.append(_loop(net, x, y, opt, sched, 8, order))
    assert out[0] == out[1]
    assert all(0 < v < 1e4 for v in out[1]) and len(set(out[1])) > 1


def test_chained_with_cosine_keeps_the_cosine():
    # before: in ChainedScheduler with CosineAnnealingLR the cosine was erased
    net, x, y, opt = _fresh(lr=1e4)  # far above the critical LR: the warm-up is active throughout
    warm = ELRWarmup(opt, params=[net[i].weight for i in (0, 3, 6)])
    T = 20
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T)
    sched = torch.optim.lr_scheduler.ChainedScheduler([warm, cos])
    for t in range(1, 12):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        sched.step()
        c = 0.5 * (1 + math.cos(math.pi * t / T))
        assert opt.param_groups[0]["lr"] == pytest.approx(1e4 * warm.factor * c, rel=1e-12)
    assert warm.factor < 1  # the warm-up was active throughout


def test_chained_in_either_order_and_with_linear_lr():
    lrs = {}
    for first in ("warm", "linear"):
        net, x, y, opt = _fresh()
        ws = [net[i].weight for i in (0, 3, 6)]
        if first == "warm":
            warm = ELRWarmup(opt, params=ws)
            lin = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=4)
            sched = torch.optim.lr_scheduler.ChainedScheduler([warm, lin])
        else:
            lin = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=4)
            warm = ELRWarmup(opt, params=ws)
            sched = torch.optim.lr_scheduler.ChainedScheduler([lin, warm])
        seq = []
        for t in range(1, 7):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            sched.step()
            lin_f = 0.5 + 0.5 * min(t, 4) / 4
            assert opt.param_groups[0]["lr"] == pytest.approx(50.0 * warm.factor * lin_f, rel=1e-12)
            seq.append(opt.param_groups[0]["lr"])
        lrs[first] = seq
    assert lrs["warm"] == pytest.approx(lrs["linear"], rel=1e-12)


def test_sequential_lr_hands_over_at_the_milestone():
    net, x, y, opt = _fresh()
    warm = ELRWarmup(opt, params=[net[i].weight for i in (0, 3, 6)])
    f0 = warm.factor
    expo = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, expo], milestones=[5])
    assert opt.param_groups[0]["lr"] == pytest.approx(50.0 * f0, rel=1e-12)  # the warm-up's first LR
    for t in range(1, 9):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        sched.step()
        want = 50.0 * warm.factor if t < 5 else 50.0 * 0.9 ** (t - 5)
        assert opt.param_groups[0]["lr"] == pytest.approx(want, rel=1e-12), t


def _checkpoint(net, opt, sched):
    buf = io.BytesIO()
    torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("optimizer_first", [True, False])
@pytest.mark.parametrize("backward_first", [True, False])
@pytest.mark.parametrize("k", [0, 1, 5])
def test_resume_from_any_step(k, backward_first, optimizer_first):
    # before: the documented restore order failed for a checkpoint taken at step 0
    net, x, y, opt = _fresh(backward_first=backward_first)
    sched = ELRWarmup(opt, params=[net[i].weight for i in (0, 3, 6)])
    _loop(net, x, y, opt, sched, k)
    buf = _checkpoint(net, opt, sched)
    cont = _loop(net, x, y, opt, sched, 5)
    ckpt = torch.load(buf, weights_only=False)
    net2, _, _ = _net_and_data(seed=1)
    net2.load_state_dict(ckpt["net"])
    opt2 = torch.optim.SGD(net2.parameters(), lr=50.0, momentum=0.9)
    if optimizer_first:  # restore the optimizer, build the scheduler on it, restore the scheduler
        opt2.load_state_dict(ckpt["opt"])
        sched2 = ELRWarmup(opt2, params=[net2[i].weight for i in (0, 3, 6)])
    else:  # build everything fresh, then restore every state
        sched2 = ELRWarmup(opt2, params=[net2[i].weight for i in (0, 3, 6)])
        opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    resumed = _loop(net2, x, y, opt2, sched2, 5)
    assert resumed == cont  # the same float64 operations in the same order
    for p, q in zip(net.parameters(), net2.parameters()):
        assert torch.equal(p, q)


def test_resume_inside_a_chained_scheduler():
    def build(net, opt):
        warm = ELRWarmup(opt, params=[net[i].weight for i in (0, 3, 6)])
        return torch.optim.lr_scheduler.ChainedScheduler([warm, torch.optim.lr_scheduler.CosineAnnealingLR(opt, 30)])

    net, x, y, opt = _fresh()
    sched = build(net, opt)
    _loop(net, x, y, opt, sched, 3)
    buf = _checkpoint(net, opt, sched)
    cont = _loop(net, x, y, opt, sched, 4)
    ckpt = torch.load(buf, weights_only=False)
    net2, _, _ = _net_and_data(seed=1)
    net2.load_state_dict(ckpt["net"])
    opt2 = torch.optim.SGD(net2.parameters(), lr=50.0, momentum=0.9)
    opt2.load_state_dict(ckpt["opt"])
    sched2 = build(net2, opt2)
    sched2.load_state_dict(ckpt["sched"])
    assert _loop(net2, x, y, opt2, sched2, 4) == pytest.approx(cont, rel=1e-12)


def test_several_param_groups_train():
    net, x, y = _net_and_data()
    opt = torch.optim.SGD([{"params": [net[0].weight, net[3].weight], "lr": 20.0},
                           {"params": [net[6].weight], "lr": 80.0},
                           {"params": [net[9].weight, net[9].bias], "lr": 1.0}], momentum=0.9)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    sched = ELRWarmup(opt, params=[net[0].weight, net[3].weight, net[6].weight])
    for _ in range(6):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        sched.step()
        assert sched.get_last_lr() == pytest.approx([20.0 * sched.factor, 80.0 * sched.factor, 1.0 * sched.factor],
                                                    rel=1e-12)


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop])
def test_adaptive_optimizers_get_a_clear_error(cls):
    w = torch.randn(3, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"optimizer: ELRWarmup's rule is derived for SGD.*no critical LR.*LinearLR"):
        ELRWarmup(cls([w], lr=1e-3))
