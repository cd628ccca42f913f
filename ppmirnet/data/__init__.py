"""Datasets (paired folders, SIDD, DND, the generated lite set), transforms and loaders."""

from .builder import DATASETS, build_dataset, build_eval_loader, build_train_loader
from .dnd import DNDBenchmark, bundle_dnd_submission
from .lite import make_lite_data
from .paired import LitePairs, PairedImageFolder, find_pairs
from .sampler import SeededBatchSampler, ShardSampler
from .sidd import SIDDValidationBlocks, prepare_sidd_patches

__all__ = [
    "DATASETS", "build_dataset", "build_train_loader", "build_eval_loader",
    "PairedImageFolder", "LitePairs", "SIDDValidationBlocks", "DNDBenchmark",
    "find_pairs", "bundle_dnd_submission", "make_lite_data", "prepare_sidd_patches",
    "SeededBatchSampler", "ShardSampler",
]
