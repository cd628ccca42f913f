r"""Train MIRNet or MIRNet-v2 from a YAML config.
Any task of configs/: denoising, super-resolution, low-light and photo
enhancement, dual-pixel defocus deblurring.

    python tools/train.py -c configs/mirnet_lite.yaml
    python tools/train.py -c configs/mirnet_sidd.yaml -o Global.device=gpu
    python -m paddle.distributed.launch --gpus 0,1,2,3 tools/train.py -c configs/mirnet_sidd.yaml
    python tools/train.py -c configs/mirnet_sidd.yaml -o Global.resume=auto

Writes config.yaml, train.log and the latest/best_model checkpoints
(.pdparams/.pdopt/.pdstates) into Global.output_dir.
"""

from ..cli import add_config_args, config_from_args, make_parser


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog))
    args = parser.parse_args(argv)
    cfg = config_from_args(args)

    from ..engine.stop import Interrupted, StopFlag
    from ..engine.trainer import Trainer

    # Until training starts there is nothing to finish or save: a signal stops at once.
    with StopFlag(immediate=True) as stop:
        try:
            trainer = Trainer(cfg)
        except KeyboardInterrupt:
            if stop.signum is None:
                raise
            raise Interrupted(f"stopped by {stop.name} before training started",
                              stop.signum) from None
    trainer.train()

