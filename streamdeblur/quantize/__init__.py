"""`streamdeblur quantize`: a shipped model's int8 OpenVINO IR, calibrated on synthetic blur.

`scopes.py` names what stays in fp32; `calibration.py` renders the calibration inputs;
`build.py` quantizes with NNCF, checks parity to fp32 and writes the IR and its record
(engines/openvino_int8.py says where); `held_out.py` scores int8 against fp32 on a held-out set.
"""
