"""One batch's forward and backward: the language-model loss on weighted
targets plus the bound-slot retrieval loss, in length-sorted chunks.

Used by the backbone trainer and by ``train-field``'s refining steps alike,
always through the training fast path of the KMM (``fastkmm``).
"""

from __future__ import annotations

import torch

from lokiserve.model import KmmOptions
from lokiserve.train.bound_slots import answer_values, retrieval_loss
from lokiserve.train.config import TrainConfig
from lokiserve.train.data import Sequence, make_batch
from lokiserve.train.fastkmm import fast_retrieval


def train_micro_batches(model, seqs: list[Sequence], scale: torch.Tensor, special: dict[str, int], cfg: TrainConfig,
                        chunks: int = 2, value_ids: torch.Tensor | None = None, bound: bool = False,
                        codebook: torch.Tensor | None = None) -> torch.Tensor:
    """Forward/backward in length-sorted chunks (less padding); the loss is the
    weighted mean over the whole batch. ``value_ids`` (F, N): the answers
    stored in every slot, whose ``codebook`` rows are the values (None: the
    model's own values; a callable returns it); with it or ``bound``, plus ``cfg.retrieval_weight`` x
    the retrieval loss per bound position. Returns the loss (detached)."""
    bound = bound or value_ids is not None
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].ids))
    parts = [order[j * len(order) // chunks:(j + 1) * len(order) // chunks] for j in range(chunks)]
    batches = []
    for part in parts:
        if part:
            sc = scale[part]
            batches.append((make_batch([seqs[i] for i in part], scale.shape[1], special["pad"], special["abstain"], sc,
                                       cfg.text_weight), sc))
    total_w = sum(float(b["weights"].sum()) for b, _ in batches)
    retrieval = cfg.retrieval_weight if bound else 0.0
    n_bound = max(1, sum(int((b["slot_targets"] >= 0).sum()) for b, _ in batches))
    total = 0.0
    for b, sc in batches:
        # bound slots: the values are rebuilt from the codebook per chunk (each backward frees its graph)
        book = codebook() if callable(codebook) else codebook  # a callable: built from trained parts
        table = answer_values(book, value_ids) if value_ids is not None else None
        opts = KmmOptions(field_scale=sc, grad_fields=b["grad_fields"], token_mask=b["mask"], values=table,
                          queries={} if bound else None, retrieval=fast_retrieval)
        out = model(b["input_ids"], kmm=opts)
        ce = torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]),
                                               b["targets"].reshape(-1), reduction="none")
        loss = (ce * b["weights"].reshape(-1)).sum() / max(total_w, 1e-6)
        if retrieval > 0:
            loss = loss + retrieval * retrieval_loss(model, b, opts.queries)[0] / n_bound
        loss.backward()
        total += float(loss.detach())
    return torch.tensor(total)


__all__ = ["train_micro_batches"]
