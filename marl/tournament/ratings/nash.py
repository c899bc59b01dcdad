"""Nash averaging (Balduzzi et al. 2018) with the maximum-entropy Nash equilibrium.

For an antisymmetric meta-game ``A`` (``A[i, j]``: how much i beats j, ``A = -A.T``) the
symmetric zero-sum game has value 0, and a mixture p is an equilibrium exactly when no pure
player beats it: ``A p <= 0``. Among these (a polytope) the maximum-entropy one is unique; the
Nash-averaged skill is ``A p*`` (0 for players in its support, negative outside). Copies of a
player share one mass in the maximum-entropy equilibrium and ``A p*`` only sees their total, so
adding copies leaves everyone's skill unchanged, which is the point of the method. (This is exact
when the game without copies has a unique equilibrium, the generic case; tests check it on RPS,
a 4-player game and random games.)

Agent-vs-task uses the zero-sum game between agents (rows, maximising ``S``) and tasks (columns):
maximum-entropy maxmin strategies p* for agents and q* for tasks; agent skill ``S q*`` and task
difficulty ``-S^T p*``, both relative to the game's value.

How the maximum-entropy point is found: a linear program per coordinate (``max x_i`` over the
polytope, HiGHS) shows which players have zero mass in every equilibrium; they are fixed at 0.
The average of those LP solutions is a point with every other coordinate positive; from there
SLSQP maximises the (strictly concave) entropy over the polytope restricted to the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize

SUPPORT_TOL = 1e-9


@dataclass
class NashAveraging:
    weights: np.ndarray  # [P] maximum-entropy Nash equilibrium p*
    skill: np.ndarray  # [P] A p*


@dataclass
class AgentVsTask:
    agent_weights: np.ndarray
    task_weights: np.ndarray
    agent_skill: np.ndarray  # S q* - value
    task_difficulty: np.ndarray  # -(S^T p* - value)
    value: float


def max_entropy_point(G: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The maximum-entropy distribution x (x >= 0, sum 1) with ``G x <= h`` (assumed non-empty)."""
    n = G.shape[1]
    bounds = [(0.0, 1.0)] * n
    a_eq, b_eq = np.ones((1, n)), np.array([1.0])
    solutions, free = [], np.zeros(n, dtype=bool)
    for i in range(n):
        c = np.zeros(n)
        c[i] = -1.0
        res = linprog(c, A_ub=G, b_ub=h, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"equilibrium LP failed ({res.message}); the payoff matrix may hold NaN or inf")
        solutions.append(res.x)
        free[i] = res.x[i] > SUPPORT_TOL
    x0 = np.mean(solutions, axis=0)[free]
    x0 = x0 / x0.sum()
    Gf = G[:, free]
    if free.sum() == 1:
        x = np.zeros(n)
        x[free] = 1.0
        return x

    def neg_entropy(x):
        xs = np.clip(x, 1e-300, None)
        return float(np.sum(xs * np.log(xs)))

    def grad(x):
        return 1.0 + np.log(np.clip(x, 1e-300, None))

    res = minimize(
        neg_entropy, x0, jac=grad, method="SLSQP", bounds=[(0.0, 1.0)] * int(free.sum()),
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones_like(x)},
                     {"type": "ineq", "fun": lambda x: h - Gf @ x, "jac": lambda x: -Gf}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    xf = np.clip(res.x if res.success else x0, 0.0, None)
    x = np.zeros(n)
    x[free] = xf / xf.sum()
    return x


def nash_averaging(A: np.ndarray) -> NashAveraging:
    """Nash averaging of an antisymmetric payoff ``A`` (pass ``(P - P.T) / 2`` for a raw payoff P)."""
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"Nash averaging needs a square payoff matrix (got shape {A.shape})")
    if not np.all(np.isfinite(A)):
        raise ValueError("the payoff matrix holds NaN or inf (a missing match?)")
    if not np.allclose(A, -A.T, atol=1e-9 * max(1.0, np.abs(A).max())):
        raise ValueError("Nash averaging needs an antisymmetric matrix (A = -A.T); use (P - P.T) / 2")
    p = max_entropy_point(A, np.zeros(A.shape[0]))
    return NashAveraging(weights=p, skill=A @ p)


def agent_vs_task(S: np.ndarray) -> AgentVsTask:
    """Nash averaging of agents (rows) against tasks (columns): ``S[i, j]`` is agent i's score on task j."""
    S = np.asarray(S, dtype=np.float64)
    m, n = S.shape
    # value by LP: max v s.t. S^T p >= v, p a distribution
    c = np.zeros(m + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=np.hstack([-S.T, np.ones((n, 1))]), b_ub=np.zeros(n),
                  A_eq=np.hstack([np.ones((1, m)), np.zeros((1, 1))]), b_eq=[1.0],
                  bounds=[(0, 1)] * m + [(None, None)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"agent-vs-task LP failed: {res.message}")
    v = float(res.x[-1])
    slack = 1e-9 * max(1.0, np.abs(S).max())
    p = max_entropy_point(-S.T, -(v - slack) * np.ones(n))  # S^T p >= v
    q = max_entropy_point(S, (v + slack) * np.ones(m))  # S q <= v
    return AgentVsTask(p, q, S @ q - v, -(S.T @ p - v), v)
