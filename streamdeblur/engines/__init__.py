"""ONNX export and TensorRT engines: made once per weights, shapes and precision, cached, reused.

`artifacts.py` finds or makes them; `store.py` keeps them with their sidecars; `onnx_export.py`,
`tensorrt_build.py` and `calibration.py` make them; `shapes.py` names the optimisation profiles.
"""
