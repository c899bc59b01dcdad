"""Parameter sharing benchmark: none / full / full_id / random_masks / masks under MAPPO (or ``--algo``).

``learn``: every (scenario, scheme, seed) is an ordinary training run (``marl train``) in
``OUT/<scenario>-<scheme>-s<seed>``, a few at a time; finished runs are skipped, so the script can be
stopped and restarted. Reports the final greedy return (mean over agents, ``--eval-episodes``
episodes) as mean +- 95% CI over seeds, the wall time and the actor's parameter count, with learning
curves per scenario.

``cost``: time and memory of one PPO update for ``full`` vs ``masks`` (and ``none``, ``masks`` with
row thresholds) at N = 3, 10, 30 agents on simple_spread-shaped data, each in a fresh process so its
peak resident memory is its own.

    .venv/bin/python benchmarks/sharing.py learn [--scenarios mpe/simple_spread,...] [--seeds 0,1,2]
        [--schemes none,full,full_id,random_masks,masks] [--total-steps 500000] [--parallel 2]
    .venv/bin/python benchmarks/sharing.py cost [--agents 3,10,30]

Kaleidoscope's own settings (issue 15): masks vs full vs none under QMIX (the Q-network's sharing)
and under MATD3, where ``--critic-sharing same`` gives the twin critics the same scheme (under masks
they are Kaleidoscope's masked critic ensemble); results in ``results/sharing_<name>.*``:

    .venv/bin/python benchmarks/sharing.py learn --algo qmix --name qmix --scenarios mpe/simple_spread \
        --schemes masks,full,none --total-steps 300000 backend=batched actor.activation=relu lr=0.0005
    .venv/bin/python benchmarks/sharing.py learn --algo matd3 --name matd3 --critic-sharing same \
        --scenarios mpe/simple_spread --schemes masks,full,none --total-steps 300000 backend=batched \
        continuous_actions=true
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._runs import curve, mean_ci95, run_parallel, summary  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SCHEMES = ["none", "full", "full_id", "random_masks", "masks"]
SCHEME_ARGS = {"random_masks": ["sharing.sparsity=0.5"], "masks": ["sharing.diversity=0.5"]}
COLORS = {"none": "tab:gray", "full": "tab:blue", "full_id": "tab:cyan", "random_masks": "tab:orange",
          "masks": "tab:red", "masks_row": "tab:pink"}


# ---- learning -------------------------------------------------------------------------------------


def learn(args) -> None:
    out = Path(args.out)
    scenarios = args.scenarios.split(",")
    schemes, seeds = args.schemes.split(","), [int(s) for s in args.seeds.split(",")]
    jobs = []
    for sc in scenarios:
        for scheme in schemes:
            for seed in seeds:
                run = out / f"{sc.replace('/', '-')}-{scheme}-s{seed}"
                critic = [f"critic.sharing={scheme}"] if args.critic_sharing == "same" else []
                train_args = [f"scenario={sc}", f"algo={args.algo}", f"seed={seed}", f"total_steps={args.total_steps}",
                              f"sharing={scheme}", f"eval_episodes={args.eval_episodes}",
                              f"sharing.reset_interval={args.total_steps // 5}",
                              *SCHEME_ARGS.get(scheme, []), *critic, *args.extra]
                jobs.append((sc, scheme, seed, run, train_args))
    t0 = time.perf_counter()
    codes = run_parallel([(run, a) for *_, run, a in jobs], args.parallel)
    print(f"all runs done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    rows = []
    for sc, scheme, seed, run, _ in jobs:
        s = summary(run)
        if s is None:
            rows.append({"scenario": sc, "scheme": scheme, "seed": seed, "failed": codes.get(run)})
            continue
        params = s.get("parameters", {}).get("actor", {})
        rows.append({"scenario": sc, "scheme": scheme, "seed": seed, "run_dir": str(run),
                     "final_return": s["final_eval"]["return_mean"], "random_return": s["random_policy"]["return_mean"],
                     "wall_time_s": s["wall_time_s"], "steps_per_s": s["steps_per_s"],
                     "actor_weights": params.get("weights"), "actor_thresholds": params.get("thresholds", 0)})
    RESULTS.mkdir(exist_ok=True)
    stem = f"sharing_{args.name}" if args.name else "sharing"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"algo": args.algo, "critic_sharing": args.critic_sharing,
                                                      "extra": args.extra, "total_steps": args.total_steps,
                                                      "rows": rows}, indent=2))
    critic_text = ", the critic's sharing the same as the actor's" if args.critic_sharing == "same" else ""
    report = [f"# Parameter sharing under {args.algo.upper()} ({args.total_steps:,} env steps, seeds {args.seeds}"
              f"{critic_text}; {' '.join(args.extra) or 'defaults'})", "",
              "Final greedy return (mean over agents, "
              f"{args.eval_episodes} episodes), mean +- 95% CI (Student t) over seeds; wall time per run with "
              f"{args.parallel} runs sharing the machine; actor parameters = network weights (+ mask thresholds).", ""]
    for sc in scenarios:
        report += table(sc, [r for r in rows if r["scenario"] == sc], schemes)
        picture = f"{stem}_{sc.split('/')[-1]}.png"
        plot_curves(sc, [r for r in rows if r["scenario"] == sc and "run_dir" in r], schemes, RESULTS / picture,
                    args.algo)
        report += [f"![{sc}]({picture})", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))


def table(scenario: str, rows: list[dict], schemes: list[str]) -> list[str]:
    lines = [f"## {scenario}", "", "| sharing | final return | per seed | wall time (min) | actor params |",
             "|---|---|---|---|---|"]
    for scheme in schemes:
        done = [r for r in rows if r["scheme"] == scheme and "final_return" in r]
        failed = [r for r in rows if r["scheme"] == scheme and "failed" in r]
        if not done:
            lines.append(f"| {scheme} | no finished run ({len(failed)} failed) | | | |")
            continue
        mean, ci = mean_ci95([r["final_return"] for r in done])
        seeds = ", ".join(f"{r['final_return']:.2f}" for r in done)
        wall = statistics.fmean(r["wall_time_s"] for r in done) / 60
        p = done[0]
        params = f"{p['actor_weights']:,}" + (f" + {p['actor_thresholds']:,} thr." if p["actor_thresholds"] else "")
        lines.append(f"| {scheme} | {mean:.2f} ± {ci:.2f} | {seeds} | {wall:.1f} | {params} |"
                     + (f" ({len(failed)} failed)" if failed else ""))
    random_returns = [r["random_return"] for r in rows if "random_return" in r]
    if random_returns:
        lines += ["", f"Random policy: {statistics.fmean(random_returns):.2f}."]
    return lines + [""]


def plot_curves(scenario: str, rows: list[dict], schemes: list[str], path: Path, algo: str = "mappo") -> None:
    """Training return (smoothed) against env steps: the mean over seeds, with the seeds' range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for scheme in schemes:
        curves = [curve(Path(r["run_dir"])) for r in rows if r["scheme"] == scheme]
        curves = [(np.asarray(x), np.asarray(y)) for x, y in curves if len(x) > 1]
        if not curves:
            continue
        grid = np.linspace(max(c[0][0] for c in curves), min(c[0][-1] for c in curves), 100)
        ys = np.stack([np.interp(grid, x, smooth(y)) for x, y in curves])
        color = COLORS.get(scheme, None)
        ax.plot(grid, ys.mean(0), color=color, lw=1.6, label=f"{scheme} ({len(curves)} seeds)")
        ax.fill_between(grid, ys.min(0), ys.max(0), color=color, alpha=0.15, lw=0)
    ax.set_xlabel("env steps")
    ax.set_ylabel("training episode return (mean over agents)")
    ax.set_title(f"{algo.upper()} on {scenario}: parameter sharing")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def smooth(y, window: int = 10):
    import numpy as np

    y = np.asarray(y, dtype=float)
    if len(y) < window:
        return y
    kernel = np.ones(window) / window
    head = np.cumsum(y[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(y, kernel, mode="valid")])


# ---- cost of an update ----------------------------------------------------------------------------

COST_VARIANTS = {"full": ["sharing=full"], "none": ["sharing=none"], "masks": ["sharing=masks"],
                 "masks_row": ["sharing=masks", "sharing.thresholds=row"]}


def cost_one(variant: str, n_agents: int, repeats: int) -> dict:
    """One (variant, N) in this process: median seconds per PPO update on a random rollout shaped
    like simple_spread's with N agents (16 envs x 50 steps; spaces read off a real env)."""
    import torch

    import scenarios
    from envs import VectorEnv
    from marl.algos import EnvInfo, Progress, make_algorithm
    from marl.config import config_from_args
    from marl.rollout import Rollout
    from marl.sharing import parameter_counts

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = config_from_args(["scenario=mpe/simple_spread", f"n_agents={n_agents}", *COST_VARIANTS[variant]])
    env = VectorEnv(scenarios.make(cfg.scenario, **cfg.scenario_args), 1, seed=0)
    info = EnvInfo.from_env(env, cfg.scenario)
    layout = info.layout
    env.close()
    algo = make_algorithm(cfg, info)
    T, E, N = cfg.algo.rollout_len, cfg.num_envs, n_agents
    ro = Rollout(T, E)
    per_agent = lambda dtype=torch.float32: torch.zeros(T, E, N, dtype=dtype)  # noqa: E731
    ro.data.update(obs=torch.randn(T, E, N, layout.obs_dim), state=torch.randn(T, E, info.state_dim),
                   alive=per_agent(torch.bool).fill_(True), starts=torch.zeros(T, E, dtype=torch.bool),
                   logp=per_agent().fill_(-1.6), values=per_agent(), rewards=torch.randn(T, E, N),
                   bootstrap=per_agent(), terminated=per_agent(torch.bool), truncated=per_agent(torch.bool))
    if layout.discrete:
        ro.data["actions"] = torch.randint(0, layout.n_actions, (T, E, N))
    else:
        ro.data["actions"] = torch.randn(T, E, N, layout.action_dim)
    ro.truncated[-1] = True
    ro.final["last_values"] = torch.zeros(E, N)
    ro.carry0 = algo.actor.initial_carry((E, N))
    progress = Progress(0, cfg.total_steps, previous=0)  # no mask reset: that is not part of an update's cost
    timings = []
    for _ in range(repeats + 1):  # the first update warms up allocators and is not counted
        t0 = time.perf_counter()
        algo.update(ro, progress)
        algo.after_iteration(progress)  # the mask statistics, which the old update computed itself
        timings.append(time.perf_counter() - t0)
    counts = parameter_counts(algo.actor)
    critic = parameter_counts(algo.critic)
    stored = sum(counts.values()) + sum(critic.values())
    return {"variant": variant, "n_agents": N, "update_s": statistics.median(timings[1:]),
            "actor_weights": counts["weights"], "actor_thresholds": counts["thresholds"],
            "state_mb": stored * 4 * 4 / 2**20,  # parameters + gradients + two Adam moments, float32
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def cost(args) -> None:
    rows = []
    for n in [int(a) for a in args.agents.split(",")]:
        for variant in args.variants.split(","):
            out = subprocess.run([sys.executable, __file__, "_cost_one", variant, str(n), str(args.repeats)],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"N={n:3d} {variant:10s} update {row['update_s'] * 1000:8.1f} ms  actor weights "
                  f"{row['actor_weights']:>8,} thresholds {row['actor_thresholds']:>9,}  "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB", file=sys.stderr)
    lines = ["# Cost of a PPO update by sharing scheme", "",
             "One MAPPO update (10 epochs, 16 envs x 50 steps, hidden 64) on simple_spread-shaped random data, "
             f"median of {args.repeats}, one thread; each row in a fresh process (peak RSS includes torch itself). "
             "Model state = parameters + gradients + Adam moments of actor and critic.", "",
             "| N | sharing | update (ms) | x full | actor weights | actor thresholds "
             "| model state (MB) | peak RSS (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        full = next(r for r in rows if r["n_agents"] == row["n_agents"] and r["variant"] == "full")
        lines.append(f"| {row['n_agents']} | {row['variant']} | {row['update_s'] * 1000:.0f} | "
                     f"{row['update_s'] / full['update_s']:.2f} | {row['actor_weights']:,} | "
                     f"{row['actor_thresholds']:,} | "
                     f"{row['state_mb']:.1f} | {row['peak_rss_mb']:.0f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sharing_cost.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "sharing_cost.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_cost_one":
        print(json.dumps(cost_one(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("learn")
    p.add_argument("--scenarios", default="mpe/simple_spread,mpe/simple_reference,mpe/simple_speaker_listener")
    p.add_argument("--schemes", default=",".join(SCHEMES))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--total-steps", type=int, default=500_000)
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--out", default=None, help="default runs/bench-sharing[-NAME]")
    p.add_argument("--algo", default="mappo")
    p.add_argument("--critic-sharing", default="default", choices=["default", "same"],
                   help="same: the critic gets the actor's scheme too (MATD3's masked twin critics)")
    p.add_argument("--name", default=None, help="results/sharing_<name>.* (default: results/sharing.*)")
    p.add_argument("extra", nargs="*", help="more key=value options for every run (e.g. backend=batched)")
    c = sub.add_parser("cost")
    c.add_argument("--agents", default="3,10,30")
    c.add_argument("--variants", default="full,none,masks,masks_row")
    c.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.cmd == "learn" and args.out is None:
        args.out = "runs/bench-sharing" + (f"-{args.name}" if args.name else "")
    learn(args) if args.cmd == "learn" else cost(args)


if __name__ == "__main__":
    main()
