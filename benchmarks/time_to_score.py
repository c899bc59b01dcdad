"""Wall-clock and env steps to a good policy on mpe/simple_spread: the time until a greedy evaluation
first reaches normalised 0.5 / 0.7 / 0.8 (0 = random policy, 1 = the hand-coded heuristic).

Each (setting, N, seed) is an ordinary ``marl train`` run on the batched backend with greedy
evaluations every ``--eval-every`` env steps; ``wall_time_s`` counts training only (evaluations are
not training time). Runs are resumable subprocesses (``benchmarks/_runs.py``), ``--parallel`` at a
time: with 2 at once on 2 cores each run has one core, as a user running one job with threads=1
would not; say so when quoting.

    .venv/bin/python benchmarks/time_to_score.py --settings default,fast --n 3 --seeds 0,1,2
    .venv/bin/python benchmarks/time_to_score.py --settings default --n 4,6 --total-steps 2000000
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._runs import run_parallel  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# per-agent greedy returns of the uniformly random policy and of the hand-coded heuristic (the issue's
# measurements for N=4 and 6; benchmarks/spread_heuristic.py for N=3)
REFERENCE = {3: (-26.98, -9.15), 4: (-31.67, -10.99), 6: (-39.09, -15.10)}
THRESHOLDS = (0.5, 0.7, 0.8)
# candidate settings: name -> marl train overrides (``preset=fast`` is the one chosen from these)
SETTINGS = {
    "default": [],
    "fast": ["preset=fast"],
    "e64-t25-ep5-mb2": ["num_envs=64", "algo.rollout_len=25", "algo.epochs=5", "algo.minibatches=2"],
    "e128-t25-ep4-mb4": ["num_envs=128", "algo.rollout_len=25", "algo.epochs=4", "algo.minibatches=4"],
    "e32-t25-ep10-lr1e-3": ["num_envs=32", "algo.rollout_len=25", "lr=1e-3"],
    "e64-t25-ep10-mb2-lr1e-3": ["num_envs=64", "algo.rollout_len=25", "algo.minibatches=2", "lr=1e-3"],
    "e64-t25-ep10-mb2-lr2e-3": ["num_envs=64", "algo.rollout_len=25", "algo.minibatches=2", "lr=2e-3"],
    "e128-t25-ep10-mb4-lr1e-3": ["num_envs=128", "algo.rollout_len=25", "algo.minibatches=4", "lr=1e-3"],
    "e128-t25-ep10-mb4-lr2e-3": ["num_envs=128", "algo.rollout_len=25", "algo.minibatches=4", "lr=2e-3"],
    "e64-t25-ep10-mb2-lr3e-3": ["num_envs=64", "algo.rollout_len=25", "algo.minibatches=2", "lr=3e-3"],
    "e64-t25-ep5-mb4-lr1e-3": ["num_envs=64", "algo.rollout_len=25", "algo.epochs=5", "algo.minibatches=4",
                               "lr=1e-3"],
    # scaling in N: one change at a time on top of preset=fast
    "fast-id": ["preset=fast", "sharing=full_id"],
    "fast-h128": ["preset=fast", "actor.hidden=128", "critic.hidden=128"],
    "fast-g99": ["preset=fast", "algo.gamma=0.99"],
    "fast-lr7e-4": ["preset=fast", "lr=7e-4"],
    "fast-ent0": ["preset=fast", "algo.ent_coef=0"],
    "fast-ippo": ["preset=fast", "algo=ippo"],
    "fast-relu": ["preset=fast", "actor.activation=relu"],  # the critic takes the actor's activation
    # the critic: at N=6 the centralized critic explains ~15% of the returns' variance (N=3: ~70%)
    "fast-c256": ["preset=fast", "critic.hidden=256"],
    "fast-cln": ["preset=fast", "critic.layer_norm=true"],
    "fast-clr5e-4": ["preset=fast", "critic_lr=5e-4"],
    "fast-c256-ln": ["preset=fast", "critic.hidden=256", "critic.layer_norm=true"],
    "fast-cobs": ["preset=fast", "critic.own_obs=true"],
    "fast-cobs-c256": ["preset=fast", "critic.own_obs=true", "critic.hidden=256"],
    # the policy's signal: at N=6 PPO learns the local collision term and barely the shared distance term
    "fast-ep4": ["preset=fast", "algo.epochs=4"],
    "e512-mb4-lr7e-4": ["num_envs=512", "algo.rollout_len=25", "algo.minibatches=4", "lr=7e-4"],
    "fast-id-ent0": ["preset=fast", "sharing=full_id", "algo.ent_coef=0"],
    "fast-lr7e-4-ln": ["preset=fast", "lr=7e-4", "actor.layer_norm=true", "critic.layer_norm=true"],
    "fast-lr7e-4-none": ["preset=fast", "lr=7e-4", "sharing=none"],
    # the same as fast-lr7e-4, compiled (for long runs: identical up to float32 round-off in the update)
    "fast-lr7e-4-compiled": ["preset=fast", "lr=7e-4", "compile=true"],
    # the actor reads landmarks and other agents as sets pooled by attention (actor.encoder=entities)
    "fast-lr7e-4-entities": ["preset=fast", "lr=7e-4", "actor.encoder=entities", "compile=true"],
    "fast-entities": ["preset=fast", "actor.encoder=entities", "compile=true"],
    "default-entities": ["actor.encoder=entities"],
    # value decomposition (a team Q as a sum / monotone mix of per-agent Qs) with the recipe that learns
    # N=3 (benchmarks/learning.py TUNED): per-agent credit on the shared term is what stalls MAPPO at N=6
    "vdn": ["algo=vdn", "actor.activation=relu", "lr=0.0005", "algo.gamma=0.95"],
    "qmix-ln": ["algo=qmix", "actor.activation=relu", "lr=0.0005", "algo.gamma=0.95", "algo.state_norm=layernorm"],
}


def normalised(ret: float, n: int) -> float:
    rand, heur = REFERENCE[n]
    return (ret - rand) / (heur - rand)


def first_crossings(run: Path, n: int) -> dict:
    with open(run / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval_return_mean") not in (None, "", "nan")]
    out = {"final": normalised(float(rows[-1]["eval_return_mean"]), n) if rows else float("nan")}
    for th in THRESHOLDS:
        hit = next((r for r in rows if normalised(float(r["eval_return_mean"]), n) >= th), None)
        out[f"{th}"] = None if hit is None else {"wall_s": float(hit["wall_time_s"]),
                                                  "env_steps": int(float(hit["env_steps"]))}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", default="default,fast")
    p.add_argument("--n", default="3")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--total-steps", type=int, default=1_000_000)
    p.add_argument("--eval-every", type=int, default=25_000)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--name", default="time_to_score")
    args = p.parse_args()
    settings = args.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; valid: {', '.join(SETTINGS)}")
    ns, seeds = [int(x) for x in args.n.split(",")], [int(x) for x in args.seeds.split(",")]
    folder = RESULTS / args.name
    jobs = []
    for s in settings:
        for n in ns:
            for seed in seeds:
                run = folder / "runs" / f"{s}-n{n}-s{seed}"
                jobs.append(((s, n, seed), run, ["scenario=mpe/simple_spread", f"n_agents={n}", "backend=batched",
                                                 f"seed={seed}", f"total_steps={args.total_steps}",
                                                 f"eval_every={args.eval_every}",
                                                 f"eval_episodes={args.eval_episodes}", *SETTINGS[s]]))
    codes = run_parallel([(run, a) for _, run, a in jobs], args.parallel)
    results: dict = {}
    for (s, n, seed), run, _ in jobs:
        if codes.get(run):
            print(f"{run.name} failed (see its train.log)", file=sys.stderr)
            continue
        results.setdefault(s, {}).setdefault(str(n), {})[str(seed)] = first_crossings(run, n)
    summary_path = folder / "summary.json"
    old = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for s, per_n in results.items():
        old.setdefault(s, {}).update(per_n)
    summary_path.write_text(json.dumps(old, indent=2))
    print(markdown(old, args.total_steps))
    (folder / "report.md").write_text(markdown(old, args.total_steps))


def _median(values: list) -> str:
    hits = [v for v in values if v is not None]
    if len(hits) < len(values):
        return f"{len(values) - len(hits)}/{len(values)} never"
    wall = statistics.median(h["wall_s"] for h in hits)
    return f"{wall:.0f} s / {statistics.median(h['env_steps'] for h in hits) / 1e3:.0f}k"


def markdown(summary: dict, total: int) -> str:
    lines = [f"# Time to score on mpe/simple_spread (batched backend, budget {total:,} env steps)", "",
             "Median over seeds of the training wall-clock / env steps until the first greedy evaluation at or "
             "above each normalised score; final = normalised score of the last evaluation (median).", "",
             "| setting | N | seeds | 0.5 | 0.7 | 0.8 | final |", "|---|---:|---:|---:|---:|---:|---:|"]
    for s, per_n in summary.items():
        for n, per_seed in sorted(per_n.items()):
            runs = list(per_seed.values())
            lines.append(f"| {s} | {n} | {len(runs)} | " + " | ".join(_median([r[f'{t}'] for r in runs])
                                                                        for t in THRESHOLDS)
                         + f" | {statistics.median(r['final'] for r in runs):.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
