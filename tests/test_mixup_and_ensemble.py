"""The trainer's MixUp (seeded by position, so resumable) and the x8 self-ensemble."""

import numpy as np
import paddle

from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.dygraph import SelfEnsemble
from ppmirnet.engine.trainer import Trainer

from lite_helpers import LITE_CONFIG, read, tiny_overrides, train_lines


def _trainer(lite_root, out, **extra):
    return Trainer(load_config(LITE_CONFIG, tiny_overrides(lite_root, str(out), **extra)))


def test_trainer_mixup_is_the_official_mixing_seeded_by_position(lite_root, tmp_path):
    t = _trainer(lite_root, tmp_path, **{"DataLoader.Train.mixup.start_epoch": 2,
                                         "DataLoader.Train.mixup.alpha": 1.2,
                                         "Global.seed": 5})
    rng = np.random.default_rng(0)
    noisy = rng.random((4, 3, 8, 8)).astype(np.float32)
    clean = rng.random((4, 3, 8, 8)).astype(np.float32)

    def mix(epoch, it, trainer=t):
        trainer.epoch, trainer.epoch_iter = epoch, it
        a, b = trainer._mix(paddle.to_tensor(noisy), paddle.to_tensor(clean))
        return a.numpy(), b.numpy()

    a, b = mix(1, 3)  # before start_epoch: untouched
    assert np.array_equal(a, noisy) and np.array_equal(b, clean)
    a, b = mix(2, 3)
    # Each sample i: lam_i * x_i + (1 - lam_i) * x_perm(i), one (lam, perm) for both images.
    pos = np.random.default_rng([5, 2, 3, 0])
    perm = pos.permutation(4)
    lam = pos.beta(1.2, 1.2, size=(4, 1, 1, 1)).astype(np.float32)
    assert sorted(perm) == [0, 1, 2, 3] and not np.array_equal(perm, np.arange(4))
    np.testing.assert_allclose(a, lam * noisy + (1 - lam) * noisy[perm], atol=1e-6)
    np.testing.assert_allclose(b, lam * clean + (1 - lam) * clean[perm], atol=1e-6)
    # Same position, another trainer (a resumed run): the same mixing; another position: not.
    again = _trainer(lite_root, tmp_path / "again", **{"DataLoader.Train.mixup.start_epoch": 2,
                                                      "Global.seed": 5})
    assert all(np.array_equal(x, y) for x, y in zip(mix(2, 3, again), (a, b)))
    assert not np.allclose(mix(2, 4)[0], a)


def test_resume_with_mixup_continues_exactly(lite_root, tmp_path):
    extra = {"DataLoader.Train.mixup.start_epoch": 2, "Global.eval_during_train": False}
    _trainer(lite_root, tmp_path / "ref", **extra).train()
    out = tmp_path / "resumed"
    _trainer(lite_root, out, **extra, **{"Global.max_iters": 9}).train()
    _trainer(lite_root, out, **extra, **{"Global.resume": "auto"}).train()
    ref = train_lines(read(tmp_path / "ref" / "train.log"))
    assert len(ref) == 12 and train_lines(read(out / "train.log")) == ref
    w = ckpt.read_weights(str(out / "latest.pdparams"))[1]
    w_ref = ckpt.read_weights(str(tmp_path / "ref" / "latest.pdparams"))[1]
    assert all(np.array_equal(w[k].numpy(), w_ref[k].numpy()) for k in w_ref)


# -- x8 self-ensemble ---------------------------------------------------------------------

def _transpose(x):
    return np.swapaxes(x, 2, 3)


def _flip_h(x):
    return x[:, :, ::-1, :]


def _flip_w(x):
    return x[:, :, :, ::-1]


# The 8 symmetries of the square as (transform, inverse), written out one by one.
EIGHT = [
    (lambda x: x, lambda y: y),
    (_flip_h, _flip_h),
    (_flip_w, _flip_w),
    (lambda x: _flip_h(_flip_w(x)), lambda y: _flip_w(_flip_h(y))),       # rotation by 180
    (_transpose, _transpose),
    (lambda x: _flip_h(_transpose(x)), lambda y: _transpose(_flip_h(y))),  # rotation by 90
    (lambda x: _flip_w(_transpose(x)), lambda y: _transpose(_flip_w(y))),  # rotation by 270
    (lambda x: _flip_h(_flip_w(_transpose(x))), lambda y: _transpose(_flip_w(_flip_h(y)))),
]


def _position_dependent(batch):
    """A runner that is not symmetric: scales each pixel by a ramp over its position."""
    n, c, h, w = batch.shape
    ramp = (1 + np.arange(h)[:, None] * 0.1 + np.arange(w)[None, :] * 0.01).astype(np.float32)
    return batch * ramp + 0.001 * np.arange(c, dtype=np.float32)[:, None, None]


def test_x8_self_ensemble_is_the_mean_of_the_eight_transforms_undone():
    x = np.random.default_rng(1).random((2, 3, 6, 10)).astype(np.float32)  # not square
    for forward, inverse in EIGHT:
        assert np.array_equal(inverse(forward(x)), x)
    assert len({forward(x).tobytes() for forward, _ in EIGHT}) == 8
    expected = np.mean([inverse(_position_dependent(np.ascontiguousarray(forward(x))))
                        for forward, inverse in EIGHT], axis=0)
    got = SelfEnsemble(_position_dependent)(x)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.abs(got - _position_dependent(x)).max() > 0.1
