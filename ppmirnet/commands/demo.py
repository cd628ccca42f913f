"""Open a try-it page in the browser: restore an uploaded image with any model of this project.

    ppmirnet demo
    ppmirnet demo --weights output/mirnet_lite/best_model.pdparams --port 7860
    ppmirnet demo --model_dir inference/mirnet_lite --onnx_file inference/mirnet.onnx

Denoising, super-resolution, enhancement or defocus deblurring: whatever the
chosen model was trained for (dual-pixel models need two views and are not
offered). The page lists the weights (.pdparams) under output/, the exported
programs and ONNX files under inference/, and the models named with
--weights, --model_dir and --onnx_file. It shows the input and the result
side by side with a before/after slider, the time taken, and a PNG of the
result to download; it restores through the Restorer, the path of
ppmirnet predict. It listens on 127.0.0.1 (this machine only) unless --host
names another address. Needs Gradio: pip install ".[demo]".
"""

from ..cli import make_parser
from ..errors import UserError


def main(argv=None, prog=None):
    parser = make_parser(__doc__, prog)
    parser.add_argument("--weights", action="append", default=[], help=".pdparams to offer (repeatable)")
    parser.add_argument("--model_dir", action="append", default=[],
                        help="exported model folder to offer (repeatable)")
    parser.add_argument("--onnx_file", action="append", default=[], help="ONNX model to offer (repeatable)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every "
                             "interface)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"),
                        help="auto (default): the GPU when the runtime sees one, else the CPU")
    parser.add_argument("--max_pixels", type=int, default=None,
                        help="largest image restored, in pixels (default 16000000: 16 MP)")
    args = parser.parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise UserError('the demo needs Gradio: pip install ".[demo]" (or pip install gradio==6.31.0)') from None
    from .. import demo

    models = demo.list_models(demo.models_from_args(args.weights, args.model_dir, args.onnx_file))
    backend = demo.DemoBackend(models, max_pixels=args.max_pixels or demo.DEFAULT_MAX_PIXELS,
                               device=args.device)
    print(f"models: {len(models)} ({', '.join(m.label for m in models[:3])}{', ...' if len(models) > 3 else ''})")
    print(f"open http://{args.host}:{args.port} (Ctrl-C stops)")
    demo.launch(backend, host=args.host, port=args.port, samples=demo.sample_images())
