"""Check a TIPC results log against the steps its config implies on CPU.

    python test_tipc/check_results.py --config test_tipc/configs/MIRNet/train_infer_python.txt \
        --mode lite_train_lite_infer --log test_tipc/output/MIRNet/lite_train_lite_infer/results_python.log

A chain passes when no line says ``Run failed`` and exactly as many lines say
``Run successfully`` as the config lists CPU steps for the mode (GPU,
several-card, AMP and TensorRT steps are skipped on CPU, so they are not
counted). The count is derived here from the config, independently of the
shell scripts, so a script that silently drops steps is caught. Exit status:
0 pass, 1 fail, 2 bad arguments. Standard library only.
"""

import argparse
import os
import re
import sys

TRAIN_MODES = ("lite_train_lite_infer", "lite_train_whole_infer", "whole_infer", "whole_train_whole_infer")
SERVING_MODES = ("serving_infer",)
ONNX_MODES = ("paddle2onnx_infer",)
OPENVINO_MODES = ("openvino_infer",)
CPU_DEVICE_VALUES = ("cpu", "False", "false")


class ConfigLines:
    """A TIPC config read by line number (0-based), ``key:value`` per line."""

    def __init__(self, path):
        with open(path, "r", encoding="utf-8") as f:
            self.lines = [line.rstrip("\r\n") for line in f]

    def key(self, index):
        """The text before the first ``:`` of line ``index``."""
        return self.lines[index].split(":", 1)[0]

    def value(self, index):
        """The text after the first ``:`` of line ``index`` ('' when none)."""
        parts = self.lines[index].split(":", 1)
        return parts[1] if len(parts) == 2 else ""

    def values(self, index):
        """The ``|``-separated alternatives of line ``index``."""
        return self.value(index).split("|")

    def mode_value(self, index, mode):
        """The value line ``index`` gives MODE (``mode=value`` items), or ''."""
        for item in self.values(index):
            name, _, value = item.partition("=")
            if name == mode:
                return value
        return ""


def _is_null(text):
    return text in ("", "null")


def cpu_inference_steps(cfg, is_quant=False):
    """Runs of the CPU inference grid: oneDNN x threads x batch x precision.

    fp16 is left out on CPU (it needs TensorRT on a GPU); int8 only for a
    quantised model, which also needs oneDNN.
    """
    if not any(v in CPU_DEVICE_VALUES for v in cfg.values(40)):
        return 0
    count = 0
    for mkldnn in cfg.values(41):
        if is_quant and mkldnn == "False":
            continue
        for _threads in cfg.values(42):
            for _batch in cfg.values(43):
                for precision in cfg.values(45):
                    if precision == "fp16":
                        continue
                    if is_quant != (precision == "int8"):
                        continue
                    count += 1
    return count


def _trainer_commands(cfg, trainer):
    """(train command, export command, is_quant) for a trainer_list entry."""
    table = {
        cfg.key(16): (cfg.value(16), cfg.value(30), True),
        cfg.key(17): (cfg.value(17), cfg.value(31), False),
        cfg.key(18): (cfg.value(18), cfg.value(32), False),
        cfg.key(19): (cfg.value(19), cfg.value(33), False),
        cfg.key(20): (cfg.value(20), cfg.value(34), False),
    }
    return table.get(trainer, (cfg.value(15), cfg.value(29), False))


def expected_train_steps(cfg, mode):
    """CPU steps of test_train_inference_python.sh for MODE."""
    if mode == "whole_infer":
        models = cfg.values(36)
        exports = cfg.values(37)
        quants = cfg.values(38)
        count = 0
        for i, _model in enumerate(models):
            export = exports[i] if i < len(exports) else "null"
            is_quant = (quants[i] if i < len(quants) else "False") == "True"
            count += (0 if _is_null(export) else 1) + cpu_inference_steps(cfg, is_quant)
        return count
    if mode == "whole_train_whole_infer":
        return 0  # full training runs on GPUs only
    devices = cfg.values(4)
    count = 0
    for i, entry in enumerate(cfg.values(3)):
        device = devices[i] if i < len(devices) else devices[0]
        if not (entry == "-1" or device in CPU_DEVICE_VALUES):
            continue
        for autocast in cfg.values(5):
            if not _is_null(autocast):
                continue  # AMP needs a GPU
            for trainer in cfg.values(14):
                train, export, is_quant = _trainer_commands(cfg, trainer)
                if _is_null(train):
                    continue
                count += 1
                if not _is_null(cfg.value(23)):
                    count += 1
                if not _is_null(export):
                    count += 1 + cpu_inference_steps(cfg, is_quant)
    return count


def expected_serving_steps(cfg):
    """CPU steps of test_serving_infer_python.sh: conversion, then start,
    client and stop for every CPU entry of the devices line."""
    cpu_entries = [v for v in cfg.values(11) if v in ("", '""', "''", "null")]
    return 1 + 3 * len(cpu_entries)


def expected_onnx_steps(cfg):
    """Steps of test_paddle2onnx.sh: the conversion (when a converter is
    given) and the onnxruntime inference."""
    return (0 if _is_null(cfg.value(3)) else 1) + (0 if _is_null(cfg.value(10)) else 1)


def expected_openvino_steps(cfg):
    """Steps of test_openvino.sh: the export (when an exporter is given) and
    the OpenVINO inference."""
    return (0 if _is_null(cfg.value(3)) else 1) + (0 if _is_null(cfg.value(8)) else 1)


def expected_steps(config_path, mode):
    """Number of ``Run successfully`` lines a full CPU run of MODE writes."""
    cfg = ConfigLines(config_path)
    if mode in SERVING_MODES:
        return expected_serving_steps(cfg)
    if mode in ONNX_MODES:
        return expected_onnx_steps(cfg)
    if mode in OPENVINO_MODES:
        return expected_openvino_steps(cfg)
    return expected_train_steps(cfg, mode)


def read_results(log_path):
    """Counts of successful, failed and skipped steps in a results log."""
    with open(log_path, "r", encoding="utf-8", errors="replace") as f:
        text = f.read()
    return {
        "success": len(re.findall(r"^Run successfully with command - ", text, re.M)),
        "failed": len(re.findall(r"^Run failed with command - ", text, re.M)),
        "skipped": len(re.findall(r"^Run skipped \(", text, re.M)),
    }


TRAIN_LOG_FIELDS = ("loss:", "lr:", "batch_cost:", "reader_cost:", "ips:")


def check_train_log(path):
    """(ok, message): does a training log have a step line with every field
    the benchmark tooling parses (loss, lr, batch_cost, reader_cost, ips)?"""
    if not os.path.isfile(path):
        return False, f"training log not found: {path}"
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if all(field in line for field in TRAIN_LOG_FIELDS):
                return True, f"training log {path}: step lines carry {', '.join(TRAIN_LOG_FIELDS)}"
    return False, f"training log {path}: no line carries all of {', '.join(TRAIN_LOG_FIELDS)} -> FAIL"


def check(config_path, mode, log_path):
    """(ok, message) for the results log of MODE."""
    expected = expected_steps(config_path, mode)
    if not os.path.isfile(log_path):
        return False, f"results log not found: {log_path}"
    counts = read_results(log_path)
    summary = (f"{mode}: {counts['success']} succeeded, {counts['failed']} failed, "
               f"{counts['skipped']} skipped; the config lists {expected} CPU steps")
    if counts["failed"]:
        return False, summary + " -> FAIL (a step failed)"
    if counts["success"] < expected:
        return False, summary + " -> FAIL (fewer steps ran than the config lists)"
    if counts["success"] > expected:
        return False, summary + " -> FAIL (more steps ran than the config lists: stale log or script out of step)"
    return True, summary + " -> PASS"


def main(argv=None):
    """Command line: exit 0 when the log passes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the TIPC config the chain ran")
    parser.add_argument("--mode", required=True, choices=TRAIN_MODES + SERVING_MODES + ONNX_MODES + OPENVINO_MODES)
    parser.add_argument("--log", help="results_python.log, results_serving.log, results_paddle2onnx.log or results_openvino.log")
    parser.add_argument("--train_log", help="also check that this training log has the benchmark fields")
    parser.add_argument("--expected_only", action="store_true", help="print the expected step count and exit")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.config):
        print(f"error: config not found: {args.config}", file=sys.stderr)
        return 2
    if args.expected_only:
        print(expected_steps(args.config, args.mode))
        return 0
    if not args.log:
        print("error: --log is required", file=sys.stderr)
        return 2
    ok, message = check(args.config, args.mode, args.log)
    print(message)
    if args.train_log:
        log_ok, log_message = check_train_log(args.train_log)
        print(log_message)
        ok = ok and log_ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
