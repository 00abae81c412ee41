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

from lokiserve.edit.encoding import Sequence, batches, right_padded
from lokiserve.edit.queries import all_queries
from lokiserve.generation import LayerState, LoKiFormerCache
from lokiserve.model import LoKiFormerForCausalLM

ROWS_PER_BLOCK = 4096  # query rows scored at once (a block of scores is rows x slots floats)
MIN_ROWS = 128  # a copied batch of fewer sequences takes the next suffix length's too


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
    total = len(queries[layers[0]])  # identical sequences share rows
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
    runs only the suffixes of any subset of its rows, on the stored state.
    ``from_layer``: the first block any solved value lives in. Below it no
    value reaches even a suffix token, so the suffixes' hidden states
    entering it are computed once too, and ``forward`` starts there (a
    routing layer 4 of SmolLM2's 30 saves 4 of the 30 blocks' forward)."""

    def __init__(self, model: LoKiFormerForCausalLM, seqs: list[Sequence], prefix: list[int], from_layer: int = 0):
        self.model, self.seqs, self.prefix, self.from_layer = model, seqs, prefix, from_layer
        width = max(prefix)
        self.state: LoKiFormerCache | None = None
        if width > 0:
            ids = torch.zeros(len(seqs), width, dtype=torch.long)
            mask = torch.zeros(len(seqs), width, dtype=torch.bool)
            for r, (s, p) in enumerate(zip(seqs, prefix)):  # left-padded: the prefixes end where the suffixes begin
                if p:
                    ids[r, width - p:] = torch.tensor(s.ids[:p])
                    mask[r, width - p:] = True
            self.state = LoKiFormerCache(model.config.num_hidden_layers)
            with torch.no_grad():
                model.model(ids, mask, cache=self.state)
        self.entering: torch.Tensor | None = None  # (B, T, d): the suffixes' input to block ``from_layer``
        if from_layer > 0:
            ids, mask = right_padded([s.ids[p:] for s, p in zip(seqs, prefix)])
            with torch.no_grad():
                self.entering = model.model(ids, mask, cache=self._cache(list(range(len(seqs)))),
                                            num_layers=from_layer)

    @classmethod
    def gather(cls, parts: list[tuple[PrefixBatch, int]]) -> PrefixBatch:
        """A batch of rows taken from batches already run (each ``(batch,
        row)``), their stored state copied, not recomputed: the prefixes are
        left-padded, so a row's real positions are its last ``prefix`` ones
        at any width. Every source batch must have the same ``from_layer``;
        suffixes of several lengths are right-padded, as ``forward`` pads
        them."""
        first = parts[0][0]
        out = cls.__new__(cls)
        out.model, out.from_layer = first.model, first.from_layer
        out.seqs = [b.seqs[r] for b, r in parts]
        out.prefix = [b.prefix[r] for b, r in parts]
        width = max(out.prefix)
        out.state = None
        if width > 0:
            source = next(b for b, r in parts if b.prefix[r] > 0)  # a batch with stored state
            out.state = LoKiFormerCache(len(source.state.layers))
            layers = []
            for li in range(len(source.state.layers)):
                ref = source.state.layers[li]
                k = ref.k.new_zeros(len(parts), ref.k.shape[1], width, ref.k.shape[3])
                v = ref.v.new_zeros(len(parts), ref.v.shape[1], width, ref.v.shape[3])
                conv = ref.conv.new_zeros(len(parts), *ref.conv.shape[1:])
                for j, (b, r) in enumerate(parts):
                    p = b.prefix[r]
                    if b.state is None:
                        continue  # a batch of empty prefixes: no KV, a zero conv state
                    src = b.state.layers[li]
                    if p:
                        k[j, :, width - p:] = src.k[r, :, src.k.shape[2] - p:]
                        v[j, :, width - p:] = src.v[r, :, src.v.shape[2] - p:]
                    conv[j] = src.conv[r]
                layers.append(LayerState(k=k, v=v, conv=conv))
            out.state.layers = layers
            out.state.mask = torch.zeros(len(parts), width, dtype=torch.bool)
            for j, p in enumerate(out.prefix):
                out.state.mask[j, width - p:] = True
        out.entering = None
        if first.entering is not None:
            n = [len(s.ids) - p for s, p in zip(out.seqs, out.prefix)]
            out.entering = first.entering.new_zeros(len(parts), max(n), first.entering.shape[-1])
            for j, ((b, r), m) in enumerate(zip(parts, n)):
                out.entering[j, :m] = b.entering[r, :m]
        return out

    def _cache(self, rows: list[int]) -> LoKiFormerCache | None:
        """The prefix state of ``rows`` (a copy: a forward replaces it)."""
        if self.state is None:
            return None
        cache = LoKiFormerCache(len(self.state.layers))
        if rows == list(range(len(self.seqs))):  # every row, in order: the state as it is (a forward reads it)
            cache.layers, cache.mask = list(self.state.layers), self.state.mask
            return cache
        index = torch.tensor(rows)
        cache.layers = [LayerState(k=st.k.index_select(0, index), v=st.v.index_select(0, index),
                                   conv=st.conv.index_select(0, index)) for st in self.state.layers]
        cache.mask = self.state.mask.index_select(0, index)
        return cache

    def forward(self, rows: list[int]) -> torch.Tensor:
        """Final hidden states (len(rows), T, d) of those rows' suffixes; the
        suffix of row r starts at its position ``prefix[r]``."""
        ids, mask = right_padded([self.seqs[r].ids[self.prefix[r]:] for r in rows])
        hidden = None
        if self.entering is not None:
            hidden = self.entering.index_select(0, torch.tensor(rows))[:, : ids.shape[1]]
        return self.model.model(ids, mask, cache=self._cache(rows), start_layer=self.from_layer, hidden=hidden)


class Packs:
    """The batches a value solve steps on, re-made as the sequences in play
    shrink. A step runs only the rows in play; left in the batches made for
    every sequence, a few dozen rows spread over dozens of batches, each a
    full pass of small matmuls (1,000 real edits: 4 s a step with 40 facts
    in play). So once fewer than half of a packing's sequences are in play,
    they are packed anew, their stored state copied from the packing of
    every sequence, which is made first and kept (judging needs it).

    A batch of every sequence holds one suffix length (no step multiplies
    padding) and at most ``tokens_per_batch`` padded prefix and suffix
    tokens, prefixes sorted (bounded by the suffix alone, a batch of 2-token
    suffixes held 2,048 rows, and their left-padded prefixes took ~50 s to
    run). A copied packing lets a suffix length with few sequences share
    the next one's batches: its prefixes never run again."""

    def __init__(self, model: LoKiFormerForCausalLM, seqs: list[Sequence], prefix: list[int], from_layer: int,
                 tokens_per_batch: int):
        self.model, self.seqs, self.prefix, self.from_layer = model, seqs, prefix, from_layer
        self.tokens_per_batch = tokens_per_batch
        self.every: list | None = None
        self.part: list | None = None
        self.part_set: set[int] = set()
        self.packings = 0  # how many times sequences were packed (a solve reports it)

    def _pack(self, indices) -> list[tuple[list[int], PrefixBatch]]:
        """Batches of ``indices``: run (their prefixes and the blocks below
        ``from_layer``) for the packing of every sequence, copied from it
        for any other (exact, and a fraction of a second where running the
        prefixes again took ~30 s at 1,000 edits)."""
        self.packings += 1
        where = None
        if self.every is not None:
            where = {i: (run, r) for chunk, run in self.every for r, i in enumerate(chunk)}
        suffix = {i: len(self.seqs[i].ids) - self.prefix[i] for i in indices}
        by_length: dict[int, list[int]] = {}
        for i in sorted(indices, key=lambda i: self.prefix[i]):
            by_length.setdefault(suffix[i], []).append(i)
        if where is None:
            return [(chunk, PrefixBatch(self.model, [self.seqs[i] for i in chunk], [self.prefix[i] for i in chunk],
                                        self.from_layer))
                    for n, rows in sorted(by_length.items())
                    for chunk in batches(rows, self.tokens_per_batch, length=lambda i: n + self.prefix[i])]
        # Copied batches: a suffix length with few sequences joins the next (padding a few suffixes costs a few
        # tokens; a batch of its own cost a full pass of small matmuls, ~0.2 s forward and backward, per step).
        groups: list[list[int]] = []
        for n, rows in sorted(by_length.items()):
            if groups and len(groups[-1]) < MIN_ROWS:
                groups[-1] += rows
            else:
                groups.append(list(rows))
        out = []
        for rows in groups:
            longest = max(suffix[i] for i in rows)
            rows.sort(key=lambda i: self.prefix[i])  # the copied state is padded only to its batch's longest prefix
            out += [(chunk, PrefixBatch.gather([where[i] for i in chunk]))
                    for chunk in batches(rows, self.tokens_per_batch, length=lambda i: longest + self.prefix[i])]
        return out

    def runs(self, live: set[int]) -> list[tuple[list[int], PrefixBatch]]:
        """Batches that hold every sequence in ``live`` (each batch's
        ``chunk`` lists its sequences; ``PrefixBatch.forward`` runs any of
        its rows)."""
        if self.every is None:
            self.every = self._pack(range(len(self.seqs)))
        if 2 * len(live) > len(self.seqs):
            return self.every
        if self.part is None or not live <= self.part_set or 2 * len(live) <= len(self.part_set):
            self.part, self.part_set = self._pack(live), set(live)
        return self.part


__all__ = ["unread_prefix", "PrefixBatch", "Packs"]
