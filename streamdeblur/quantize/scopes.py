"""What stays in fp32 when a network is quantized: the layers int8 costs quality in.

Named from the ONNX export's own record of which module each node came from (the exporter's
`name_scopes`), so the rule reads in the model's terms and survives renumbered node names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamdeblur.models.config import DeepDeblurConfig

_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class Fp32Scope:
    """The ONNX nodes to keep in fp32 and, for the record, the modules they belong to."""

    nodes: tuple[str, ...]
    modules: tuple[str, ...]

    def patterns(self) -> list[str]:
        """NNCF ignored-scope patterns: OpenVINO names an ONNX node's ops after it (a
        convolution with a bias becomes NAME/WithoutBiases and NAME)."""
        return [f"^{name}(/.*)?$" for name in self.nodes]


def _module_of(node: object) -> str:
    """The innermost module a node was exported from ('' for the top level)."""
    props = {p.key: p.value for p in node.metadata_props}  # type: ignore[attr-defined]
    scopes = [s.strip(" '") for s in props.get(_SCOPES_KEY, "").strip("[]").split(",")]
    modules = [s for s in scopes if s and "." in s or s in ("gate",)]
    return modules[-1] if modules else ""


def fp32_scope(onnx_path: Path, cfg: DeepDeblurConfig, finest: str = "ends") -> Fp32Scope:
    """The nodes kept in fp32: the finest scale's first and last convolutions (`finest`
    "ends"; "all": the whole finest scale), every upsampling convolution, the pass-through
    gate, and everything after the finest scale's last convolution (never_softer and the
    gate's blend, whose small differences int8 would round away)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    finest_prefix = "body_models.0.body."
    tail = f"{finest_prefix}{cfg.resblocks[0] + 1}"
    kept, modules, after_tail = [], set(), False
    for node in graph.node:
        module = _module_of(node)
        keep = after_tail or module.startswith(("conv_end_models.", "gate"))
        if module.startswith(finest_prefix):
            keep = keep or finest == "all" or module in (f"{finest_prefix}0", tail)
        if keep:
            kept.append(node.name)
            modules.add(module or "after the network")
        if node.op_type == "Conv" and module == tail:
            after_tail = True
    return Fp32Scope(tuple(kept), tuple(sorted(modules)))


def node_modules(onnx_path: Path) -> dict[str, str]:
    """Each ONNX node's name and the module it was exported from ("" for the top level)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return {node.name: _module_of(node) for node in graph.node}
