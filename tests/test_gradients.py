"""One Charbonnier training step of the port against the official gradients.

``grads.npz`` holds, for the fixture network, weights and input, the target,
the loss and the gradient of every official state-dict key after one
backward pass of the official PyTorch model (Charbonnier loss on the clamped
output). Every speed-up of the network must keep these.
"""

import os

import numpy as np
import paddle
import pytest

from ppmirnet.convert import infer_arch, load_official_weights, official_key
from ppmirnet.losses import CharbonnierLoss
from ppmirnet.modeling import MIRNet
from tests.helpers import FIXTURE

# Largest per-parameter error measured: 2.5e-5 of the parameter's largest
# official gradient (float32 accumulation order differs between frameworks).
REL_TOL = 1e-4


@pytest.fixture(scope="module")
def step():
    weights = dict(np.load(os.path.join(FIXTURE, "weights.npz")))
    io = dict(np.load(os.path.join(FIXTURE, "io.npz")))
    ref = dict(np.load(os.path.join(FIXTURE, "grads.npz")))
    model = MIRNet(**infer_arch(weights))
    load_official_weights(model, weights)
    model.train()
    loss = CharbonnierLoss()(model(paddle.to_tensor(io["input"])), paddle.to_tensor(ref["target"]))
    loss.backward()
    grads = {official_key(k): p.grad.numpy() for k, p in model.named_parameters()}
    return float(loss), grads, ref


def test_loss_matches_official(step):
    loss, _, ref = step
    assert abs(loss - float(ref["loss"])) < 1e-5


def test_every_parameter_gradient_matches_official(step):
    _, grads, ref = step
    official = {k[len("grad/"):]: v for k, v in ref.items() if k.startswith("grad/")}
    # One key per parameter on both sides (shared modules are listed once).
    assert set(grads) == set(official) and len(grads) == 104
    for key, ours in grads.items():
        expected = official[key]
        assert ours.shape == expected.shape, key
        scale = np.abs(expected).max()
        err = np.abs(ours - expected).max()
        if scale == 0:
            # Dead attention branch: the official gradient is exactly zero.
            assert err < 1e-9, key
        else:
            assert err / scale < REL_TOL, (key, err / scale)
