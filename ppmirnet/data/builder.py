"""Build datasets and data loaders from the ``DataLoader`` section of a config."""

from ..errors import ConfigError
from ..registry import build
from .dnd import DNDBenchmark
from .loader import GuardedLoader
from .paired import DualPixelFolder, LitePairs, PairedImageFolder
from .sampler import SeededBatchSampler, ShardSampler
from .sidd import SIDDValidationBlocks

DATASETS = {
    "PairedImageFolder": PairedImageFolder,
    "LitePairs": LitePairs,
    "SIDDValidationBlocks": SIDDValidationBlocks,
    "DNDBenchmark": DNDBenchmark,
    "DualPixelFolder": DualPixelFolder,
}


def build_dataset(cfg, log=print):
    """The dataset named by ``cfg['name']``, built with the other keys."""
    extra = {"log": log} if cfg["name"] == "LitePairs" else {}
    return build(DATASETS, cfg, "dataset", **extra)


def _loader(dataset, batch_sampler, loader_cfg):
    return GuardedLoader(dataset, batch_sampler, num_workers=loader_cfg["num_workers"],
                         use_shared_memory=loader_cfg["use_shared_memory"])


def build_train_loader(section, seed, rank=0, world_size=1, log=print):
    """``(dataset, sampler, loader)`` for ``DataLoader.Train``; the sampler drives the epochs."""
    dataset = build_dataset(section["dataset"], log)
    s = section["sampler"]
    sampler = SeededBatchSampler(len(dataset), s["batch_size"], shuffle=s["shuffle"],
                                 drop_last=s["drop_last"], seed=seed, rank=rank,
                                 world_size=world_size)
    if sampler.batches_per_epoch() == 0:
        raise ConfigError(
            f"DataLoader.Train: {len(dataset)} samples make no batch of "
            f"{s['batch_size']} x {world_size} card(s) with drop_last; lower the batch size "
            f"or raise dataset.repeat")
    return dataset, sampler, _loader(dataset, sampler, section["loader"])


def build_eval_loader(section, rank=0, world_size=1, log=print, dataset=None):
    """``(dataset, loader)`` for ``DataLoader.Eval``; card ``rank`` gets its share."""
    if dataset is None:
        dataset = build_dataset(section["dataset"], log)
    sampler = ShardSampler(len(dataset), section["sampler"]["batch_size"], rank, world_size)
    return dataset, _loader(dataset, sampler, section["loader"])
