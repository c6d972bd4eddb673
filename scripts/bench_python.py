"""Times the Python binding (python/secretc) on a bundle: a process's load
and get_secret per call. Run by scripts/bench.py; prints one JSON line.

    python3 scripts/bench_python.py --library L --bundle B --gnupghome H --admin FPR --slots-file S
"""
import argparse
import json
import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--library", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--gnupghome", required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200_000)
    options = parser.parse_args()
    os.environ["SECRETC_KERNEL_LIBRARY"] = options.library
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import secretc

    loads = []
    kernel = None
    for _ in range(options.loads):
        if kernel:
            kernel.close()
        start = time.perf_counter()
        kernel = secretc.Kernel(bundle=options.bundle, environment="production", trusted_admins=[options.admin],
                                gnupghome=options.gnupghome, fallback_environment={}, protect_process=False)
        loads.append((time.perf_counter() - start) * 1000)
    # The data set's users are u00001…; four lookups in five hit a user's slot.
    users = [f"u{n:05d}" for n in range(1, 20_001)]
    lookups = [(random.choice(("stripe", "shopify", "github")), random.choice(users)) for _ in range(1000)]
    keys = {"stripe": "SECRET_KEY", "shopify": "ADMIN_TOKEN", "github": "TOKEN"}
    found = sum(kernel.get_secret(plugin, keys[plugin], user=user) is not None for plugin, user in lookups)
    batches = []
    get = kernel.get_secret
    for batch in range(options.calls // len(lookups)):
        start = time.perf_counter_ns()
        for plugin, user in lookups:
            get(plugin, keys[plugin], user=user)
        batches.append((time.perf_counter_ns() - start) / len(lookups))
    print(json.dumps({"load_ms": statistics.median(loads), "get_ns": statistics.median(batches), "found": found}))


if __name__ == "__main__":
    main()
