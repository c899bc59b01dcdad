"""MAPPO vs HAPPO, with per-agent networks (sharing=none) and with learnable masks (sharing=masks),
on mpe/simple_spread (N=3) and the two role scenarios, simple_reference and simple_speaker_listener.

Each (scenario, algo, sharing, seed) is an ordinary training run (``python -m marl.cli train``) in a
subprocess, ``--parallel`` at a time, in ``OUT/<scenario>-<algo>-<sharing>-s<seed>``; a finished run
is skipped and an interrupted one resumed, so the benchmark can be stopped and restarted. Reports
each group's final greedy return, mean ± 95% Student-t CI over seeds, and for simple_spread the
normalised score (random -26.98 = 0, heuristic -9.15 = 1), with a sample-efficiency plot per scenario.

    .venv/bin/python benchmarks/happo.py [--scenarios mpe/simple_spread,...] [--seeds 0,1,2]
        [--total-steps 1000000] [--role-steps 1000000] [--sharing none,masks] [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._runs import curve, mean_ci95, run_parallel, summary  # noqa: E402
from benchmarks.spread_heuristic import HEURISTIC_RETURN, normalised_score  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPREAD = "mpe/simple_spread"
ROLE_SCENARIOS = ("mpe/simple_reference", "mpe/simple_speaker_listener")


def train_args(scenario: str, algo: str, sharing: str, seed: int, total: int, eval_episodes: int) -> list[str]:
    extra = ["n_agents=3", "max_cycles=25"] if scenario == SPREAD else []
    return [f"scenario={scenario}", f"algo={algo}", f"sharing={sharing}", f"seed={seed}", f"total_steps={total}",
            *extra, "continuous_actions=false", f"eval_every={max(total // 10, 1)}",
            f"eval_episodes={eval_episodes}", "backend=auto"]


def plot(groups: dict, path: Path, scenario: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for (algo, sharing), dirs in groups.items():
        curves = [curve(d, "eval_return_mean") for d in dirs]
        curves = [c for c in curves if c[0]]
        if not curves:
            continue
        n = min(len(c[0]) for c in curves)
        x = np.array(curves[0][0][:n])
        y = np.array([c[1][:n] for c in curves])
        style = "-" if algo == "happo" else "--"
        line, = ax.plot(x, y.mean(0), style, lw=1.6, label=f"{algo.upper()} sharing={sharing} ({len(curves)} seeds)")
        ax.fill_between(x, y.min(0), y.max(0), color=line.get_color(), alpha=0.15)
    if scenario == SPREAD:
        ax.axhline(HEURISTIC_RETURN, ls=":", lw=1, color="tab:green", label=f"heuristic ({HEURISTIC_RETURN})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy eval return (mean over agents)")
    ax.set_title(f"{scenario}: MAPPO vs HAPPO (mean, band = min..max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default=",".join((SPREAD, *ROLE_SCENARIOS)))
    p.add_argument("--algos", default="mappo,happo")
    p.add_argument("--sharing", default="none,masks")
    p.add_argument("--role-sharing", default=None, help="sharing schemes on the role scenarios (default: --sharing)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--total-steps", type=int, default=1_000_000, help="env steps per run on simple_spread")
    p.add_argument("--role-steps", type=int, default=None, help="env steps per run on the role scenarios")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--out", default="runs/bench-happo")
    args = p.parse_args(argv)
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    scen, algos, seeds = split(args.scenarios), split(args.algos), [int(s) for s in split(args.seeds)]
    out = Path(args.out).resolve()
    jobs, keys = [], []
    for sc in scen:
        steps = args.total_steps if sc == SPREAD else (args.role_steps or args.total_steps)
        schemes = split(args.sharing if sc == SPREAD else (args.role_sharing or args.sharing))
        for algo in algos:
            for sh in schemes:
                for seed in seeds:
                    d = out / f"{sc.replace('/', '-')}-{algo}-{sh}-s{seed}"
                    jobs.append((d, train_args(sc, algo, sh, seed, steps, args.eval_episodes)))
                    keys.append((sc, algo, sh, seed, d, steps))
    codes = run_parallel(jobs, max(args.parallel, 1))

    lines, result = [], {"parallel": args.parallel, "eval_episodes": args.eval_episodes, "groups": []}
    for sc in scen:
        rows = [k for k in keys if k[0] == sc]
        steps = rows[0][5]
        lines += [f"### {sc}, {steps:,} env steps per run, {args.eval_episodes} greedy eval episodes", "",
                  "| algo | sharing | seeds | final return, mean ± 95% CI | "
                  + ("normalised score, mean ± 95% CI | " if sc == SPREAD else "") + "wall time per run (min) |",
                  "|---|---|---:|---:|" + ("---:|" if sc == SPREAD else "") + "---:|"]
        groups = {}
        for algo in algos:
            for sh in sorted({k[2] for k in rows}, key=split(args.sharing + "," + (args.role_sharing or "")).index):
                done = [(k, summary(k[4])) for k in rows if k[1] == algo and k[2] == sh]
                groups[(algo, sh)] = [k[4] for k, _ in done]
                ok = [s for _, s in done if s]
                if not ok:
                    lines.append(f"| {algo} | {sh} | 0 | failed (see train.log) | |")
                    continue
                rets = [s["final_eval"]["return_mean"] for s in ok]
                m, ci = mean_ci95(rets)
                wall = max(s["wall_time_s"] for s in ok) / 60
                cell = f"{m:.2f} ± {ci:.2f}"
                row = {"scenario": sc, "algo": algo, "sharing": sh, "seeds": len(ok), "returns": rets,
                       "return_mean": m, "return_ci95": ci, "wall_min_max": wall}
                if sc == SPREAD:
                    sm, sci = mean_ci95([normalised_score(r) for r in rets])
                    row.update(score_mean=sm, score_ci95=sci)
                    cell += f" | {sm:.3f} ± {sci:.3f}"
                lines.append(f"| {algo} | {sh} | {len(ok)} | {cell} | {wall:.1f} |")
                result["groups"].append(row)
        RESULTS.mkdir(parents=True, exist_ok=True)
        png = RESULTS / f"happo_{sc.split('/')[-1]}.png"
        plot(groups, png, sc)
        lines += ["", f"plot: benchmarks/results/{png.name}", ""]
    lines.append(f"{args.parallel} runs at once on this machine; CI: Student-t over seeds")
    text = "\n".join(lines)
    print(text)
    (RESULTS / "happo.md").write_text(text + "\n")
    (RESULTS / "happo.json").write_text(json.dumps(result, indent=2))
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
