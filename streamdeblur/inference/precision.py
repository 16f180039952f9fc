"""Precision and memory layout: the names, what `auto` means on this machine, and the CPU's facts.

`auto` precision: fp16 on CUDA; on CPUs where oneDNN runs bf16 natively (AVX512-BF16 or AMX),
bf16 is a candidate, timed against fp32 on the machine (select.py, training/mixed_precision.py):
on one such CPU it was several times faster with no visible difference, on another slower;
fp32 elsewhere, since emulated bf16 is always slower than fp32. `auto` layout: channels-last
(NHWC) for torch on the CPU, where oneDNN's convolutions prefer it, and on CUDA in fp16/bf16
(tensor cores).
"""

from __future__ import annotations

import logging
import platform
from functools import lru_cache
from pathlib import Path

import torch

from streamdeblur.errors import BadUsage

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PRECISIONS = ("auto", *DTYPES, "int8")  # int8: TensorRT engines, and OpenVINO on the CPU
# The CPU flags that decide how fast the network runs; recorded with every CPU measurement.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions natively on this CPU (AVX512-BF16 or AMX).

    Asked of the instruction sets themselves: oneDNN's own bf16 probe also says yes on plain
    AVX-512, where it emulates bf16 several times slower than fp32."""
    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return bool(torch.backends.mkldnn.is_available() and native)
    except (AttributeError, RuntimeError):  # private probes; absent means unknown, so no
        return False


def cpu_facts() -> dict[str, object]:
    """The CPU's model name, its speed-relevant flags, and whether bf16 is native."""
    model, flags = _cpu_model_and_flags()
    return {"model": model, "flags": flags, "native_bf16": cpu_has_native_bf16()}


@lru_cache(maxsize=1)
def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set[str]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux; elsewhere the platform's processor string has to do
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if model and flags:
                break
    return model, [f for f in SPEED_FLAGS if f in flags]


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision `precision` means on `device`; warns when it will run slowly there."""
    if precision not in PRECISIONS:
        raise BadUsage(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        return "fp16" if precision == "auto" else precision
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "int8":
        raise BadUsage("--precision int8 needs --backend openvino on the CPU (or tensorrt on CUDA)")
    if precision == "fp16":
        raise BadUsage("--precision fp16 needs a CUDA device; on the CPU use auto, bf16 or fp32")
    if precision == "bf16" and not cpu_has_native_bf16():
        log.warning("this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 is emulated and slower than fp32")
    return precision


def resolve_channels_last(channels_last: bool | None, device: torch.device, precision: str) -> bool:
    """None (auto): NHWC on the CPU, and on CUDA in fp16/bf16; else as asked."""
    if channels_last is not None:
        return channels_last
    return device.type == "cpu" or precision in ("fp16", "bf16")
