r"""Render a results figure: crops of input | restored | ground truth with the PSNR under each.
Any task: denoising, super-resolution, enhancement, defocus deblurring.

    ppmirnet figure --weights output/mirnet_lite/best_model.pdparams --data data/lite/val \
        --output docs/images/denoising_lite.png
    python tools/make_figure.py --weights W --data DIR --output fig.png --count 3 --crop 96 --zoom 2

--data is a paired folder (DIR/input and DIR/groundtruth, matched by name).
One row per image (the first --count by name, or those named with --images):
the --crop x --crop square with the most detail in the ground truth,
enlarged --zoom times (nearest neighbour, so pixels stay visible). The PSNR
under each panel is that of the whole image against its ground truth, under
the config's Metric protocol with -c (e.g. the Y channel for
super-resolution), else on RGB. An input of another size than its ground
truth is shown and scored bicubically resized to it.
"""

import os

import numpy as np

from ..cli import add_config_args, config_from_args, make_parser, str2bool
from ..errors import UserError

# Panel gap and caption band, in pixels of the figure.
GAP = 6
CAPTION = 24


def detailed_crop(image, size):
    """``(y, x)`` of the ``size`` square with the most gradient energy (on a grid of size/4 steps)."""
    import cv2

    gray = image.mean(axis=2)
    energy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    h, w = gray.shape
    size = min(size, h, w)
    step = max(size // 4, 1)
    best, where = -1.0, (0, 0)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            e = float(energy[y:y + size, x:x + size].sum())
            if e > best:
                best, where = e, (y, x)
    return where, size


def _caption(width, text):
    import cv2

    band = np.full((CAPTION, width, 3), 255, np.uint8)
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    cv2.putText(band, text, ((width - tw) // 2, (CAPTION + th) // 2), font, scale, (0, 0, 0), thick,
                cv2.LINE_AA)
    return band


def render(rows, crop, zoom):
    """The figure (uint8 RGB) of ``rows``: ``[(input, restored, truth, psnr_in, psnr_out), ...]``."""
    from ..engine.visual_log import to_uint8

    blocks = []
    for noisy, restored, truth, p_in, p_out in rows:
        (y, x), size = detailed_crop(truth, crop)
        panels = []
        for image, text in ((noisy, f"input {p_in:.2f} dB"), (restored, f"restored {p_out:.2f} dB"),
                            (truth, "ground truth")):
            tile = to_uint8(image[y:y + size, x:x + size])
            tile = np.repeat(np.repeat(tile, zoom, axis=0), zoom, axis=1)
            panels.append(np.concatenate([tile, _caption(tile.shape[1], text)], axis=0))
        gap = np.full((panels[0].shape[0], GAP, 3), 255, np.uint8)
        blocks.append(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))
    width = max(b.shape[1] for b in blocks)
    spaced = []
    for i, block in enumerate(blocks):
        if i:
            spaced.append(np.full((GAP, width, 3), 255, np.uint8))
        spaced.append(np.pad(block, ((0, 0), (0, width - block.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(spaced, axis=0)


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog), required=False)
    parser.add_argument("--weights", default=None,
                        help=".pdparams to restore with (default: the config's Global.pretrained_model)")
    parser.add_argument("--data", required=True, help="paired folder: DATA/input and DATA/groundtruth")
    parser.add_argument("--output", required=True, help="the figure to write (.png)")
    parser.add_argument("--images", nargs="+", default=None, help="file names to show (default: the first --count)")
    parser.add_argument("--count", type=int, default=3, help="rows when --images is not given (default 3)")
    parser.add_argument("--crop", type=int, default=96, help="crop size in image pixels (default 96)")
    parser.add_argument("--zoom", type=int, default=2, help="enlargement of the crops (default 2)")
    parser.add_argument("--ensemble", type=str2bool, nargs="?", const=True, default=False,
                        help="x8 self-ensemble")
    parser.add_argument("--device", default=None, choices=("auto", "cpu", "gpu"),
                        help="auto: the GPU when PaddlePaddle sees one, else the CPU (default: the "
                             "config's Global.device, auto without a config)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    weights = args.weights or (cfg["Global"]["pretrained_model"] if cfg else None)
    if weights is None:
        raise UserError("no weights given: pass --weights PATH(.pdparams)")
    if args.count < 1 or args.crop < 8 or args.zoom < 1:
        raise UserError("--count and --zoom must be >= 1 and --crop >= 8")
    if not args.output.lower().endswith(".png"):
        raise UserError(f"--output must be a .png file, got {args.output}")

    import cv2

    from .. import metrics, processing
    from ..data.paired import find_pairs
    from ..restorer import Restorer
    from ..utils.io import atomic_path

    pairs = find_pairs(args.data)
    if args.images:
        by_name = {os.path.basename(p[1]): p for p in pairs}
        missing = [n for n in args.images if n not in by_name]
        if missing:
            raise UserError(f"{missing[0]} is not a pair of {args.data}")
        pairs = [by_name[n] for n in args.images]
    else:
        pairs = pairs[:args.count]
    device = args.device or (cfg["Global"]["device"] if cfg else None)
    restorer = Restorer(weights, config=cfg, device=device, ensemble=args.ensemble, log=print)
    metric_cfg = cfg["Metric"] if cfg else None
    protocol = metrics.protocol_of(metric_cfg)
    print(f"PSNR protocol: {metrics.describe_protocol(metric_cfg)}")
    rows = []
    for noisy_path, truth_path in pairs:
        noisy, _ = processing.read_image(noisy_path)
        truth, _ = processing.read_image(truth_path)
        restored = restorer(noisy)
        if noisy.shape != truth.shape:
            noisy = np.clip(cv2.resize(noisy, truth.shape[1::-1], interpolation=cv2.INTER_CUBIC), 0, 1)
        if restored.shape != truth.shape:
            raise UserError(f"{noisy_path}: restored {restored.shape[:2]} but the ground truth is "
                            f"{truth.shape[:2]}")
        p_in, p_out = (metrics.image_metrics(img, truth, ["psnr"], **protocol)["psnr"]
                       for img in (noisy, restored))
        rows.append((noisy, restored, truth, p_in, p_out))
        print(f"{os.path.basename(truth_path)}: input {p_in:.2f} dB, restored {p_out:.2f} dB")
    figure = render(rows, args.crop, args.zoom)
    ok, buf = cv2.imencode(".png", figure[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with atomic_path(args.output) as tmp:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
    print(f"wrote {args.output} ({figure.shape[1]}x{figure.shape[0]}, {len(buf) / 1024:.0f} KB)")
