"""Measure a written field before it is allowed out: the verification report.

Efficacy and generalisation are greedy exact answers (teacher-forced: greedy
decoding emits the answer iff every argmax is the next answer token, and the
token after it does not continue the word). Locality is *agreement with the
unedited model*: a neighbour, a retain fact or a position of unrelated text
passes when the edited model predicts exactly what the model predicted
before the write, so a fact the model never knew still counts as unchanged.
On unrelated text the report also gives the mean KL(before || after) of the
next-token distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lokiserve.edit.encoding import Codec, Sequence, batches, right_padded
from lokiserve.edit.queries import answer_argmax
from lokiserve.model import LoKiFormerForCausalLM


@dataclass
class Thresholds:
    """Below any of these the writer refuses (unless forced). Defaults: an
    edit that misses more than 1 in 10 of its own facts is not worth
    serving, and one that moves more than 1 in 20 neighbours or retain facts
    (or 1 in 100 positions of unrelated text) damages what the model knew."""

    efficacy: float = 0.90
    neighbors: float = 0.95
    retain: float = 0.95
    unrelated_top1: float = 0.99


@dataclass
class Probe:
    """What the unedited model does on the locality sets, recorded before writing."""

    neighbors: list = field(default_factory=list)
    retain: list = field(default_factory=list)
    retain_groups: list[str] = field(default_factory=list)
    unrelated_logp: list = field(default_factory=list)


def greedy_hits(model: LoKiFormerForCausalLM, codec: Codec, seqs: list[Sequence]) -> list[bool]:
    if not seqs:
        return []
    cont = codec.continues_word()
    out = []
    for s, am in zip(seqs, answer_argmax(model, seqs)):
        ok = bool((am[:-1] == torch.tensor(s.answer)).all()) and not bool(cont[am[-1]])
        out.append(ok)
    return out


@torch.no_grad()
def text_logprobs(model: LoKiFormerForCausalLM, seqs: list[tuple[int, ...]], tokens_per_batch: int = 4096
                  ) -> list[torch.Tensor]:
    """Next-token log-probabilities at every position of each text."""
    out: list = [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for chunk in batches(order, tokens_per_batch, length=lambda i: len(seqs[i])):
        ids, mask = right_padded([seqs[i] for i in chunk])
        hidden = model.model(ids, mask)
        # one LM head call per batch, on the real tokens only
        logp = torch.log_softmax(model.lm_head(hidden[mask]).float(), -1)
        for i, part in zip(chunk, logp.split([len(seqs[i]) for i in chunk])):
            out[i] = part
    return out


def probe(model, neighbors: list[Sequence], retain: list[Sequence], retain_groups: list[str],
          unrelated: list[tuple[int, ...]]) -> Probe:
    return Probe(answer_argmax(model, neighbors), answer_argmax(model, retain), retain_groups,
                 text_logprobs(model, unrelated))


def _rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _changed(codec: Codec, seqs: list[Sequence], now: list[torch.Tensor], before: list[torch.Tensor],
             same: list[bool], limit: int = 20) -> list[dict]:
    return [{"prompt": codec.decode(s.ids[: s.answer_start]), "before": codec.decode(b.tolist()),
             "after": codec.decode(a.tolist())}
            for s, a, b, ok in zip(seqs, now, before, same) if not ok][:limit]


def verify(model, codec: Codec, before: Probe, *, prompts: list[Sequence], given: list[Sequence],
           held_out: list[Sequence], neighbors: list[Sequence], retain: list[Sequence],
           unrelated: list[tuple[int, ...]], thresholds: Thresholds) -> dict:
    """The report of the model as it is now (the candidate field in place)
    against ``before``; ``passed`` says whether every threshold holds."""
    hits = greedy_hits(model, codec, prompts)
    now_n, now_r = answer_argmax(model, neighbors), answer_argmax(model, retain)
    same_n = [bool(torch.equal(a, b)) for a, b in zip(now_n, before.neighbors)]
    same_r = [bool(torch.equal(a, b)) for a, b in zip(now_r, before.retain)]
    groups: dict[str, list[bool]] = {}
    for g, ok in zip(before.retain_groups, same_r):
        groups.setdefault(g, []).append(ok)
    top1, kl = [], []
    for a, b in zip(text_logprobs(model, unrelated), before.unrelated_logp):
        top1.append((a.argmax(-1) == b.argmax(-1)).float())
        kl.append((b.exp() * (b - a)).sum(-1))
    top1_t = torch.cat(top1) if top1 else torch.zeros(0)
    kl_t = torch.cat(kl) if kl else torch.zeros(0)
    report = {
        "facts": len(prompts),
        "efficacy": _rate(hits),
        "paraphrase_given": _rate(greedy_hits(model, codec, given)),
        "paraphrase_held_out": _rate(greedy_hits(model, codec, held_out)),
        "paraphrases_given": len(given), "paraphrases_held_out": len(held_out),
        "neighbors": _rate(same_n), "neighbors_checked": len(same_n),
        "retain": _rate(same_r), "retain_checked": len(same_r),
        "retain_by_group": {g: _rate(v) for g, v in sorted(groups.items())},
        "unrelated_top1": round(float(top1_t.mean()), 4) if len(top1_t) else None,
        "unrelated_kl": round(float(kl_t.mean()), 6) if len(kl_t) else None,
        "unrelated_positions": int(len(top1_t)),
        "failed_prompts": [codec.decode(s.ids[: s.answer_start]) for s, ok in zip(prompts, hits) if not ok][:20],
        # what moved, as the model now continues it against before (its answer span and the token after)
        "changed_neighbors": _changed(codec, neighbors, now_n, before.neighbors, same_n),
        "changed_retain": _changed(codec, retain, now_r, before.retain, same_r),
    }
    checks = {"efficacy": report["efficacy"], "neighbors": report["neighbors"],
              "retain": report["retain"], "unrelated_top1": report["unrelated_top1"]}
    failures = [f"{k} {v:.3f} < {getattr(thresholds, k):.3f}" for k, v in checks.items()
                if v is not None and v < getattr(thresholds, k)]
    worst_group = min((v for v in report["retain_by_group"].values() if v is not None), default=None)
    if worst_group is not None and worst_group < thresholds.retain:
        bad = [g for g, v in report["retain_by_group"].items() if v is not None and v < thresholds.retain]
        failures.append(f"retain group(s) {', '.join(bad[:5])} below {thresholds.retain:.3f}")
    report["thresholds"] = dict(vars(thresholds))
    report["failures"] = failures
    report["passed"] = not failures
    return report


__all__ = ["Thresholds", "Probe", "probe", "verify", "greedy_hits", "text_logprobs"]
