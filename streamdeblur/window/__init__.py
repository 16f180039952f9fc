"""A windowed model's input: each frame's window of neighbours, aligned (alignment.py), fused
(fusion.py) and assembled (assembly.py), with what a stream computes once per frame (memo.py)."""
