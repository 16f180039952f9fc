import av, numpy as np, time
out = av.open("rtsp://127.0.0.1:18555/out", "w", format="rtsp", options={"rtsp_transport": "udp"}, timeout=5)
s = out.add_stream("libx264", rate=25)
s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
s.codec_context.options = {"tune": "zerolatency", "preset": "veryfast"}
s.codec_context.gop_size = 25
from fractions import Fraction
s.codec_context.time_base = Fraction(1, 25)
t0 = time.monotonic()
for i in range(150):
    f = av.VideoFrame.from_ndarray(np.full((240, 320, 3), i % 255, np.uint8), format="rgb24").reformat(format="yuv420p")
    f.pts = i; f.time_base = Fraction(1, 25)
    for p in s.encode(f): out.mux(p)
    time.sleep(max(0, t0 + i / 25 - time.monotonic()))
for p in s.encode(None): out.mux(p)
out.close()
print("done")
