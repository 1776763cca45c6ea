"""Blob store latency: PUT and GET of 64 KB (a recording chunk) and 250 KB (a large chunk or
snapshot) objects, local disk against S3 on the same machine, one client and eight.

The S3 server is Ceph's radosgw started by ``scripts/s3-local`` in a temporary directory
(or the one at INVIGIL_TEST_S3_ENDPOINT with INVIGIL_TEST_S3_ACCESS_KEY/SECRET_KEY). The local
store, measured in the same run, is the baseline: its PUT is a temp file, fsync, rename and a
directory fsync, as the server does.

    python bench/storage.py                # writes the "Blob storage" section of docs/benchmarks.md
    python bench/storage.py --n 50 --no-write
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPT = BENCH.parent / "scripts" / "s3-local"
SIZES = {"64 KB": 64 * 1024, "250 KB": 250 * 1024}
THREADS = 8

sys.path.insert(0, str(BENCH.parent / "src"))
from invigil.core.storage import BlobStore, LocalBlobStore  # noqa: E402
from invigil.core.storage_s3 import S3BlobStore  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def measure(store: BlobStore, size: int, n: int) -> dict[str, float]:
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    payloads = [os.urandom(size) for _ in range(min(n, 20))]
    keys = [f"{prefix}/{i:05d}" for i in range(n)]
    cpu0 = time.thread_time()
    puts = [
        timed(lambda k=k, i=i: store.put(k, payloads[i % len(payloads)]))
        for i, k in enumerate(keys)
    ]
    # Everything a PUT costs this process (signing, hashing, the HTTP exchange) runs in this
    # thread: its CPU time per PUT is what the server's group commit pays per upload.
    put_cpu = (time.thread_time() - cpu0) * 1e6 / n
    cpu0 = time.thread_time()
    gets = [timed(lambda k=k: store.get(k)) for k in keys]
    get_cpu = (time.thread_time() - cpu0) * 1e6 / n
    # Eight clients at once: what the store sustains when many uploads land together.
    many = [f"{prefix}/m{i:05d}" for i in range(n * 2)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda k: store.put(k, payloads[0]), many))
    rate = len(many) / (time.perf_counter() - t0)
    for k in keys + many:
        store.delete(k)
    return {
        "put50": statistics.median(puts),
        "put99": pct(puts, 0.99),
        "put_cpu": put_cpu,
        "get_cpu": get_cpu,
        "get50": statistics.median(gets),
        "get99": pct(gets, 0.99),
        "rate": rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="objects per size and backend")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    s3_dir: Path | None = None
    load0 = os.getloadavg()[0]
    started = time.time()
    try:
        endpoint = os.environ.get("INVIGIL_TEST_S3_ENDPOINT")
        access = os.environ.get("INVIGIL_TEST_S3_ACCESS_KEY")
        secret = os.environ.get("INVIGIL_TEST_S3_SECRET_KEY")
        start_s = None
        if not endpoint:
            s3_dir = work / "s3"
            t0 = time.perf_counter()
            out = subprocess.run(
                [str(SCRIPT), "start", str(s3_dir), str(free_port()), str(free_port())],
                capture_output=True,
                text=True,
                check=True,
            )
            start_s = time.perf_counter() - t0
            env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
            endpoint, access, secret = (
                env["INVIGIL_S3_ENDPOINT"],
                env["INVIGIL_S3_ACCESS_KEY"],
                env["INVIGIL_S3_SECRET_KEY"],
            )
        s3 = S3BlobStore(
            f"bench-{uuid.uuid4().hex[:12]}",
            endpoint=endpoint,
            access_key=access,
            secret_key=secret,
            path_style=True,
        )
        s3.ensure_bucket()
        # The same server through botocore's put_object, as every PUT went before the signed
        # PUT (src/invigil/core/s3_signed.py).
        s3_botocore = S3BlobStore(
            s3.bucket, endpoint=endpoint, access_key=access, secret_key=secret, path_style=True
        )
        s3_botocore._signed = None
        stores: dict[str, BlobStore] = {
            "local disk (baseline)": LocalBlobStore(work / "blobs"),
            "S3: radosgw, one-node Ceph": s3,
            "S3 through botocore's put_object, get_object": s3_botocore,
        }
        rows = []
        for label, size in SIZES.items():
            base = None
            for name, store in stores.items():
                r = measure(store, size, args.n)
                base = base or r
                rows.append(
                    f"| {label} | {name} | {ms(r['put50'])} | {ms(r['put99'])} | "
                    f"{r['put_cpu']:,.0f} | {ms(r['get50'])} | {ms(r['get99'])} | "
                    f"{r['get_cpu']:,.0f} | {r['rate']:.0f} | "
                    f"{r['put50'] / base['put50']:.1f} |"
                )
                print(rows[-1], flush=True)
        s3.client.delete_bucket(Bucket=s3.bucket)
    finally:
        if s3_dir is not None:
            subprocess.run([str(SCRIPT), "stop", str(s3_dir)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)

    load1 = os.getloadavg()[0]
    minutes = (time.time() - started) / 60
    started_note = (
        f" `scripts/s3-local start` took {start_s:.1f} s from nothing." if start_s else ""
    )
    body = (
        f"`python bench/storage.py --n {args.n}` ({minutes:.1f} min). One client in this "
        f"process, sequential: {args.n} PUTs of distinct keys, then a GET of each; then "
        f"{THREADS} threads PUT {args.n * 2} objects at once (objects/s). The local store is "
        "the baseline measured in the same run (temp file, fsync, rename, directory fsync). "
        "The S3 server is Debian's Ceph 16 radosgw (beast frontend, one monitor, one memstore "
        "OSD, `scripts/s3-local`) on the same machine over loopback HTTP; every PUT carries "
        "Content-MD5, which the server checks, and over plain HTTP its signed SHA-256, which "
        "it checks too. µs CPU: this process's CPU time per sequential PUT or GET (signing, "
        "hashing, the HTTP exchange). The store's single PUTs and whole-object GETs are signed "
        "and sent without botocore's request pipeline (`src/invigil/core/s3_signed.py`); the "
        "last row sends them through `put_object` and `get_object` as before, in the same run."
        f"{started_note}\n\n"
        "| object | store | PUT p50 ms | PUT p99 ms | PUT µs CPU | GET p50 ms | GET p99 ms | "
        "GET µs CPU | "
        f"PUT/s, {THREADS} threads | PUT p50 × baseline |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Load average of the machine (1 min) at the start {load0:.1f}, at the end {load1:.1f} "
        f"(`nproc` = {os.cpu_count()}); other work shared the machine, so absolute times are "
        "pessimistic: compare the two stores within the run. memstore keeps objects in memory, "
        "so the S3 figures leave out a disk write that a production OSD makes (and replicates); "
        "the local GETs are served from the page cache."
    )
    print(body)
    if not args.no_write:
        sys.path.insert(0, str(BENCH))
        from report import write_section

        write_section("Blob storage: local disk and S3", body)


if __name__ == "__main__":
    main()
