"""The frozen model's memory queries and answer predictions, batched.

A field's keys must answer to the queries the model itself produces (the
read path ``W_mq`` is backbone), so the writer first reads them: at the
positions that must find a fact, and at every other position of every text
it has, which must find nothing.
"""

from __future__ import annotations

import torch

from lokiserve.edit.encoding import Sequence, batches, right_padded
from lokiserve.model import KmmOptions, LoKiFormerForCausalLM


@torch.no_grad()
def all_queries(model: LoKiFormerForCausalLM, seqs: list[tuple[int, ...]], tokens_per_batch: int = 4096,
                layers: list[int] | None = None) -> tuple[dict[int, torch.Tensor], list[torch.Tensor]]:
    """Queries of every real token of every sequence, in KMM ``layers``
    (default all); the forward stops after the last of them.

    Returns ({KMM layer: (M, H, d_k)}, offsets) where sequence ``i``'s token
    ``t`` is row ``offsets[i] + t``. Identical sequences share their rows
    (M = the distinct sequences' tokens): one subject's facts bring the same
    neutral contexts, and many edits the same neighbours (1,000 real edits:
    ~6,000 of ~19,000 texts are repeats)."""
    distinct = list(dict.fromkeys(tuple(s) for s in seqs))
    if len(distinct) < len(seqs):
        queries, firsts = all_queries(model, distinct, tokens_per_batch, layers)
        at = dict(zip(distinct, firsts))
        return queries, [at[tuple(s)] for s in seqs]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    wanted = sorted(layers if layers is not None else model.memory_modules())
    rows: dict[int, list[torch.Tensor]] = {li: [] for li in wanted}
    starts = [0] * len(seqs)
    at = 0
    for chunk in batches(order, tokens_per_batch, length=lambda i: len(seqs[i])):
        ids, mask = right_padded([seqs[i] for i in chunk])
        opts = KmmOptions(queries={}, token_mask=mask)
        model.model(ids, mask, None, opts, num_layers=wanted[-1] + 1)
        for li in wanted:
            rows[li].append(opts.queries[li].float())
        for i in chunk:
            starts[i] = at
            at += len(seqs[i])
    return {li: torch.cat(r) for li, r in rows.items()}, starts


@torch.no_grad()
def answer_argmax(model: LoKiFormerForCausalLM, seqs: list[Sequence], tokens_per_batch: int = 4096
                  ) -> list[torch.Tensor]:
    """Teacher-forced greedy predictions of each sequence's answer span:
    per sequence, the argmax ids at the answer positions plus the one after.
    Greedy decoding emits the answer iff every argmax equals the next answer
    token. The LM head runs once per batch, on the answer spans only, and
    each distinct sequence once (1,000 real edits share ~100 distinct
    neighbour texts among their 2,000)."""
    distinct = list(dict.fromkeys((s.ids, s.answer_start) for s in seqs))
    if len(distinct) < len(seqs):
        firsts = {k: Sequence(*k, read_at=-1) for k in distinct}
        got = dict(zip(distinct, answer_argmax(model, list(firsts.values()), tokens_per_batch)))
        return [got[(s.ids, s.answer_start)] for s in seqs]
    out: list = [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].ids))
    for chunk in batches(order, tokens_per_batch, length=lambda i: len(seqs[i].ids)):
        ids, mask = right_padded([seqs[i].ids for i in chunk])
        hidden = model.model(ids, mask)
        rows, cols = [], []
        for row, i in enumerate(chunk):
            s = seqs[i]
            span = range(s.answer_start - 1, len(s.ids))  # predicts answer tokens, then the one after
            rows += [row] * len(span)
            cols += span
        am = model.lm_head(hidden[torch.tensor(rows), torch.tensor(cols)]).argmax(-1)
        for i, part in zip(chunk, am.split([len(seqs[i].ids) - seqs[i].answer_start + 1 for i in chunk])):
            out[i] = part
    return out


__all__ = ["all_queries", "answer_argmax"]
