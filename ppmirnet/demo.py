"""A try-it page: restore an image in the browser with any model of this project (Gradio).

    ppmirnet demo                                   # http://127.0.0.1:7860, models found under output/ and inference/
    ppmirnet demo --weights mirnetv2_sidd.pdparams --model_dir inference/mirnet_lite

Upload an image or pick a sample, pick a model, and see the input and the
result side by side (a before/after slider), the time taken, and a PNG of the
result to download. Restoration goes through :class:`ppmirnet.Restorer`, the
path of ``ppmirnet predict``: the same padding, tiling and runtimes, with the
Restorer's options (tiling, and whatever other options the installed
Restorer takes, such as an engine or a memory budget) offered on the page.

The model list is :func:`list_models`, the union of :data:`MODEL_SOURCES`:
functions returning :class:`ModelChoice` entries. Other code adds a source
with :func:`add_model_source` (named models of a model zoo, for instance).

Gradio is an optional extra: ``pip install ".[demo]"``.
"""

import glob
import os
import tempfile
import time
from collections import OrderedDict, namedtuple

from .errors import UserError

#: Largest image the page restores, in pixels (a 4000x3000 photo is 12 MP).
DEFAULT_MAX_PIXELS = 16_000_000
#: Largest upload Gradio accepts (its own check, before any decoding).
MAX_UPLOAD = "50mb"

ModelChoice = namedtuple("ModelChoice", ["label", "options"])
ModelChoice.__doc__ = """A model the page offers: ``label`` shown in the list, ``options`` the
keyword arguments of :class:`ppmirnet.Restorer` that load it (``weights=``,
``model_dir=`` or ``onnx_file=``, plus anything else it needs), or ``model=``
with a name of :data:`ppmirnet.zoo.MODELS` (:meth:`ppmirnet.Restorer.from_pretrained`)."""


def _local_models(root="."):
    """Weights, exported programs and ONNX files under ``root``'s ``output/`` and ``inference/``."""
    found = []
    for path in sorted(glob.glob(os.path.join(root, "output", "**", "*.pdparams"), recursive=True)):
        found.append(ModelChoice(f"weights: {os.path.relpath(path, root)}", {"weights": path}))
    for params in sorted(glob.glob(os.path.join(root, "inference", "**", "inference.pdiparams"),
                                   recursive=True)):
        folder = os.path.dirname(params)
        found.append(ModelChoice(f"exported: {os.path.relpath(folder, root)}", {"model_dir": folder}))
    for path in sorted(glob.glob(os.path.join(root, "inference", "**", "*.onnx"), recursive=True)):
        found.append(ModelChoice(f"onnx: {os.path.relpath(path, root)}", {"onnx_file": path}))
    return found


def _named_models():
    """The authors' checkpoints by name (``ppmirnet models``): fetched and converted when first picked."""
    from .zoo import MODELS

    return [ModelChoice(f"named: {name} ({model.task})", {"model": name}) for name, model in MODELS.items()]


#: Functions returning lists of :class:`ModelChoice`; :func:`list_models` calls each.
MODEL_SOURCES = [_local_models, _named_models]


def add_model_source(source):
    """Offer the models of ``source`` (a function returning :class:`ModelChoice` entries) too."""
    if source not in MODEL_SOURCES:
        MODEL_SOURCES.append(source)


def list_models(extra=()):
    """The models the page offers: ``extra`` first, then every source's, without duplicate labels."""
    choices = OrderedDict()
    for choice in list(extra) + [c for source in MODEL_SOURCES for c in source()]:
        choices.setdefault(choice.label, choice)
    return list(choices.values())


def models_from_args(weights=(), model_dirs=(), onnx_files=()):
    """:class:`ModelChoice` entries for models named on the command line (checked to exist)."""
    out = []
    for kind, key, paths in (("weights", "weights", weights), ("exported", "model_dir", model_dirs),
                             ("onnx", "onnx_file", onnx_files)):
        for path in paths:
            if not os.path.exists(path):
                raise UserError(f"{kind} not found: {path}")
            out.append(ModelChoice(f"{kind}: {path}", {key: path}))
    return out


def sample_images(root="."):
    """Sample inputs for the page: the generated lite validation inputs under ``data/``, if any."""
    return sorted(glob.glob(os.path.join(root, "data", "lite*", "val", "input", "*.png")))


def restorer_option_names():
    """The keyword options the installed :class:`ppmirnet.Restorer` takes (engine, memory, ...)."""
    import inspect

    from .restorer import Restorer

    return set(inspect.signature(Restorer.__init__).parameters)


class DemoBackend:
    """The page's work, without Gradio: choose a model, restore an image, write the result.

    Args:
        models (list[ModelChoice]): what the page offers.
        max_pixels (int): larger images are refused with a message.
        output_dir (str): where results are written for download (default: a
            temporary folder).
        device (str): ``auto``, ``cpu`` or ``gpu`` for every model.
    """

    def __init__(self, models, max_pixels=DEFAULT_MAX_PIXELS, output_dir=None, device="auto"):
        if not models:
            raise UserError("no model to offer: train one (ppmirnet train -c configs/mirnet_lite.yaml), "
                            "or pass --weights, --model_dir or --onnx_file")
        self.models = OrderedDict((m.label, m) for m in models)
        self.max_pixels = int(max_pixels)
        self.output_dir = output_dir or tempfile.mkdtemp(prefix="ppmirnet-demo-")
        self.device = device
        self._cache = OrderedDict()  # (label, options) -> Restorer; the last two used stay loaded

    def restorer(self, label, **options):
        """The :class:`~ppmirnet.Restorer` of model ``label`` with ``options`` (tile, engine, ...)."""
        if label not in self.models:
            raise UserError(f"unknown model {label!r}; the page offers: {', '.join(self.models)}")
        key = (label, tuple(sorted(options.items())))
        if key not in self._cache:
            from .restorer import Restorer

            kwargs = dict(self.models[label].options, device=self.device, **options)
            name = kwargs.pop("model", None)
            self._cache[key] = Restorer.from_pretrained(name, **kwargs) if name else Restorer(**kwargs)
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]

    def check_size(self, image):
        """Refuse an image over :attr:`max_pixels` with a message giving both sizes."""
        h, w = image.shape[:2]
        if h * w > self.max_pixels:
            raise UserError(f"the image is {w}x{h} = {h * w:,} pixels; this page restores at most "
                            f"{self.max_pixels:,} pixels: resize it, or use ppmirnet predict with "
                            f"--tile for large photos")

    def restore(self, image, label, **options):
        """Restore an RGB numpy image; returns ``(restored, seconds, png_path)``."""
        if image is None:
            raise UserError("no image: upload one or pick a sample")
        self.check_size(image)
        restorer = self.restorer(label, **options)
        start = time.perf_counter()
        restored = restorer(image)
        seconds = time.perf_counter() - start
        import cv2

        from .utils.io import atomic_path

        path = os.path.join(self.output_dir, f"restored-{time.strftime('%Y%m%d-%H%M%S')}"
                                             f"-{int(start * 1e6) % 1_000_000:06d}.png")
        ok, png = cv2.imencode(".png", restored[:, :, ::-1] if restored.ndim == 3 else restored)
        if not ok:
            raise UserError("PNG encoding failed")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(png.tobytes())
        return restored, seconds, path


def restore_options(names, tile, engine=None, max_memory=None):
    """The :class:`~ppmirnet.Restorer` options of the page's controls.

    ``names``: the options the installed Restorer takes (see
    :func:`restorer_option_names`); ``engine`` and ``max_memory`` are passed
    only when it takes them and they are set (``auto`` or empty: its default).
    A tile gets the overlap of ``predict`` (32), less for small tiles so that
    any multiple of 8 works.
    """
    tile = int(tile or 0)
    options = {"tile": tile, "tile_overlap": min(32, tile // 2)} if tile else {}
    for key, value in (("engine", engine), ("max_memory", max_memory)):
        if key in names and value not in (None, "", "auto"):
            options[key] = value
    return options


def build_page(backend, samples=()):
    """The Gradio Blocks page over ``backend`` (a :class:`DemoBackend`)."""
    import gradio as gr

    names = restorer_option_names()
    labels = list(backend.models)
    with gr.Blocks(title="ppmirnet: MIRNet / MIRNet-v2 restoration") as page:
        gr.Markdown("## MIRNet / MIRNet-v2 image restoration\nUpload an image (or pick a sample), pick "
                    "a model, then **Restore**. Denoising, super-resolution (inputs at the output "
                    "size), enhancement or deblurring: whatever the model was trained for. Images "
                    f"up to {backend.max_pixels / 1e6:.0f} MP.")
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="numpy", image_mode="RGB", label="Input", elem_id="input-image")
                model = gr.Dropdown(labels, value=labels[0], label="Model", elem_id="model")
                tile = gr.Number(value=0, precision=0, label="Tile (pixels, multiple of 8; 0 = whole image)",
                                 elem_id="tile")
                extra = []
                if "engine" in names:
                    extra.append(gr.Dropdown(["auto", "dygraph", "paddle-inference", "onnx", "openvino"],
                                             value="auto", label="Engine", elem_id="engine"))
                if "max_memory" in names:
                    extra.append(gr.Textbox(value="", label="Memory budget (e.g. 3G; empty = automatic)",
                                            elem_id="max-memory"))
                run = gr.Button("Restore", variant="primary", elem_id="restore")
            with gr.Column():
                slider = gr.ImageSlider(label="Before / after", type="numpy", format="png",
                                        elem_id="slider")
                took = gr.Textbox(label="Time", interactive=False, elem_id="time")
                download = gr.File(label="Download the result (PNG)", elem_id="download")
        if samples:
            gr.Examples(list(samples), inputs=image, label="Samples")

        def on_restore(img, label, tile_px, *extra_values):
            options = restore_options(names, tile_px, *extra_values)
            try:
                restored, seconds, path = backend.restore(img, label, **options)
            except UserError as err:
                raise gr.Error(str(err)) from None
            h, w = restored.shape[:2]
            return (img, restored), f"{seconds:.2f} s for {w}x{h}", path

        run.click(on_restore, inputs=[image, model, tile, *extra], outputs=[slider, took, download],
                  api_name="restore")
    return page


def launch(backend, host="127.0.0.1", port=7860, samples=(), block=True):
    """Serve the page on ``host:port`` (127.0.0.1: this machine only); returns the Gradio app's URL."""
    page = build_page(backend, samples)
    page.queue(default_concurrency_limit=1)  # one restoration at a time: each uses every core
    _, url, _ = page.launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                            max_file_size=MAX_UPLOAD, allowed_paths=[backend.output_dir],
                            footer_links=["api"], quiet=not block)
    return page, url
