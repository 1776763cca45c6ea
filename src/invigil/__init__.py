"""invigil: remote structured interviews with two-camera invigilation."""

import os

# dlib built against OpenBLAS (scripts/build-dlib) runs each face embedding on every core, and
# OpenBLAS's threads spin while they wait: on a loaded server that doubled the CPU an embedding
# costs (docs/benchmarks.md). One thread each; worker processes give the parallelism. OpenBLAS
# reads this once, when it loads, so it is set before anything can import dlib.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
