r"""Convert an official MIRNet or MIRNet-v2 checkpoint (PyTorch) to Paddle weights.
Any task: denoising, super-resolution, enhancement, defocus deblurring.

    ppmirnet convert --src model_denoising.pth --dst mirnet_sidd.pdparams
    python tools/convert_weights.py --src model_denoising.pth --dst mirnet_sidd.pdparams
    python tools/convert_weights.py --src sr_x4.pth --dst mirnetv2_realsr_x4.pdparams

The network is recognised from the checkpoint's keys and its architecture
(MIRNet: n_feat, n_RRG, n_MSRB, height, width; MIRNet-v2: n_feat,
chan_factor, n_MRB, in/out channels, bias) read off its shapes; a 6-channel
MIRNet-v2 is the dual-pixel defocus model. ``--src`` may also be an ``.npz``
of official key -> array. PyTorch is not needed: the .pth is read by a
restricted unpickler that refuses a file that would run code.
"""

from ..cli import make_parser


def main(argv=None, prog=None):
    parser = make_parser(__doc__, prog)
    parser.add_argument("--src", required=True, help="official checkpoint: .pth/.pt or .npz")
    parser.add_argument("--dst", required=True, help="output Paddle weights (.pdparams)")
    parser.add_argument("--task", choices=["defocus_deblurring"], default=None,
                        help="MIRNet-v2 task (default: defocus_deblurring for 6 input channels)")
    parser.add_argument("--allow_nan", action="store_true",
                        help="convert even if the checkpoint holds NaN/inf values (refused by default)")
    args = parser.parse_args(argv)

    from ..convert import convert_checkpoint

    name, arch = convert_checkpoint(args.src, args.dst, task=args.task, allow_nan=args.allow_nan)
    shown = ", ".join(f"{k}={v}" for k, v in arch.items())
    print(f"converted {args.src} -> {args.dst} ({name}: {shown})")

