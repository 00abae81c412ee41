"""The part of each sequence a value solve cannot change, computed once.

A slot's value reaches a position only where that slot is among the top-k
read there, and which slots are read depends on queries and keys alone, never
on values. Before the first position at which any slot being solved is read
(in any KMM layer), every activation of every layer is the frozen model's, so
the solve runs that prefix once without gradient, keeps its KV and conv
state, and steps only the rest (ROME's "cache the context" made exact). On a
prompt such as "The capital of France is", the prefix is everything before
"France".
"""

from __future__ import annotations

import torch

from lokiserve.edit.encoding import Sequence, right_padded
from lokiserve.edit.queries import all_queries
from lokiserve.generation import LayerState, LoKiFormerCache
from lokiserve.model import LoKiFormerForCausalLM

ROWS_PER_BLOCK = 4096  # query rows scored at once (a block of scores is rows x slots floats)


@torch.no_grad()
def unread_prefix(model: LoKiFormerForCausalLM, f: int, slots: dict[int, torch.Tensor], seqs: list[Sequence]
                  ) -> list[int]:
    """Per sequence, the number of leading positions at which no slot of
    field ``f`` in ``slots`` ({KMM layer: slot indices}) is read, with the
    keys as they are now; at most ``answer_start - 1``, the position whose
    output must change. A tie with the k-th score counts as a read."""
    layers = sorted(li for li, s in slots.items() if len(s))
    limit = [s.answer_start - 1 for s in seqs]
    if not layers:
        return limit
    queries, starts = all_queries(model, [s.ids for s in seqs], layers=layers)
    total = sum(len(s.ids) for s in seqs)
    read = torch.zeros(total, dtype=torch.bool)
    mems = model.memory_modules()
    for li in layers:
        keys = mems[li].keys[f].float()  # (N, d_k)
        own = slots[li].unique()
        q = queries[li]  # (M, H, d_k)
        for lo in range(0, total, ROWS_PER_BLOCK):
            block = q[lo: lo + ROWS_PER_BLOCK]
            scores = block @ keys.t()  # (b, H, N); the 1/sqrt(d_k) scale does not change the ranking
            kth = scores.topk(mems[li].topk, dim=-1).values[..., -1:]
            read[lo: lo + len(block)] |= (scores[..., own] >= kth).any(-1).any(-1)
    out = []
    for s, start, lim in zip(seqs, starts, limit):
        hits = read[start: start + len(s.ids)].nonzero()
        out.append(min(int(hits[0]) if len(hits) else lim, lim))
    return out


class PrefixBatch:
    """One batch of sequences whose unread prefixes ran once: ``forward``
    runs only the suffixes of any subset of its rows, on the stored state."""

    def __init__(self, model: LoKiFormerForCausalLM, seqs: list[Sequence], prefix: list[int]):
        self.model, self.seqs, self.prefix = model, seqs, prefix
        width = max(prefix)
        self.state: LoKiFormerCache | None = None
        if width == 0:
            return
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.bool)
        for r, (s, p) in enumerate(zip(seqs, prefix)):  # left-padded: the prefixes end where the suffixes begin
            if p:
                ids[r, width - p:] = torch.tensor(s.ids[:p])
                mask[r, width - p:] = True
        self.state = LoKiFormerCache(model.config.num_hidden_layers)
        with torch.no_grad():
            model.model(ids, mask, cache=self.state)

    def forward(self, rows: list[int]) -> torch.Tensor:
        """Final hidden states (len(rows), T, d) of those rows' suffixes; the
        suffix of row r starts at its position ``prefix[r]``."""
        ids, mask = right_padded([self.seqs[r].ids[self.prefix[r]:] for r in rows])
        cache = None
        if self.state is not None:
            index = torch.tensor(rows)
            cache = LoKiFormerCache(len(self.state.layers))
            cache.layers = [LayerState(k=st.k.index_select(0, index), v=st.v.index_select(0, index),
                                       conv=st.conv.index_select(0, index)) for st in self.state.layers]
            cache.mask = self.state.mask.index_select(0, index)
        return self.model.model(ids, mask, cache=cache)


__all__ = ["unread_prefix", "PrefixBatch"]
