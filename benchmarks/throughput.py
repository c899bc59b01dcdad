"""Env steps per second on ``mpe/simple_spread`` (N=3): the raw env limit against our collection and
full MAPPO training, for several numbers of envs E. One env step = one step of one env (all agents).

(a) raw: E plain mpe2 ParallelEnvs stepped in a Python loop with pre-generated random actions,
    reset when ``env.agents`` is empty - the physical limit of a single process;
(b) collect: ``VectorEnv`` + actor and critic inference, ``marl.collector.Collector.collect()`` repeatedly;
(c) train: ``marl.trainer.train`` (MAPPO, default hyper-parameters); the median of the ``steps_per_s``
    column of ``metrics.csv`` (collect + update per iteration), the first iteration left out; and the
    same with communication (``comm.graph=complete comm.layer=gat``). Targets: training >= 60% of (a),
    with GAT >= 40%, peak resident memory < 1.5 GB.

Measurements are interleaved (for each repeat, for each E: a, b, c) and the median over repeats is
reported. Single-threaded torch (``torch.set_num_threads(1)``), as the trainer's default.

Batched simulators (``envs/batched``), second part: (d) ``BatchedVectorEnv.step`` with pre-made random
actions (the whole adapter: auto-reset, EnvOutput) for E = 16, 64, 256 and N = 3, 10, 30, 100,
next to (a) at the same N with E=1 (mpe2's rate per env step hardly depends on E); (e) full MAPPO
training on batched simple_spread N=3 for several E and torch thread counts (threads=2 uses both
cores of the target machine), with the share of each iteration spent collecting (env + actor/critic
inference) and updating, in eager mode and with ``compile=true`` (torch.compile of the update's forward
passes and loss). Target: >= 20,000 env steps/s on 2 cores.

JaxMARL side by side, third part: (f) the raw env rate of ``jaxmarl.make("MPE_simple_spread_v3")`` (JaxMARL's
port of the same task) under ``jax.jit(jax.vmap(env.step))``, one call per step with its outputs waited for,
and as ``JAX_SCAN_STEPS`` steps in one ``lax.scan`` (how JaxMARL's own rollouts run), next to (d)'s
``BatchedVectorEnv.step`` on N=3, for E = 16, 512, 4096 and our torch threads 1 and 2; random actions made
beforehand, auto-resets included on both sides (JaxMARL's ``step`` resets finished envs itself), compiled and
warmed up before any clock starts, interleaved per repeat (the order flips every repeat), medians reported, with
the process's CPU seconds per wall second (XLA picks its own CPU threads). jax and jaxmarl are an optional extra,
never a dependency of the package; without them this part prints how to install them and is skipped:

    .venv/bin/python -m pip install -c constraints.txt -e ".[dev,jaxbench]"
    .venv/bin/python benchmarks/throughput.py --skip-pettingzoo --batched-envs ''   # only (f): make bench-jax

Results: ``benchmarks/results/throughput.md`` (a part not measured keeps its previous section there),
``throughput.json`` (a)-(c), ``throughput_batched.json`` (d)-(e), ``throughput_jaxmarl.json`` (f).

    .venv/bin/python benchmarks/throughput.py [--envs 1,8,16,32] [--repeats 3] [--seconds 1.0]
                                              [--batched-envs 16,64,256] [--batched-agents 3,10,30,100]
                                              [--batched-train-envs 16,64,256,512]
                                              [--batched-train-threads 1,2]
                                              [--batched-train-compile no,yes] [--skip-pettingzoo]
                                              [--jaxmarl-envs 16,512,4096] [--jaxmarl-torch-threads 1,2]
                                              [--skip-jaxmarl] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenarios  # noqa: E402
from envs import VectorEnv  # noqa: E402
from marl import runtime  # noqa: E402
from marl.algos import EnvInfo, make_algorithm  # noqa: E402
from marl.collector import Collector  # noqa: E402
from marl.config import build_config  # noqa: E402
from marl.trainer import train  # noqa: E402

SCENARIO = "mpe/simple_spread"
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_E, TARGET_RATIO, TARGET_GAT_RATIO, TARGET_RSS_MB = 16, 0.6, 0.4, 1500
TARGET_BATCHED_TRAIN = 20_000  # env steps/s of full MAPPO training on batched simple_spread N=3, 2 cores
GAT_COMPLETE = {"comm": {"graph": "complete", "layer": "gat"}}


def raw_env_rate(num_envs: int, seconds: float, seed: int = 0, n_agents: int = 3) -> float:
    """Steps/s of E plain mpe2 ParallelEnvs in a Python loop (actions made before the clock starts)."""
    from mpe2 import simple_spread_v3

    envs = [simple_spread_v3.parallel_env(N=n_agents, max_cycles=25, continuous_actions=False)
            for _ in range(num_envs)]
    rng = np.random.default_rng(seed)
    table = [[{a: int(x) for a, x in zip(env.possible_agents, rng.integers(0, 5, len(env.possible_agents)))}
              for _ in range(64)] for env in envs]
    for k, env in enumerate(envs):
        env.reset(seed=seed + k)
    episodes, steps, t = num_envs, 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for k, env in enumerate(envs):
            env.step(table[k][t % 64])
            if not env.agents:
                env.reset(seed=seed + episodes)
                episodes += 1
        steps += num_envs
        t += 1
    elapsed = time.perf_counter() - start
    for env in envs:
        env.close()
    return steps / elapsed


def collect_rate(num_envs: int, seconds: float, seed: int = 0) -> float:
    """Steps/s of ``Collector.collect()`` (VectorEnv stepping + actor sampling + critic values)."""
    cfg = build_config({"scenario": SCENARIO, "num_envs": num_envs, "seed": seed})
    torch.manual_seed(seed)
    env = VectorEnv(scenarios.make(SCENARIO), num_envs, seed=seed)
    algo = make_algorithm(cfg, EnvInfo.from_env(env, SCENARIO))
    collector = Collector(env, algo, cfg.algo.rollout_len, torch.device("cpu"))
    try:
        collector.collect()  # warm-up
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            collector.collect()
            steps += num_envs * cfg.algo.rollout_len
        return steps / (time.perf_counter() - start)
    finally:
        env.close()


def train_rate(num_envs: int, iterations: int, seed: int = 0, backend: str = "pettingzoo", device: str = "cpu",
               detail: bool = False, extra: dict | None = None):
    """Median ``steps_per_s`` of a short MAPPO run's iterations after the first (warm-up); with
    ``detail``, also the median seconds per iteration spent collecting and updating."""
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        cfg = build_config({
            "scenario": SCENARIO, "algo": {"rollout_len": 50}, "seed": seed, "num_envs": num_envs, "threads": 1,
            "total_steps": num_envs * 50 * iterations, "progress": False,
            "out": tmp, "checkpoint_every": 10**12, "eval_every": 0, "eval_episodes": 1, "backend": backend,
            "device": device, **(extra or {}),
        })
        with contextlib.redirect_stdout(io.StringIO()):  # train() prints its own summary
            train(cfg)
        with open(Path(tmp) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    rate = statistics.median(float(r["steps_per_s"]) for r in rows[1:])
    if not detail:
        return rate
    return rate, statistics.median(float(r["collect_s"]) for r in rows[1:]), \
        statistics.median(float(r["update_s"]) for r in rows[1:])


def batched_env_rate(n_agents: int, num_envs: int, seconds: float, seed: int = 0, device: str = "cpu") -> float:
    """Env steps/s of the batched simple_spread behind its vector-env adapter (random actions made
    before the clock starts; auto-resets included)."""
    from envs.factory import make_vector_env

    env = make_vector_env(scenarios.make(SCENARIO, n_agents=n_agents), num_envs, seed=seed, backend="batched",
                          device=device)
    gen = torch.Generator().manual_seed(seed)
    actions = [env.random_actions(gen).to(device) for _ in range(8)]
    env.reset()
    for a in actions[:2]:  # warm-up
        env.step(a)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        env.step(actions[steps % len(actions)])
        steps += 1
    sync()
    return steps * num_envs / (time.perf_counter() - start)


def batched_section(args) -> tuple[list[str], dict]:
    """Tables (d) and (e): batched env rates against mpe2's, and batched MAPPO training."""
    agents = [int(x) for x in args.batched_agents.split(",") if x.strip()]
    env_counts = [int(x) for x in args.batched_envs.split(",") if x.strip()]
    train_envs = [int(x) for x in args.batched_train_envs.split(",") if x.strip()]
    train_threads = [int(x) for x in args.batched_train_threads.split(",") if x.strip()]
    train_compile = [x.strip() == "yes" for x in args.batched_train_compile.split(",") if x.strip()]
    mpe2 = {n: [] for n in agents}
    rates = {(n, e): [] for n in agents for e in env_counts}
    training = {(e, th, c): [] for e in train_envs for th in train_threads for c in train_compile}
    for r in range(args.repeats):
        for n in agents:
            # mpe2 at N=100 takes ~0.1 s a step: at least 3 steps
            mpe2[n].append(raw_env_rate(1, max(args.seconds, 0.4), seed=r, n_agents=n))
            for e in env_counts:
                rates[n, e].append(batched_env_rate(n, e, args.seconds, seed=r, device=args.device))
            print(f"  batched repeat {r + 1}/{args.repeats} N={n}: mpe2 {mpe2[n][-1]:,.0f}, "
                  + ", ".join(f"E={e} {rates[n, e][-1]:,.0f}" for e in env_counts) + " steps/s", file=sys.stderr)
        for e in train_envs:
            for th in train_threads:
                for c in train_compile:
                    training[e, th, c].append(train_rate(e, args.train_iters, seed=r, backend="batched",
                                                         device=args.device, detail=True,
                                                         extra={"threads": th, "compile": c}))
                    print(f"  batched repeat {r + 1}/{args.repeats} training E={e} threads={th} compile={c}: "
                          f"{training[e, th, c][-1][0]:,.0f} steps/s", file=sys.stderr)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    lines = [
        f"## Batched simulator on {SCENARIO} ({args.device}), env steps/s, median of {args.repeats}",
        "",
        "| N | mpe2 (one env) | " + " | ".join(f"batched E={e}" for e in env_counts)
        + " | " + " | ".join(f"× mpe2 at E={e}" for e in env_counts) + " |",
        "|---:|---:|" + "---:|" * (2 * len(env_counts)),
    ]
    table = {}
    for n in agents:
        base = med(mpe2[n])
        row = {e: med(rates[n, e]) for e in env_counts}
        table[n] = {"mpe2_steps_per_s": base, "batched_steps_per_s": row,
                    "speedup": {e: v / base for e, v in row.items()}, "samples": {"mpe2": mpe2[n],
                    "batched": {e: rates[n, e] for e in env_counts}}}
        lines.append(f"| {n} | {base:,.1f} | " + " | ".join(f"{row[e]:,.0f}" for e in env_counts) + " | "
                     + " | ".join(f"{row[e] / base:,.0f}×" for e in env_counts) + " |")
    lines += ["", f"Full MAPPO training on batched {SCENARIO} (N=3, default config but E, torch threads and "
              "compile), steps/s and seconds per iteration (the first iteration, which compiles, left out):", "",
              "| E | torch threads | compile | training steps/s | collect s / iter | update s / iter | update share |",
              "|---:|---:|:---:|---:|---:|---:|---:|"]
    train_table = {}
    for (e, th, c), samples in training.items():
        rate = med([t[0] for t in samples])
        col, upd = med([t[1] for t in samples]), med([t[2] for t in samples])
        train_table[f"E={e},threads={th},compile={c}"] = {
            "envs": e, "threads": th, "compile": c, "train_steps_per_s": rate, "collect_s": col, "update_s": upd,
            "samples": samples}
        lines.append(f"| {e} | {th} | {'yes' if c else 'no'} | {rate:,.0f} | {col:.3f} | {upd:.3f} | "
                     f"{upd / (col + upd):.0%} |")
    lines.append("")
    for c in train_compile:
        two_cores = [v for v in train_table.values() if v["threads"] == 2 and v["compile"] == c]
        if two_cores:
            best = max(two_cores, key=lambda v: v["train_steps_per_s"])
            verdict = "PASS" if best["train_steps_per_s"] >= TARGET_BATCHED_TRAIN else "FAIL"
            lines.append(f"target: full MAPPO training on batched {SCENARIO} N=3 ≥ {TARGET_BATCHED_TRAIN:,} steps/s "
                         f"on 2 cores (threads=2, compile={'yes' if c else 'no'}): {verdict} (best median "
                         f"{best['train_steps_per_s']:,.0f} at E={best['envs']})")
    lines.append("")
    return lines, {"env_rates": table, "training": train_table, "device": args.device}


# ---- JaxMARL side by side (part f): the optional jaxbench extra ---------------------------------------------
JAXMARL_ENV = "MPE_simple_spread_v3"
JAXBENCH_INSTALL = '.venv/bin/python -m pip install -c constraints.txt -e ".[dev,jaxbench]"'
JAX_SCAN_STEPS = 50  # steps per call of the lax.scan row (our rollout length)


def import_jaxmarl():
    """(jax, jaxmarl), or None when the jaxbench extra is not installed (jaxmarl prints on import: muted)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import jax
            import jaxmarl
    except ImportError:
        return None
    return jax, jaxmarl


def timed(call, steps_per_call: int, seconds: float, min_calls: int = 3) -> tuple[float, float]:
    """(env steps/s, process CPU seconds per wall second) of ``call()`` repeated for ``seconds``; CPU time
    counts every thread of this process, so a value near 2 means both cores were busy."""
    calls, cpu0, start = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - start < seconds or calls < min_calls:
        call()
        calls += 1
    wall = time.perf_counter() - start
    return calls * steps_per_call / wall, (time.process_time() - cpu0) / wall


class JaxMarlSpread:
    """E copies of ``jaxmarl.make(JAXMARL_ENV)`` under ``jax.jit(jax.vmap(env.step))``: ``env.step`` resets an
    env whose episode ended (JaxMARL's auto-reset, as its training loops use it); a fresh key per env and step
    is split inside the compiled function; random actions are made before the clock starts. ``step()``
    is one call per env step with its outputs waited for (``block_until_ready``), as a Python loop that reads
    them would; ``scan()`` runs ``JAX_SCAN_STEPS`` steps in one ``lax.scan``, observations and rewards of
    every step returned (so that XLA cannot drop them), as JaxMARL's own rollouts do."""

    def __init__(self, jax, jaxmarl, num_envs: int, seed: int = 0):
        self.jax, jnp = jax, jax.numpy
        with contextlib.redirect_stdout(io.StringIO()):
            env = jaxmarl.make(JAXMARL_ENV)
        self.num_envs = num_envs
        key = jax.random.PRNGKey(seed)
        key, k_reset, k_act = jax.random.split(key, 3)
        _, self.state = jax.jit(jax.vmap(env.reset))(jax.random.split(k_reset, num_envs))
        n_actions = [env.action_space(a).n for a in env.agents]
        self.actions = [{a: jax.random.randint(k, (num_envs,), 0, n, dtype=jnp.int32)
                         for a, n, k in zip(env.agents, n_actions, jax.random.split(kk, len(env.agents)))}
                        for kk in jax.random.split(k_act, 8)]
        vstep = jax.vmap(env.step)

        def one(key, state, actions):
            key, sub = jax.random.split(key)
            obs, state, reward, done, _ = vstep(jax.random.split(sub, num_envs), state, actions)
            return key, state, (obs, reward, done["__all__"])

        def many(key, state, actions):
            def body(carry, t):
                key, state = carry
                acts = jax.tree.map(lambda x: jnp.roll(x, t), actions)  # a different joint action each step
                key, state, out = one(key, state, acts)
                return (key, state), out
            (key, state), outs = jax.lax.scan(body, (key, state), jnp.arange(JAX_SCAN_STEPS))
            return key, state, outs

        self._one, self._many, self.key, self._t = jax.jit(one), jax.jit(many), key, 0
        for _ in range(2):  # compile both and run them once before any clock starts
            self.step()
            self.scan()

    def step(self) -> None:
        self.key, self.state, out = self._one(self.key, self.state, self.actions[self._t % len(self.actions)])
        self._t += 1
        self.jax.block_until_ready(out)

    def scan(self) -> None:
        self.key, self.state, out = self._many(self.key, self.state, self.actions[self._t % len(self.actions)])
        self._t += 1
        self.jax.block_until_ready(out)


class OursSpread:
    """Our batched simple_spread N=3 behind ``BatchedVectorEnv`` (auto-resets, EnvOutput), random actions made
    before the clock starts: what (d) measures."""

    def __init__(self, num_envs: int, seed: int = 0, device: str = "cpu"):
        from envs.factory import make_vector_env

        self.env = make_vector_env(scenarios.make(SCENARIO, n_agents=3), num_envs, seed=seed, backend="batched",
                                   device=device)
        gen = torch.Generator().manual_seed(seed)
        self.actions = [self.env.random_actions(gen).to(device) for _ in range(8)]
        self.sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
        self.env.reset()
        self._t = 0
        for _ in range(2):
            self.step()

    def step(self) -> None:
        self.env.step(self.actions[self._t % len(self.actions)])
        self._t += 1
        self.sync()


def jaxmarl_section(args) -> tuple[list[str], dict]:
    """Table (f): raw env steps/s of JaxMARL's simple_spread (jit + vmap, and lax.scan) against our batched
    simple_spread, same E, interleaved per repeat. Empty when ``--skip-jaxmarl`` or jax is not installed."""
    env_counts = [int(x) for x in args.jaxmarl_envs.split(",") if x.strip()]
    threads = [int(x) for x in args.jaxmarl_torch_threads.split(",") if x.strip()]
    if args.skip_jaxmarl or not env_counts:
        return [], {}
    mods = import_jaxmarl()
    if mods is None:
        print(f"JaxMARL rows skipped: jax and jaxmarl are not installed (install the extra: {JAXBENCH_INSTALL})")
        return [], {}
    jax, jaxmarl = mods
    load_before, t0 = os.getloadavg()[0], time.perf_counter()
    theirs = {e: JaxMarlSpread(jax, jaxmarl, e, seed=0) for e in env_counts}
    ours = {e: OursSpread(e, seed=0, device=args.device) for e in env_counts}
    compile_s = time.perf_counter() - t0
    samples = {e: {"jax_step": [], "jax_scan": [], **{f"ours_t{th}": [] for th in threads}} for e in env_counts}
    for r in range(args.repeats):
        for e in env_counts:
            kinds = [("jax_step", lambda: timed(theirs[e].step, e, args.seconds)),
                     ("jax_scan", lambda: timed(theirs[e].scan, e * JAX_SCAN_STEPS, args.seconds))]
            for th in threads:
                def run_ours(th=th):
                    torch.set_num_threads(th)
                    try:
                        return timed(ours[e].step, e, args.seconds)
                    finally:
                        torch.set_num_threads(1)
                kinds.append((f"ours_t{th}", run_ours))
            for name, run in kinds if r % 2 == 0 else kinds[::-1]:  # alternate who goes first
                samples[e][name].append(run())
            print(f"  jaxmarl repeat {r + 1}/{args.repeats} E={e}: " + ", ".join(
                f"{k} {v[-1][0]:,.0f}" for k, v in samples[e].items()) + " steps/s", file=sys.stderr)
    med = lambda xs, i=0: statistics.median(x[i] for x in xs)  # noqa: E731
    load_after = os.getloadavg()[0]
    lines = [
        f"## JaxMARL side by side: raw env steps/s, {JAXMARL_ENV} against our batched {SCENARIO} N=3 "
        f"({args.device}), median of {args.repeats}",
        "",
        f"measured {time.strftime('%Y-%m-%d')}, jax {jax.__version__} (CPU), jaxmarl "
        f"{getattr(jaxmarl, '__version__', '?')}, torch {torch.__version__}; random actions made beforehand, "
        "auto-resets included on both sides; CPU/wall = process CPU seconds per wall second (2.0 = both cores)",
        "",
        "| E | torch threads (ours) | JaxMARL jit(vmap(step)) | CPU/wall | JaxMARL lax.scan of "
        f"{JAX_SCAN_STEPS} | CPU/wall | ours (BatchedVectorEnv) | CPU/wall | ours / JaxMARL jit(vmap) "
        "| ours / JaxMARL scan |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table = {}
    for e in env_counts:
        s = samples[e]
        js, jc, sc, scc = med(s["jax_step"]), med(s["jax_step"], 1), med(s["jax_scan"]), med(s["jax_scan"], 1)
        for th in threads:
            o, oc = med(s[f"ours_t{th}"]), med(s[f"ours_t{th}"], 1)
            table[f"E={e},threads={th}"] = {
                "envs": e, "torch_threads": th, "jaxmarl_step_steps_per_s": js, "jaxmarl_step_cpu_per_wall": jc,
                "jaxmarl_scan_steps_per_s": sc, "jaxmarl_scan_cpu_per_wall": scc, "ours_steps_per_s": o,
                "ours_cpu_per_wall": oc, "ours_over_jaxmarl_step": o / js, "ours_over_jaxmarl_scan": o / sc}
            lines.append(f"| {e} | {th} | {js:,.0f} | {jc:.2f} | {sc:,.0f} | {scc:.2f} | {o:,.0f} | {oc:.2f} | "
                         f"{o / js:.2f} | {o / sc:.2f} |")
    wall = time.perf_counter() - t0
    cmd = shlex.join(["benchmarks/throughput.py", *args.argv])
    lines += ["", f"command: `.venv/bin/python {cmd}`; {os.cpu_count()} CPUs, 1-min load average "
              f"{load_before:.1f} before / {load_after:.1f} after, {compile_s:.0f} s to build and compile, "
              f"{wall:.0f} s in all; XLA picks its own CPU threads (torch's setting does not reach it)", ""]
    return lines, {"jaxmarl_env": JAXMARL_ENV, "scenario": SCENARIO, "n_agents": 3, "device": args.device,
                   "jax": jax.__version__, "jaxmarl": getattr(jaxmarl, "__version__", None),
                   "torch": torch.__version__, "scan_steps": JAX_SCAN_STEPS, "repeats": args.repeats,
                   "seconds": args.seconds, "rows": table,
                   "samples": {str(e): v for e, v in samples.items()}, "cpu_count": os.cpu_count(),
                   "loadavg_before": load_before, "loadavg_after": load_after, "compile_s": compile_s,
                   "wall_time_s": wall, "date": time.strftime("%Y-%m-%d"), "command": cmd,
                   "xla_flags": os.environ.get("XLA_FLAGS", "")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", default="1,8,16,32", help="comma-separated numbers of envs E")
    p.add_argument("--repeats", type=int, default=3, help="measurements per (E, kind); medians are reported")
    p.add_argument("--seconds", type=float, default=1.0, help="duration of one raw / collect measurement")
    p.add_argument("--train-iters", type=int, default=6, help="iterations per training measurement (1 warm-up)")
    p.add_argument("--batched-envs", default="16,64,256", help="E for the batched env rates ('' skips them)")
    p.add_argument("--batched-agents", default="3,10,30,100", help="N for the batched env rates")
    p.add_argument("--batched-train-envs", default="16,64,256,512", help="E for batched MAPPO training rates")
    p.add_argument("--batched-train-threads", default="1,2", help="torch threads for batched MAPPO training rates")
    p.add_argument("--batched-train-compile", default="no,yes",
                   help="batched MAPPO training without and/or with compile=true (yes needs a C++ compiler)")
    p.add_argument("--skip-pettingzoo", action="store_true",
                   help="only the batched part (the PettingZoo table in throughput.md is kept as it was)")
    p.add_argument("--device", default="cpu", help="device of the batched env and learner (cpu, cuda)")
    p.add_argument("--jaxmarl-envs", default="16,512,4096",
                   help=f"E for the JaxMARL side-by-side env rates ('' skips them; needs: {JAXBENCH_INSTALL})")
    p.add_argument("--jaxmarl-torch-threads", default="1,2", help="torch threads of our side in the JaxMARL rows")
    p.add_argument("--skip-jaxmarl", action="store_true", help="leave out the JaxMARL side-by-side rows")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the command line in the JaxMARL section
    if args.train_iters < 2:
        p.error("--train-iters must be >= 2 (the first iteration is left out)")
    env_counts = [int(x) for x in args.envs.split(",") if x.strip()]
    torch.set_num_threads(1)
    runtime.keep_freed_memory()  # as every training run does: all rows measured under the same allocator

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    runs: dict[int, dict[str, list[float]]] = {e: {"raw": [], "collect": [], "train": [], "train_gat": []}
                                               for e in env_counts}
    for r in range(args.repeats if not args.skip_pettingzoo else 0):
        for e in env_counts:
            runs[e]["raw"].append(raw_env_rate(e, args.seconds, seed=r))
            runs[e]["collect"].append(collect_rate(e, args.seconds, seed=r))
            runs[e]["train"].append(train_rate(e, args.train_iters, seed=r))
            runs[e]["train_gat"].append(train_rate(e, args.train_iters, seed=r, extra=GAT_COMPLETE))
            print(f"  repeat {r + 1}/{args.repeats} E={e}: raw {runs[e]['raw'][-1]:.0f}, collect "
                  f"{runs[e]['collect'][-1]:.0f}, train {runs[e]['train'][-1]:.0f}, train with GAT "
                  f"{runs[e]['train_gat'][-1]:.0f} steps/s", file=sys.stderr)
    batched_lines, batched = batched_section(args) if args.batched_envs.strip() else ([], {})
    jax_lines, jax_results = jaxmarl_section(args)
    wall = time.perf_counter() - t0

    results = {}
    for e, m in runs.items() if not args.skip_pettingzoo else ():
        med = {k: statistics.median(v) for k, v in m.items()}
        results[e] = {**{f"{k}_steps_per_s": v for k, v in med.items()},
                      "collect_over_raw": med["collect"] / med["raw"], "train_over_raw": med["train"] / med["raw"],
                      "train_gat_over_raw": med["train_gat"] / med["raw"], "samples": m}
    lines = [
        f"## Throughput on {SCENARIO} (N=3), env steps/s, median of {args.repeats}",
        "",
        "| E | raw mpe2 loop | collect (VectorEnv + actor) | full MAPPO training | MAPPO + GAT, complete graph "
        "| collect / raw | training / raw | GAT training / raw |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e, r in results.items():
        lines.append(f"| {e} | {r['raw_steps_per_s']:,.0f} | {r['collect_steps_per_s']:,.0f} | "
                     f"{r['train_steps_per_s']:,.0f} | {r['train_gat_steps_per_s']:,.0f} | "
                     f"{r['collect_over_raw']:.2f} | "
                     f"{r['train_over_raw']:.2f} | {r['train_gat_over_raw']:.2f} |")
    lines.append("")
    if TARGET_E in results:
        ratio = results[TARGET_E]["train_over_raw"]
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        lines.append(f"target: full MAPPO training at E={TARGET_E} ≥ {TARGET_RATIO:.0%} of the raw env rate: "
                     f"{verdict} ({ratio:.0%})")
        gat = results[TARGET_E]["train_gat_over_raw"]
        lines.append(f"target: with comm.graph=complete comm.layer=gat ≥ {TARGET_GAT_RATIO:.0%}: "
                     f"{'PASS' if gat >= TARGET_GAT_RATIO else 'FAIL'} ({gat:.0%})")
    else:
        verdict = None
        lines.append(f"target: full MAPPO training at E={TARGET_E} ≥ {TARGET_RATIO:.0%} of the raw env rate: "
                     f"not measured (E={TARGET_E} not in --envs)")
    load_after = os.getloadavg()[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"peak resident memory of this process over every measurement above: {peak_mb:,.0f} MB "
                 f"(target for one training run < {TARGET_RSS_MB:,} MB: "
                 f"{'PASS' if peak_mb < TARGET_RSS_MB else 'FAIL'})")
    previous = (RESULTS / "throughput.md").read_text() if (RESULTS / "throughput.md").is_file() else ""
    previous, _, previous_jax = previous.partition("\n## JaxMARL")  # the JaxMARL section comes last
    if args.skip_pettingzoo and not batched_lines:  # only the JaxMARL rows (or nothing) measured: keep the rest
        lines = previous.rstrip("\n").split("\n") if previous else []
    else:
        if args.skip_pettingzoo:  # keep the previous PettingZoo table
            lines = previous.split("\n## Batched simulator")[0].rstrip("\n").split("\n") if previous else []
        lines += [""] + batched_lines if batched_lines else []
        lines.append(f"torch threads 1 unless a table says, {os.cpu_count()} CPUs, "
                     f"1-min load average {load_before:.1f} before / "
                     f"{load_after:.1f} after, {wall:.0f} s in all (other processes share the machine: medians)")
    if jax_lines:
        lines += [""] + jax_lines
    elif previous_jax:  # not measured this time: the previous JaxMARL section (it carries its date) is kept
        lines += ["", "## JaxMARL" + previous_jax.rstrip("\n")]
    text = "\n".join(lines)
    print(text)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"scenario": SCENARIO, "n_agents": 3, "repeats": args.repeats, "seconds": args.seconds,
           "train_iters": args.train_iters, "results": {str(e): r for e, r in results.items()},
           "target": {"envs": TARGET_E, "min_train_over_raw": TARGET_RATIO, "verdict": verdict},
           "cpu_count": os.cpu_count(), "torch": torch.__version__, "loadavg_before": load_before,
           "loadavg_after": load_after, "wall_time_s": wall, "batched": batched, "peak_rss_mb": peak_mb}
    if not args.skip_pettingzoo:
        (RESULTS / "throughput.json").write_text(json.dumps(out, indent=2))
    if batched:
        (RESULTS / "throughput_batched.json").write_text(json.dumps(
            {**batched, "repeats": args.repeats, "seconds": args.seconds, "train_iters": args.train_iters,
             "cpu_count": os.cpu_count(), "torch": torch.__version__, "loadavg_before": load_before,
             "loadavg_after": load_after}, indent=2, default=str))
    if jax_results:
        (RESULTS / "throughput_jaxmarl.json").write_text(json.dumps(jax_results, indent=2, default=str))
    (RESULTS / "throughput.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
