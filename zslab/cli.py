"""The ``zslab`` command.

    zslab train apn --dataset shapes --preset smoke --out runs/x [--set key=value ...] [--resume]
    zslab train laat --dataset shapes --encoder minilm|clip:ARCH:PATH|file:PATH --preset smoke|full|paper --out runs/y
    zslab eval RUN_DIR [--attacks fgsm,pgd20,cw,autoattack --eps 8/255] [--localisation]
"""
from __future__ import annotations

import argparse
import json
import sys

from zslab import ZSLabError


def _train(args) -> int:
    from zslab.train import make_config, train

    overrides = list(args.set)
    if args.encoder is not None:
        if args.method != "laat":
            raise ZSLabError(f"--encoder applies to laat only (method '{args.method}' uses class attributes)")
        overrides.append(f"encoder={args.encoder}")
    cfg = make_config(args.method, preset=args.preset, dataset=args.dataset, overrides=overrides, seed=args.seed)
    final = train(cfg, args.out, resume=args.resume)
    print(json.dumps({"run_dir": args.out, "final": final}, indent=2))
    return 0


def _eval(args) -> int:
    from pathlib import Path

    from zslab.eval.runs import evaluate_run, robust_zsl_run

    final = evaluate_run(Path(args.run_dir), device=args.device)
    if args.attacks:
        names = [a.strip() for a in args.attacks.split(",") if a.strip()]
        final["robust"] = robust_zsl_run(Path(args.run_dir), names, eps=args.eps, max_images=args.max_images,
                                         batch_size=args.batch_size, device=args.device)
    if args.localisation:
        from zslab.eval.localisation import localisation_run

        final["localisation"] = localisation_run(Path(args.run_dir), batch_size=args.batch_size, device=args.device)
    print(json.dumps(final, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zslab", description="Zero-shot learning and adversarial training (HAS, LAAT).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model into a run directory")
    t.add_argument("method", help="training method (apn, has, laat)")
    t.add_argument("--dataset", default="shapes", help="dataset name (default: shapes, the embedded default)")
    t.add_argument("--preset", default="smoke", help="smoke (< 1 min CPU), full, or paper (cub/awa2/sun)")
    t.add_argument("--out", required=True, help="run directory (config.json, metrics.json, checkpoints)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set epochs=5 --set data.image_size=64")
    t.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    t.add_argument("--encoder", default=None, metavar="SPEC",
                   help="laat: text encoder for the class anchors: minilm (offline default), clip:ARCH:PATH "
                        "or file:PATH (precomputed .npy)")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="(re-)evaluate a run's selected checkpoint; updates metrics.json")
    e.add_argument("run_dir")
    e.add_argument("--device", default=None, help="auto, cpu or cuda (default: the run's)")
    e.add_argument("--attacks", default="", metavar="LIST",
                   help="comma-separated attacks for zero-shot robustness, e.g. fgsm,pgd20,cw,autoattack")
    e.add_argument("--eps", default="8/255", help="L-inf budget in [0,1] pixel units (default 8/255)")
    e.add_argument("--max-images", type=int, default=None,
                   help="class-balanced subset of unseen test images for the attacks (default: all)")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--localisation", action="store_true",
                   help="share of each attribute's attention inside its part mask (shapes only), into "
                        "metrics.json final['localisation']")
    e.set_defaults(func=_eval)

    from zslab.cli_anchors import add_anchors_parser

    add_anchors_parser(sub)  # zslab anchors encode|expand|stats|consistency
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZSLabError as e:
        print(f"zslab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zslab: interrupted; resume with --resume (the last complete epoch is kept)", file=sys.stderr)
        return 130
