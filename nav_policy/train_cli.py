"""`nav-policy train` and `nav-policy export`: the top of the layers, since one command trains
and exports every kind (rl and ebm in training/ and export/, dpp in deception/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train a policy (writes a resumable run directory)",
                       description="Train a local planner (local: SB3 PPO/SAC; ebm: the "
                       "energy-based planner from expert demonstrations) or the deception GNN "
                       "(dpp). The run directory is printed at the start and the end; Ctrl-C "
                       "saves a checkpoint and --resume RUN_DIR continues (with --total-steps, or "
                       "--epochs for ebm: further). A missing --config means the kind's recipe "
                       "config/train_<kind>.yaml; --set KEY=VALUE overrides any value.")
    p.add_argument("kind", choices=["local", "ebm", "dpp"])
    p.add_argument("--config", type=Path, help="training YAML (config/train_<kind>.yaml)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="root of run directories")
    p.add_argument("--dataset", type=Path, help="ebm: reuse this dataset.npz instead of "
                   "collecting one (its dataset.json sidecar is recorded in the run)")
    p.add_argument("--collect-only", action="store_true",
                   help="ebm: collect the demonstrations into RUN/dataset.npz and stop (rl's "
                   "bc_init.dataset takes that file; --resume RUN trains on it later)")
    p.add_argument("--total-steps", type=int,
                   help="local, dpp: environment steps to train to (= --set total_steps=N); PPO "
                        "trains whole rollouts of n_steps x n_envs, so it rounds up (said at the "
                        "start)")
    p.add_argument("--epochs", type=int, help="ebm: epochs to train (= --set train.epochs=N)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, dotted for nested keys, VALUE read as YAML "
                        "(repeatable): --set eval.every_steps=512 --set env.backend=pybullet")
    p.add_argument("--seeds", metavar="LIST", help="local: one run per seed (0,1,2 or 0-3) and a "
                   "summary picking the best seed on the selection split; --resume SWEEP_DIR "
                   "continues them")
    p.add_argument("--ray", metavar="ADDRESS", help="local --seeds: run the seeds on Ray "
                   "('local' starts an instance here, 'auto' joins the running cluster, or a "
                   "cluster address); default: one after another in this process")
    p.set_defaults(func=run_train)

    e = sub.add_parser("export", help="export a run to ONNX (with parity check)",
                       description="Export a run directory's checkpoint to one ONNX file with "
                       "its metadata and a model card, after checking the ONNX graph against "
                       "the torch policy on sample observations.")
    e.add_argument("run_dir", type=Path, help="run directory written by `nav-policy train`")
    e.add_argument("--out", type=Path, required=True, help="the .onnx file to write, e.g. "
                   "models/NAME.onnx (not a folder)")
    e.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="best held-out checkpoint, or the last one (best falls back to last, "
                        "saying so, when the run has none yet)")
    e.add_argument("--parity-samples", type=int, default=1000,
                   help="observations the ONNX graph is checked on")
    e.add_argument("--steps", type=int, help="ebm: default gradient steps (config inference.steps)")
    e.add_argument("--max-steps", type=int, help="ebm: iterations held in the graph, run where "
                   "the energy is high (config inference.max_steps); each costs compute per call")
    e.set_defaults(func=run_export)


def run_train(args: argparse.Namespace) -> int:
    from nav_policy.errors import ConfigError
    from nav_policy.training.config import parse_set

    if args.kind == "ebm" and args.total_steps is not None:
        raise ConfigError("ebm trains in epochs, not environment steps: use --epochs N")
    if args.kind != "ebm" and args.epochs is not None:
        raise ConfigError(f"--epochs applies to ebm runs; {args.kind} trains to --total-steps N")
    overrides = parse_set(args.set)
    if args.total_steps is not None:
        overrides["total_steps"] = args.total_steps
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    if args.collect_only and args.kind != "ebm":
        raise ConfigError(f"--collect-only applies to ebm runs (their demonstrations), not {args.kind}")
    if args.kind == "dpp":
        from nav_policy.deception.train import train_dpp

        run = train_dpp(args.config, args.resume, args.runs, overrides or None)
    elif args.kind == "ebm":
        from nav_policy.training.ebm_train import train_ebm

        ebm_over = dict(overrides)
        if args.dataset:
            ebm_over["data.dataset"] = str(args.dataset)
        from nav_policy.export.ebm_export import export_ebm_run

        def export_driver(run_dir: Path, onnx: Path) -> None:
            export_ebm_run(run_dir, onnx, checkpoint="last", parity_samples=200)

        run = train_ebm(args.config, args.resume, args.runs, ebm_over or None,
                        collect_only=args.collect_only, export_driver=export_driver)
    elif args.kind == "local" and (args.seeds or (args.resume
                                                   and (args.resume / "sweep.json").exists())):
        from nav_policy.training.sweep import parse_seeds, train_seeds

        if args.resume and args.seeds:
            raise ConfigError("--resume SWEEP_DIR takes its seeds from the sweep; drop --seeds")
        seeds = parse_seeds(args.seeds) if args.seeds else None
        run = train_seeds(args.config, seeds, args.ray, args.runs, overrides or None, args.resume)
    elif args.kind == "local":
        from nav_policy.training.local_rl import train_local
        from nav_policy.training.rundir import TrainingInterrupted

        if args.ray:
            raise ConfigError("--ray applies to train local --seeds LIST")
        try:
            run = train_local(args.config, args.resume, args.runs, overrides or None)
        except TrainingInterrupted as exc:
            print(f"run directory: {exc.run}", file=sys.stderr)
            return 130
    else:
        raise ConfigError(f"unknown training kind {args.kind!r} (available: local, ebm, dpp)")
    print(f"run directory: {run}", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from nav_policy.errors import ConfigError
    from nav_policy.paths import output_file_problem
    from nav_policy.training.rundir import read_meta

    if not args.run_dir.is_dir():
        raise ConfigError(f"{args.run_dir} is not a run directory (" + (
            "a file; give the folder `nav-policy train` wrote" if args.run_dir.exists()
            else "it does not exist") + ")")
    problem = output_file_problem(args.out)
    if problem:
        raise ConfigError(f"--out: {problem}")
    kind = read_meta(args.run_dir).get("kind")
    if kind != "ebm" and (args.steps is not None or args.max_steps is not None):
        raise ConfigError(f"--steps/--max-steps apply to ebm runs; {args.run_dir} is {kind!r}")
    if kind == "ebm":
        from nav_policy.export.ebm_export import export_ebm_run

        report = export_ebm_run(args.run_dir, args.out, checkpoint=args.checkpoint,
                                parity_samples=args.parity_samples, steps=args.steps,
                                max_steps=args.max_steps)
    elif kind == "dpp":
        from nav_policy.deception.export import export_run as export_dpp

        report = export_dpp(args.run_dir, args.out, checkpoint=args.checkpoint)
    else:
        from nav_policy.export.onnx_export import export_run

        report = export_run(args.run_dir, args.out, checkpoint=args.checkpoint,
                            parity_samples=args.parity_samples)
    print(f"wrote {args.out} (parity max abs diff {report['parity_max_abs_diff']:.2e} on "
          f"{report['parity_samples']} observations)", file=sys.stderr)
    return 0
