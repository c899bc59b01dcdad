"""What the adapters of the grid-world packages (``envs/lbf.py``, ``envs/rware.py``) share: each wraps
a package env ``self.env`` as a PettingZoo ParallelEnv with per-agent spaces built in ``__init__``
(``_obs_spaces``, ``_act_spaces``), float32 observation dicts, a checked ``step`` preamble and a
numpy ``render`` (``draw``) on cells of ``cell_pixels``."""

from __future__ import annotations

import numpy as np
from pettingzoo import ParallelEnv


class GridPackageEnv(ParallelEnv):
    cell_pixels = 24  # side of a cell in render()'s frame

    def _set_render_mode(self, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None "
                             f"(got {render_mode!r})")
        self.render_mode = render_mode

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _check_step(self, actions) -> None:
        if not self.agents:
            raise RuntimeError("step() after the episode ended; call reset()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            family = self.metadata["name"].split("_")[0]
            raise ValueError(f"{family} needs an action for every agent; missing {missing}")

    def _as_dict(self, nobs) -> dict:
        return {a: np.asarray(o, dtype=np.float32) for a, o in zip(self.possible_agents, nobs)}

    def to_pixels(self, points) -> np.ndarray:
        """Cells ``(x, y)`` (column, row) -> the pixel ``(x, y)`` of their centres in render()'s frame."""
        return (np.asarray(points, dtype=np.float32) + 0.5) * self.cell_pixels

    def render(self):
        if self.render_mode == "human":
            return self.env.render()
        return self.draw() if self.render_mode == "rgb_array" else None

    def draw(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self):
        self.env.close()
