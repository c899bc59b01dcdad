"""Training env steps/s of IPPO and MAPPO on batched mpe/simple_spread N=3 with JaxMARL's IPPO
hyper-parameters (rollout 128, 4 epochs, 4 minibatches; its ``baselines/IPPO`` MPE config), for
E = 16 and 512, eager and ``compile=true``, torch threads 1 and 2: the numbers to hold against
JaxMARL's fully compiled pipeline on the same CPU (its measured rates are in the issue and in
docs/results.md#training-throughput-against-jaxmarl).

Each cell is an ordinary ``train()`` run of ``--iterations`` iterations; its rate is the median of
``steps_per_s`` over the iterations after the first two (the first pays torch.compile's compilation,
the second any recompilation), its wall-clock to the end includes them; but torch.compile caches what
it compiled (in this process and on disk), so only a cold first cell pays the full ~20 s: measure
that in a fresh process with an empty ``TORCHINDUCTOR_CACHE_DIR``. Cells are interleaved per repeat
and the median over repeats reported. Nothing else should run on the machine meanwhile.

    .venv/bin/python benchmarks/training_throughput.py [--envs 16,512] [--algos ippo,mappo]
        [--threads 1,2] [--compile no,yes] [--iterations 12] [--repeats 3]

Results: ``benchmarks/results/training_throughput.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from marl.config import build_config  # noqa: E402
from marl.trainer import train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
JAXMARL_HYPERPARAMETERS = {"rollout_len": 128, "epochs": 4, "minibatches": 4}
# the issue's measurement of JaxMARL 0.2.0's own IPPO (jax 0.10 CPU) on this 2-core machine, and its targets
JAXMARL_RATE = {16: 43_700}
TARGETS = {16: 20_000, 512: 40_000}


def cell(algo: str, num_envs: int, threads: int, compile_: bool, iterations: int, seed: int,
         device: str = "cpu") -> dict:
    """One short training run: the median steady-state rate, collect/update seconds per iteration and
    the whole run's wall-clock (compilation included)."""
    with tempfile.TemporaryDirectory(prefix="bench-train-tp-") as tmp:
        cfg = build_config({
            "scenario": "mpe/simple_spread", "backend": "batched", "algo": {"name": algo, **JAXMARL_HYPERPARAMETERS},
            "num_envs": num_envs, "threads": threads, "compile": compile_, "seed": seed, "device": device,
            "total_steps": num_envs * JAXMARL_HYPERPARAMETERS["rollout_len"] * iterations, "progress": False,
            "out": tmp, "checkpoint_every": 10**12, "eval_every": 0, "eval_episodes": 1,
        })
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            train(cfg)
        with open(Path(tmp) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    wall = float(rows[-1]["wall_time_s"])
    steady = rows[2:] or rows  # the first two iterations pay compilation and recompilation
    med = lambda key: statistics.median(float(r[key]) for r in steady)  # noqa: E731
    return {"steps_per_s": med("steps_per_s"), "collect_s": med("collect_s"), "update_s": med("update_s"),
            "run_wall_s": wall, "process_s": time.perf_counter() - start, "env_steps": int(rows[-1]["env_steps"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", default="16,512")
    p.add_argument("--algos", default="ippo,mappo")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--compile", default="no,yes")
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--name", default="training_throughput")
    args = p.parse_args()
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    envs, algos = [int(x) for x in split(args.envs)], split(args.algos)
    threads, compiles = [int(x) for x in split(args.threads)], [x == "yes" for x in split(args.compile)]
    keys = [(a, e, th, c) for a in algos for e in envs for th in threads for c in compiles]
    samples: dict = {k: [] for k in keys}
    load_before, start = os.getloadavg()[0], time.perf_counter()
    for r in range(args.repeats):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            samples[k].append(cell(*k, args.iterations, seed=r))
            s = samples[k][-1]
            print(f"  repeat {r + 1}/{args.repeats} {k[0]} E={k[1]} threads={k[2]} compile={k[3]}: "
                  f"{s['steps_per_s']:,.0f} steps/s (run {s['run_wall_s']:.1f} s)", file=sys.stderr)
    med = lambda k, key: statistics.median(s[key] for s in samples[k])  # noqa: E731
    lines = [f"## Training throughput with JaxMARL's IPPO hyper-parameters (rollout 128, 4 epochs, 4 minibatches), "
             f"batched mpe/simple_spread N=3, median of {args.repeats}", "",
             "| algo | E | torch threads | compile | training steps/s | collect s / iter | update s / iter | "
             f"run of {args.iterations} iterations (s, compile cache warm) | target | JaxMARL IPPO |",
             "|---|---:|---:|:---:|---:|---:|---:|---:|---:|---:|"]
    table = {}
    for k in keys:
        a, e, th, c = k
        row = {key: med(k, key) for key in ("steps_per_s", "collect_s", "update_s", "run_wall_s")}
        table[f"{a},E={e},threads={th},compile={c}"] = {"algo": a, "envs": e, "threads": th, "compile": c, **row,
                                                          "samples": samples[k]}
        target = TARGETS.get(e)
        verdict = "-" if target is None else f"{target:,} {'PASS' if row['steps_per_s'] >= target else 'FAIL'}"
        jax = f"{JAXMARL_RATE[e]:,}" if e in JAXMARL_RATE else "-"
        lines.append(f"| {a} | {e} | {th} | {'yes' if c else 'no'} | {row['steps_per_s']:,.0f} | "
                     f"{row['collect_s']:.3f} | {row['update_s']:.3f} | {row['run_wall_s']:.1f} | {verdict} | {jax} |")
    lines += ["", "command: `.venv/bin/python benchmarks/training_throughput.py "
              f"--envs {args.envs} --algos {args.algos} --threads {args.threads} --compile {args.compile} "
              f"--iterations {args.iterations} --repeats {args.repeats}`; {os.cpu_count()} CPUs, "
              f"1-min load average {load_before:.1f} before / "
              f"{os.getloadavg()[0]:.1f} after, {time.perf_counter() - start:.0f} s in all. JaxMARL IPPO: the issue's "
              "measurement of JaxMARL 0.2.0 (jax 0.10 CPU) running its own IPPO on MPE_simple_spread_v3 on this "
              "machine with these hyper-parameters at E=16.", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines))
    (RESULTS / f"{args.name}.json").write_text(json.dumps(table, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
