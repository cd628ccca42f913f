"""Peak-memory coefficients of :mod:`ppmirnet.memory`, written by benchmarks/memory_model.py.

Do not edit by hand: rerun the script. Bytes; see the script for the model.
"""

MEASURED_ON = {"machine": "provisional"}

COEFFICIENTS = {
    "MIRNet/dygraph/cpu": {"per_pixel_per_width": 56.608, "per_pixel": 929.0, "fixed": 431349367, "fixed_per_param_byte": 1.162, "default_width": 112.0, "default_param_bytes": 127149676, "scaling": "fitted on two widths"},
    "MIRNetV2/dygraph/cpu": {"per_pixel_per_width": 54.151, "per_pixel": 816.9, "fixed": 428152333, "fixed_per_param_byte": 2.093, "default_width": 121.25, "default_param_bytes": 23434240, "scaling": "fitted on two widths"},
}

# (arch, engine, size, loaded, peak) as measured
MEASUREMENTS = [
    {"arch": {"name": "MIRNet", "in_channels": 3, "out_channels": 3, "n_feat": 64, "kernel_size": 3, "stride": 2, "n_RRG": 3, "n_MSRB": 2, "height": 3, "width": 2, "bias": False}, "engine": "dygraph", "size": 96, "loaded": 556793856, "peak": 652214272},
    {"arch": {"name": "MIRNet", "in_channels": 3, "out_channels": 3, "n_feat": 64, "kernel_size": 3, "stride": 2, "n_RRG": 3, "n_MSRB": 2, "height": 3, "width": 2, "bias": False}, "engine": "dygraph", "size": 160, "loaded": 558891008, "peak": 754974720},
    {"arch": {"name": "MIRNet", "in_channels": 3, "out_channels": 3, "n_feat": 64, "kernel_size": 3, "stride": 2, "n_RRG": 3, "n_MSRB": 2, "height": 3, "width": 2, "bias": False}, "engine": "dygraph", "size": 224, "loaded": 556793856, "peak": 947912704},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 16, "kernel_size": 3, "stride": 2, "n_RRG": 3, "n_MSRB": 2, "height": 3, "width": 2, "bias": False, "name": "MIRNet"}, "engine": "dygraph", "size": 96, "loaded": 434741248, "peak": 467107840},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 16, "kernel_size": 3, "stride": 2, "n_RRG": 3, "n_MSRB": 2, "height": 3, "width": 2, "bias": False, "name": "MIRNet"}, "engine": "dygraph", "size": 160, "loaded": 434782208, "peak": 499380224},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 16, "kernel_size": 3, "stride": 2, "n_RRG": 3, "n_MSRB": 2, "height": 3, "width": 2, "bias": False, "name": "MIRNet"}, "engine": "dygraph", "size": 224, "loaded": 436023296, "peak": 568967168},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 80, "chan_factor": 1.5, "n_RRG": 4, "n_MRB": 2, "height": 3, "width": 2, "scale": 1, "bias": False, "task": None, "name": "MIRNetV2"}, "engine": "dygraph", "size": 96, "loaded": 446623744, "peak": 541536256},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 80, "chan_factor": 1.5, "n_RRG": 4, "n_MRB": 2, "height": 3, "width": 2, "scale": 1, "bias": False, "task": None, "name": "MIRNetV2"}, "engine": "dygraph", "size": 160, "loaded": 446578688, "peak": 672374784},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 80, "chan_factor": 1.5, "n_RRG": 4, "n_MRB": 2, "height": 3, "width": 2, "scale": 1, "bias": False, "task": None, "name": "MIRNetV2"}, "engine": "dygraph", "size": 224, "loaded": 446803968, "peak": 845168640},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 16, "chan_factor": 1.5, "n_RRG": 4, "n_MRB": 2, "height": 3, "width": 2, "scale": 1, "bias": False, "task": None, "name": "MIRNetV2"}, "engine": "dygraph", "size": 96, "loaded": 422785024, "peak": 452050944},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 16, "chan_factor": 1.5, "n_RRG": 4, "n_MRB": 2, "height": 3, "width": 2, "scale": 1, "bias": False, "task": None, "name": "MIRNetV2"}, "engine": "dygraph", "size": 160, "loaded": 422809600, "peak": 480858112},
    {"arch": {"in_channels": 3, "out_channels": 3, "n_feat": 16, "chan_factor": 1.5, "n_RRG": 4, "n_MRB": 2, "height": 3, "width": 2, "scale": 1, "bias": False, "task": None, "name": "MIRNetV2"}, "engine": "dygraph", "size": 224, "loaded": 423260160, "peak": 538537984},
]
