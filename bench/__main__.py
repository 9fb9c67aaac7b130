"""The benchmark suite: ``python -m bench`` runs every benchmark and prints one JSON document.

    python -m bench            # all benchmarks (several minutes on a 2-core CPU)
    python -m bench --quick    # fewer repetitions
    python -m bench --only laat,memory

Every figure is a ratio measured side by side in one run (GUIDE §8):

* ``attacks``: zslab PGD-10 ÷ torchattacks PGD-10 (goal ≤ 1.0), PGD-k ÷ (k × forward+backward)
  (goal ≤ 1.1), AutoAttack ÷ torchattacks' (needs the dev-only ``torchattacks``);
* ``has``: HAS epoch ÷ APN epoch against T+2 (goal ≤ 1.1 × floor);
* ``laat``: LAAT epoch ÷ clean epoch against T+2 (goal ≤ 1.1 × floor);
* ``anchors``: closed-form expansion of 1000 × 768 anchors (goal ≪ 50 ms) and its speed-up over
  the explicit rotation;
* ``ddp``: 2-process gloo DDP throughput ÷ 1 process (report, no goal);
* ``memory``: peak memory of adversarial ÷ clean training;
* ``fastpaths``: training time with each engine fast path (channels_last, bf16 autocast on the
  CPU, torch.compile, DataLoader workers, shapes rendered on the fly) on ÷ off.

``zslab bench [same arguments]`` runs this from a source checkout.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUITE = ("attacks", "has", "laat", "anchors", "ddp", "memory", "fastpaths")


def _run(name: str, quick: bool) -> dict:
    if name == "attacks":
        try:
            import torchattacks  # noqa: F401
        except ImportError:
            return {"skipped": "needs the dev-only peer torchattacks (pip install --no-deps torchattacks==3.5.1)"}
        from bench.attacks import main
        return main(["--quick"] if quick else [])
    if name == "has":
        from bench.has import main
        return main(["--reps", "1" if quick else "3"])
    if name == "laat":
        from bench.laat import main
        return main(["--reps", "1" if quick else "3"])
    if name == "anchors":
        from bench.anchors import main
        return main(["--quick"] if quick else [])
    if name == "ddp":
        from bench.ddp import main
        return main(["--epochs", "2" if quick else "3"])
    if name == "memory":
        from bench.memory import main
        return main([])
    if name == "fastpaths":
        from bench.fastpaths import main
        return main(["--quick"] if quick else [])
    raise SystemExit(f"unknown benchmark '{name}'; available: {', '.join(SUITE)}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench", description="zslab benchmark suite (prints one JSON)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(SUITE), help=f"comma-separated subset of {','.join(SUITE)}")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in names if n not in SUITE]
    if bad:
        raise SystemExit(f"unknown benchmark(s) {bad}; available: {', '.join(SUITE)}")
    results = {}
    for name in names:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(io.StringIO()):  # each benchmark prints its own JSON; keep one document
            res = _run(name, args.quick)
        results[name] = res
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
