r"""Export MIRNet or MIRNet-v2 weights to a static inference model with dynamic height and width.
Any task: denoising, super-resolution, enhancement, defocus deblurring.

    python tools/export_model.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        --save_dir inference/mirnet_sidd
    python tools/export_model.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        -o Global.save_inference_dir=inference/mirnet_sidd --legacy_format

Writes inference.json + inference.pdiparams (Paddle 3) and, with
--legacy_format, also inference.pdmodel (read by Paddle 2.6 and Paddle
Serving). Input "x": float32 [N, 3, H, W] in [0, 1], any H and W.
"""

from ..cli import add_config_args, config_from_args, make_parser, str2bool


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog))
    parser.add_argument("--save_dir", default=None,
                        help="output folder (default: Global.save_inference_dir)")
    parser.add_argument("--legacy_format", type=str2bool, nargs="?", const=True, default=False,
                        help="also write the .pdmodel program of Paddle 2.6 / Paddle Serving")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    save_dir = args.save_dir or cfg["Global"]["save_inference_dir"]

    import paddle

    from ..engine.dygraph import load_model
    from ..export import export_inference_model

    paddle.set_device("cpu")
    model = load_model(cfg)
    written = export_inference_model(model, save_dir, legacy_format=args.legacy_format)
    for path in written:
        print(f"wrote {path}")

