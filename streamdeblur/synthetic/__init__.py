"""Synthetic motion blur and the sharp scenes it blurs: used by training, `demo`, `bench`,
`synth` and TensorRT's INT8 calibration alike, so it belongs to none of them."""
