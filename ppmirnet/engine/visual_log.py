"""What a training run shows besides its text log: VisualDL curves and validation pictures.

``Global.use_visualdl: true`` writes a VisualDL log to ``<output_dir>/vdl``
(view it with ``visualdl --logdir <output_dir>/vdl``): ``train/loss``,
``train/lr``, ``train/ips`` at every log line, ``eval/<metric>`` at every
validation, and the first validation images as ``val/<i>`` triptychs
(input | restored | ground truth). ``Global.save_val_images: N`` writes the
first N of those triptychs as PNGs under
``<output_dir>/val_images/epoch_<e>/`` for a look without VisualDL.
"""

import os

import numpy as np

from ..errors import MissingDependencyError

VISUALDL_INSTALL = "pip install visualdl==2.5.3 (or pip install '.[visualdl]')"
# Validation images shown in VisualDL at each evaluation.
VDL_IMAGES = 3
# White gap between the three panels of a triptych, in pixels.
GAP = 4


def require_visualdl():
    """The ``visualdl`` module, or :class:`MissingDependencyError` with the install command."""
    try:
        import visualdl
    except ImportError as err:
        raise MissingDependencyError(
            f"Global.use_visualdl is true but VisualDL is not installed: {VISUALDL_INSTALL}"
        ) from err
    return visualdl


def to_uint8(image):
    """An HxWx3 float image in [0, 1] as uint8."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def triptych(*panels):
    """HxWx3 float images in [0, 1] side by side, with white gaps, as one uint8 image."""
    h = max(p.shape[0] for p in panels)
    parts = []
    for i, panel in enumerate(panels):
        if i:
            parts.append(np.full((h, GAP, 3), 255, np.uint8))
        img = to_uint8(panel)
        if img.shape[0] < h:
            img = np.pad(img, ((0, h - img.shape[0]), (0, 0), (0, 0)), constant_values=255)
        parts.append(img)
    return np.concatenate(parts, axis=1)


class VisualLog:
    """The VisualDL writer of a run (rank 0), or nothing when disabled.

    Args:
        logdir (str or None): where the VisualDL records go; None disables.
    """

    def __init__(self, logdir=None):
        self.writer = None
        if logdir is not None:
            visualdl = require_visualdl()
            os.makedirs(logdir, exist_ok=True)
            self.writer = visualdl.LogWriter(logdir=logdir)

    def scalars(self, values, step):
        """Log ``{tag: value}`` at ``step``."""
        if self.writer is None:
            return
        for tag, value in values.items():
            self.writer.add_scalar(tag=tag, value=float(value), step=int(step))

    def images(self, images, step, prefix="val"):
        """Log uint8 HxWx3 images as ``<prefix>/<i>`` at ``step``."""
        if self.writer is None:
            return
        for i, image in enumerate(images):
            self.writer.add_image(tag=f"{prefix}/{i}", img=image, step=int(step))

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def validation_triptychs(runner, loader, count):
    """Triptychs (input | restored | ground truth, uint8) of the first ``count`` validation images."""
    out = []
    if count <= 0:
        return out
    for noisy, clean in loader:
        noisy = np.asarray(noisy, dtype=np.float32)
        clean = np.asarray(clean, dtype=np.float32)
        restored = np.clip(runner(noisy), 0.0, 1.0)
        for n, r, c in zip(noisy, restored, clean):
            out.append(triptych(*(a.transpose(1, 2, 0) for a in (n, r, c))))
            if len(out) == count:
                return out
    return out


def save_triptychs(images, folder):
    """Write uint8 RGB images as ``folder/<i>.png`` (atomically); returns the paths."""
    import cv2

    from ..utils.io import atomic_path

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = os.path.join(folder, f"{i:03d}.png")
        ok, buf = cv2.imencode(".png", image[:, :, ::-1])
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(buf.tobytes())
        paths.append(path)
    return paths
