"""A replay buffer of rollout segments, for the off-policy algorithms (``marl/algos/qlearning.py``).

A segment is one env's part of one rollout: ``T`` consecutive steps with every per-step field
``[T, ...]`` (observations, actions, rewards, what follows each step, the comm decisions to replay)
and per-segment fields without a time axis (the carry the segment started from). The buffer is a
ring of ``capacity`` segments on the training device: each field is one preallocated tensor
``[capacity, ...]``, allocated on the first write from the segment's shapes and dtypes. A collect()
of E envs adds E segments at once; the oldest are overwritten once the ring is full.

Fields may come and go (a learned graph that freezes stops recording its Gumbel noise): each field
keeps a per-segment "present" flag, and a sampled batch holds a field only where every sampled
segment has it, so a consumer never sees a mix of recorded and missing decisions.

Sampling draws segment indices uniformly without replacement from torch's global CPU generator, so
a seeded run samples the same batches, and ``state_dict`` (the filled part and the write position)
lets a resumed run continue bit-identically.
"""

from __future__ import annotations

import torch


class SegmentBuffer:
    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"a replay buffer holds at least one segment (got capacity={capacity})")
        self.capacity = capacity
        self.data: dict[str, torch.Tensor] = {}  # name -> [capacity, ...]
        self.present: dict[str, torch.Tensor] = {}  # name -> [capacity] bool, on the CPU
        self.pos = 0  # the next slot written
        self.size = 0  # slots holding a segment
        self.added = 0  # segments ever added

    def __len__(self) -> int:
        return self.size

    def add(self, segments: dict[str, torch.Tensor]) -> None:
        """Write E segments: every value is ``[E, ...]`` with the same E (at most ``capacity``)."""
        E = {v.shape[0] for v in segments.values()}
        if len(E) != 1:
            raise ValueError(f"segments disagree on their count: {sorted(E)}")
        (E,) = E
        if E > self.capacity:
            raise ValueError(f"{E} segments do not fit a replay buffer of {self.capacity}")
        slots = (self.pos + torch.arange(E)) % self.capacity
        for name, value in segments.items():
            store = self.data.get(name)
            if store is None:
                store = self.data[name] = torch.zeros(self.capacity, *value.shape[1:], dtype=value.dtype,
                                                      device=value.device)
                self.present[name] = torch.zeros(self.capacity, dtype=torch.bool)
            elif store.shape[1:] != value.shape[1:] or store.dtype != value.dtype:
                raise ValueError(f"replay field {name!r}: a segment of shape {tuple(value.shape[1:])} ({value.dtype}) "
                                 f"does not fit the buffer's {tuple(store.shape[1:])} ({store.dtype})")
            store[slots.to(store.device)] = value.detach()
            self.present[name][slots] = True
        for name in self.data.keys() - segments.keys():
            self.present[name][slots] = False
        self.pos = (self.pos + E) % self.capacity
        self.size = min(self.size + E, self.capacity)
        self.added += E

    def sample(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` distinct segments drawn uniformly: every field present in all of them, ``[n, ...]``."""
        if not 0 < n <= self.size:
            raise ValueError(f"cannot sample {n} segments from a buffer holding {self.size}")
        idx = torch.randperm(self.size)[:n]
        return self.select(idx)

    def select(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, store in self.data.items():
            if bool(self.present[name][idx].all()):
                out[name] = store[idx.to(store.device)]
        return out

    # ---- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The filled part of every field (copies: a view would save the whole ring) and the positions."""
        n = self.size
        return {"capacity": self.capacity, "pos": self.pos, "size": n, "added": self.added,
                "data": {k: v[:n].clone() for k, v in self.data.items()},
                "present": {k: v[:n].clone() for k, v in self.present.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"the saved replay buffer holds {state['capacity']} segments, this one {self.capacity}")
        n = state["size"]
        self.data, self.present = {}, {}
        for name, saved in state["data"].items():
            store = self.data[name] = torch.zeros(self.capacity, *saved.shape[1:], dtype=saved.dtype,
                                                  device=saved.device)
            store[:n] = saved
            present = self.present[name] = torch.zeros(self.capacity, dtype=torch.bool)
            present[:n] = state["present"][name].cpu()
        self.pos, self.size, self.added = state["pos"], n, state["added"]

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in self.data.values())
