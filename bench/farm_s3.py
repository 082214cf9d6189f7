"""Build a config on a multi-node Ray cluster into an S3-compatible bucket, all on this machine, and
compare the bucket's QA files (and labels) with a build of the same config into a folder.

The bucket is moto's S3 server mode on 127.0.0.1 (a stand-in for S3, which this machine cannot
reach; the client side is the real s3fs). The cluster is Ray's ``cluster_utils.Cluster``: a head
that renders nothing and ``--workers`` worker nodes, each its own raylet. Every node reaches the
bucket through ``AWS_ENDPOINT_URL``, as farm nodes reach a real object store.

    python bench/farm_s3.py --config manifests/default.yaml --compare out/default

prints one line per compared file and exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "manifests" / "default.yaml")
    ap.add_argument("--compare", type=Path, default=None, help="a build of the same config into a folder")
    ap.add_argument("--download", type=Path, default=None,
                    help="also copy the bucket's labels, QA files and clip indexes into this folder")
    ap.add_argument("--workers", type=int, default=2, help="Ray worker nodes (default: %(default)s)")
    ap.add_argument("--cpus-per-node", type=int, default=2, help="CPUs each worker node offers (default: %(default)s)")
    args = ap.parse_args()

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    root = Path(tempfile.mkdtemp(prefix="mmviad-s3-"))
    home = root / "home"
    home.mkdir()
    (home / "ray_bootstrap_config.yaml").write_text("provider: {type: local}\n")
    os.environ.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "RAY_TMPDIR": str(root), "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0",
                       "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)})
    import fsspec
    from ray.cluster_utils import Cluster

    from pipeline.store import Store

    fsspec.filesystem("s3").mkdir("bench")
    url = f"s3://bench/{args.config.stem}"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(args.workers):
        cluster.add_node(num_cpus=args.cpus_per_node)
    cluster.wait_for_nodes()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "build", "--config", str(args.config),
                               "--out", url, "--cache", str(root / "cache")], cwd=ROOT,
                              env={**os.environ, "RAY_ADDRESS": cluster.address})
        print(f"build into {url} on {args.workers} worker node(s): exit {proc.returncode}, "
              f"{time.perf_counter() - t0:.0f} s")
        store = Store(url)
        nodes = set()
        for key in store.listing("renders"):
            if key.endswith("/meta.json"):
                import json

                nodes.add(json.loads(store.read_bytes(key)).get("placement", {}).get("ray_node_id"))
        print(f"jobs published from {len(nodes)} node(s)")
        if args.download:
            for key in store.listing():
                if key.startswith(("qa/", "annotations/")) or key.endswith(".clips.json") or key == "clips.jsonl":
                    store.get_file(key, args.download / key)
            print(f"labels and QA files copied to {args.download}")
        if args.compare is None:
            return proc.returncode
        bad = 0
        ref = args.compare
        files = sorted(p for pat in ("qa/*/*.jsonl", "annotations/*.json", "clips/*.clips.json", "clips.jsonl")
                       for p in ref.glob(pat))
        for p in files:
            key = p.relative_to(ref).as_posix()
            theirs = hashlib.sha256(p.read_bytes()).hexdigest()
            ours = hashlib.sha256(store.read_bytes(key)).hexdigest() if store.exists(key) else "missing"
            same = ours == theirs
            bad += not same
            print(f"{'same' if same else 'DIFFERENT'}  {key}")
        print(f"{len(files) - bad}/{len(files)} files byte-identical")
        return 1 if bad or proc.returncode else 0
    finally:
        cluster.shutdown()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
