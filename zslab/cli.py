"""The ``zslab`` command.

    zslab train apn --dataset shapes --preset smoke --out runs/x [--set key=value ...] [--resume]
    zslab config show apn --dataset shapes --preset smoke [--set key=value ...] [--json]
    zslab train laat --dataset shapes --encoder minilm|clip:ARCH:PATH|file:PATH --preset smoke|full|paper --out runs/y
    zslab eval RUN_DIR [--attacks fgsm,pgd20,cw,autoattack --eps 8/255] [--localisation]
    zslab notebooks run [NAME ...] --preset smoke|full --out DIR [--timeout S]   (DIR/report.html)
    zslab bench [--quick] [--only fastpaths,has,...]   (the bench/ suite of a source checkout)
"""
from __future__ import annotations

# The subcommands import what they need inside their functions, on purpose: `zslab --help`,
# `zslab config show` and argument errors answer without importing torch (seconds on a CPU).
import argparse
import contextlib
import json
import logging
import sys
import warnings
from pathlib import Path

import zslab
from zslab import ZSLabError


def _train(args) -> int:
    from zslab.config import make_engine_config, resolve

    overrides = list(args.set)
    if args.encoder is not None:
        if args.method != "laat":
            raise ZSLabError(f"--encoder applies to laat only (method '{args.method}' uses class attributes)")
        overrides.append(f"anchors.encoder={args.encoder}")
    # the configuration is checked before torch and the engine are even imported
    cfg = make_engine_config(resolve(args.method, args.dataset, args.preset, overrides=overrides, seed=args.seed))
    from zslab.train import train

    final = train(cfg, args.out, resume=args.resume, allow_config_change=args.allow_config_change)
    print(json.dumps({"run_dir": args.out, "final": final}, indent=2))
    return 0


def _config_show(args) -> int:
    from zslab.config import resolve
    from zslab.config.show import format_table

    overrides = list(args.set)
    if args.encoder is not None:
        overrides.append(f"anchors.encoder={args.encoder}")
    res = resolve(args.method, args.dataset, args.preset, overrides=overrides, seed=args.seed, allow_missing=True)
    if args.json:
        print(json.dumps(res.document(), indent=2))
    else:
        print(format_table(res))
    return 0


def _eval(args) -> int:
    from zslab.train.engine import read_run_config, resolve_device
    from zslab.train.runs import check_robust_args

    # every argument and the run folder are checked before anything is computed or written
    names = None
    if args.attacks:
        names, _ = check_robust_args(args.attacks, eps=args.eps, max_images=args.max_images,
                                     batch_size=args.batch_size)
    elif args.batch_size < 1:
        raise ZSLabError(f"--batch-size must be an integer >= 1, got {args.batch_size}")
    if args.device is not None:
        resolve_device(args.device)
    read_run_config(Path(args.run_dir))
    from zslab.utils.runlock import RunFolderBusyError, run_lock

    lock = run_lock(args.run_dir)  # not while a training (or another eval) writes into the folder
    try:
        lock.__enter__()
    except RunFolderBusyError:
        raise
    except ZSLabError as e:  # a read-only folder (someone else's run): evaluate it; results are printed
        print(f"zslab: evaluating {args.run_dir} without a lock ({e})", file=sys.stderr)
        lock = contextlib.nullcontext()
    try:
        return _eval_locked(args, names)
    finally:
        lock.__exit__(None, None, None)


def _eval_locked(args, names) -> int:
    from zslab.train.runs import ResultsNotSavedError, evaluate_run, robust_zsl_run

    final: dict = {}
    try:
        final.update(evaluate_run(Path(args.run_dir), device=args.device))
        if names:
            final["robust"] = robust_zsl_run(Path(args.run_dir), names, eps=args.eps, max_images=args.max_images,
                                             batch_size=args.batch_size, device=args.device)
    except ResultsNotSavedError as e:  # keep what was computed: print it, then the one-line error
        final.update(e.results)
        print(json.dumps(final, indent=2))
        raise ZSLabError(f"{e} — the results printed above were computed but not saved to metrics.json") from None
    if args.localisation:
        from zslab.train.runs import localisation_run

        final["localisation"] = localisation_run(Path(args.run_dir), batch_size=args.batch_size, device=args.device)
    print(json.dumps(final, indent=2))
    return 0


def _notebooks_run(args) -> int:
    from zslab.report import parse_parameters, run_notebooks

    rep = run_notebooks(args.names, args.out, preset=args.preset, notebooks_dir=args.notebooks_dir,
                        timeout=args.timeout, kernel_name=args.kernel, progress=not args.no_progress,
                        extra_parameters=parse_parameters(args.param))
    print(json.dumps({"report": rep["html"], "ok": rep["ok"], "failed": rep["failed"],
                      "total_wall_seconds": round(rep["total_wall_seconds"], 1)}, indent=2))
    return 1 if rep["failed"] else 0


def _bench(argv: list[str]) -> int:
    """Run the benchmark suite ``bench/`` (``python -m bench``) in this process: it lives next to
    the ``zslab`` package in a source checkout (``pip install -e .``), not in installed wheels."""
    root = Path(zslab.__file__).resolve().parents[1]
    if not (root / "bench" / "__main__.py").is_file():
        raise ZSLabError(f"zslab bench needs the source checkout's bench/ folder next to the zslab package, but "
                         f"{root / 'bench'} does not exist (a non-editable install); clone the repository and "
                         f"run 'python -m bench' from its root, or install it with 'pip install -e .'")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bench.__main__ import main as bench_main

    bench_main(list(argv))
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
    t.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: continue even though the config differs from the stored one (the "
                        "difference is printed and the new config is stored)")
    t.add_argument("--encoder", default=None, metavar="SPEC",
                   help="laat: text encoder for the class anchors: minilm (offline default), clip:ARCH:PATH "
                        "or file:PATH (precomputed .npy)")
    t.set_defaults(func=_train)

    c = sub.add_parser("config", help="show the resolved configuration of a run and where each value comes from")
    ca = c.add_subparsers(dest="action", required=True)
    cs = ca.add_parser("show", help="print the resolved config: defaults -> method -> dataset -> preset -> --set")
    cs.add_argument("method", help="training method (apn, has, laat)")
    cs.add_argument("--dataset", default="shapes", help="dataset name (default: shapes)")
    cs.add_argument("--preset", default="smoke", help="smoke, full or paper")
    cs.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")
    cs.add_argument("--seed", type=int, default=None, help="training seed")
    cs.add_argument("--encoder", default=None, metavar="SPEC", help="laat: anchors.encoder")
    cs.add_argument("--json", action="store_true", help="print the JSON document a run folder's config.json holds")
    cs.set_defaults(func=_config_show)

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

    nbp = sub.add_parser("notebooks", help="batch-run the notebooks with papermill and write DIR/report.html")
    nba = nbp.add_subparsers(dest="action", required=True)
    r = nba.add_parser("run", help="run notebooks (default: all of notebooks/) and write DIR/report.html + report.json")
    r.add_argument("names", nargs="*", metavar="NAME",
                   help="notebook names (e.g. 00_quickstart) or .ipynb paths; default: every notebook")
    r.add_argument("--preset", default="smoke", help="injected as the notebooks' `preset` parameter (smoke | full)")
    r.add_argument("--out", required=True, help="output folder: DIR/<name>/ per notebook, DIR/report.html")
    r.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds one cell may run before the notebook counts as failed (default: no limit)")
    r.add_argument("--notebooks-dir", default=None, help="folder of the notebooks (default: the repository's notebooks/)")
    r.add_argument("--kernel", default=None, help="Jupyter kernel name (default: this Python interpreter)")
    r.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="inject another parameter (a Python literal, else a string) into the notebooks that "
                        "declare it, e.g. -p seeds=[0,1,2] -p cache_dir=/data/runs")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_notebooks_run)

    sub.add_parser("bench", help="run the benchmark suite (python -m bench; see zslab bench --help)",
                   add_help=False)  # main() hands every argument after 'bench' to bench/__main__.py
    return p


def _setup_logging() -> None:
    """zslab's own notices (``logging.getLogger("zslab")``: automatic choices such as ``eval.n_way
    auto``) go to stderr as ``zslab: ...`` lines; warnings (e.g. the automatic validation hold-out)
    are shown once."""
    class _Stderr(logging.Handler):  # the current sys.stderr at each message (pytest, notebooks swap it)
        def emit(self, record):
            print(self.format(record), file=sys.stderr)

    log = logging.getLogger("zslab")
    if not any(isinstance(h, logging.Handler) and type(h).__name__ == "_Stderr" for h in log.handlers):
        h = _Stderr()
        h.setFormatter(logging.Formatter("zslab: %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"zslab: {category.__name__}: {message}", file=sys.stderr)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        try:
            return _bench(argv[1:])
        except ZSLabError as e:
            print(f"zslab: error: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        return args.func(args)
    except ZSLabError as e:
        print(f"zslab: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder, a vanished file: one line, no traceback
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"zslab: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zslab: interrupted; resume with --resume (the last complete epoch is kept)", file=sys.stderr)
        return 130
