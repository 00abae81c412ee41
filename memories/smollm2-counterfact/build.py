"""Build the SmolLM2 CounterFact-style edit set: greedy-check the hand-written
candidates (``candidates.py``) on the converted model and write the facts the
model already knows to ``facts.jsonl``.

    .venv/bin/python memories/smollm2-counterfact/build.py --model /work/models/smollm2-lk

A candidate is kept only if the model's greedy continuation gives its true
answer for the main prompt AND for both paraphrases, AND both neighbour
prompts give their answers. "Gives the answer": the decoded continuation,
leading whitespace stripped, starts with the answer and the next character
(if any) is not a letter or digit.

Checks run in stages (main prompts and neighbours first, then the first
paraphrase of the survivors, then the second), so a dropped fact is reported
with the first check it failed. Raw prompt text is fed to the model (no chat
template; the tokenizer adds no BOS). Decoding is greedy with a KV cache,
batches of prompts left-padded; ``--verify`` (on by default) first checks that
this batched decoder gives exactly the tokens of a plain uncached greedy loop
over the full model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def load_candidates() -> list[dict]:
    spec = importlib.util.spec_from_file_location("smollm2_counterfact_candidates", HERE / "candidates.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CANDIDATES


def gives(continuation: str, answer: str) -> bool:
    text = continuation.lstrip()
    if not text.startswith(answer):
        return False
    rest = text[len(answer):]
    return not rest or not rest[0].isalnum()


# ------------------------------------------------------------------ decoding


class Decoder:
    """Batched greedy decoding of raw prompts on a LoKiFormer."""

    def __init__(self, model_dir: str, batch_size: int):
        import transformers

        from lokiserve.generation import LoKiFormerCache
        from lokiserve.model import KmmOptions, KnowledgeMemory, LoKiFormerForCausalLM

        self._cache_cls = LoKiFormerCache
        self.model = LoKiFormerForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
        self.tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        self.tok.padding_side = "left"
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, (list, tuple)) else [eos]
        self.eos = {e for e in eos if e is not None} | {self.tok.eos_token_id}
        self.batch_size = batch_size
        # An empty memory adds exactly 0 (disabled fields are zeroed, empty
        # fields have zero values and W_mo has no bias): skip the retrieval.
        mems = [m for m in self.model.modules() if isinstance(m, KnowledgeMemory)]
        empty = all(
            bool((~m.enabled).all()) or bool((m.values[m.enabled] == 0).all()) for m in mems
        )
        self.kmm = None
        if empty:
            hidden = self.model.config.hidden_size

            def zero(module, c, opts):
                return c.new_zeros(c.shape[0], c.shape[1], hidden)

            self.kmm = KmmOptions(retrieval=zero)
        self.memory_skipped = empty

    @torch.no_grad()
    def _batch(self, prompts: list[str], n_new: int, answers: list[set[str]] | None = None) -> list[list[int]]:
        """Greedy tokens for each prompt, cut at end-of-sequence. With ``answers``
        (per prompt, the answers it is checked against), a batch stops early once
        every row is decided for all of them: ``gives`` cannot change any more."""
        enc = self.tok(prompts, return_tensors="pt", padding=True)
        mask = enc.attention_mask.bool()
        cache = self._cache_cls(self.model.config.num_hidden_layers)
        h = self.model.model(enc.input_ids, mask, cache, self.kmm)
        nxt = self.model.lm_head(h[:, -1]).argmax(-1)
        rows: list[list[int]] = [[] for _ in prompts]
        ended = [False] * len(prompts)
        one = torch.ones(len(prompts), 1, dtype=torch.bool)
        for step in range(n_new):
            for r, t in zip(rows, nxt.tolist()):
                r.append(t)
            for i, r in enumerate(rows):
                ended[i] = ended[i] or r[-1] in self.eos
            if step == n_new - 1:
                break
            if answers is not None and all(
                e or self._decided(r, a) for e, r, a in zip(ended, rows, answers)
            ):
                break
            mask = torch.cat([mask, one], 1)
            h = self.model.model(nxt[:, None], mask, cache, self.kmm)
            nxt = self.model.lm_head(h[:, -1]).argmax(-1)
        out = []
        for row in rows:  # stop at end-of-sequence, as generate() does
            cut = next((i for i, t in enumerate(row) if t in self.eos), len(row))
            out.append(row[:cut])
        return out

    def _decided(self, ids: list[int], answers: set[str]) -> bool:
        text = self.tok.decode(ids, skip_special_tokens=True).lstrip()
        if "\ufffd" in text:  # a character split across tokens: wait for the rest
            return False
        return all(len(text) > len(a) or not a.startswith(text) for a in answers) and bool(text)

    def run(self, jobs: dict[str, int], answers: dict[str, set[str]] | None = None, log=print) -> dict[str, str]:
        """jobs: prompt -> most new tokens to decode; answers: prompt -> the answers
        it is checked against (enables early stopping). Returns prompt -> continuation."""
        lengths = {p: len(self.tok(p).input_ids) for p in jobs}
        order = sorted(jobs, key=lambda p: (jobs[p], lengths[p], p))
        result: dict[str, str] = {}
        t0 = time.perf_counter()
        i = 0
        while i < len(order):
            n_new = jobs[order[i]]
            chunk = [p for p in order[i : i + self.batch_size] if jobs[p] == n_new]
            ans = None if answers is None else [answers[p] for p in chunk]
            for p, ids in zip(chunk, self._batch(chunk, n_new, ans)):
                result[p] = self.tok.decode(ids, skip_special_tokens=True)
            i += len(chunk)
            if log and (i == len(order) or i // self.batch_size % 10 == 0):
                log(f"    {i}/{len(order)} prompts, {time.perf_counter() - t0:.0f} s", flush=True)
        return result

    @torch.no_grad()
    def reference(self, prompt: str, n_new: int) -> list[int]:
        """Plain greedy loop: full model (memory included), no cache, no padding."""
        ids = self.tok(prompt, return_tensors="pt").input_ids
        out = []
        for _ in range(n_new):
            t = int(self.model(ids).logits[0, -1].argmax())
            if t in self.eos:
                break
            out.append(t)
            ids = torch.cat([ids, torch.tensor([[t]])], 1)
        return out

    def verify(self, prompts: list[str], n_new: int) -> None:
        batched = self._batch(prompts, n_new)  # no early stop: all n_new tokens
        for p, got in zip(prompts, batched):
            want = self.reference(p, n_new)
            if got != want:
                raise SystemExit(
                    f"batched decoding differs from the plain greedy loop on {p!r}:\n"
                    f"  batched:   {self.tok.decode(got)!r}\n  reference: {self.tok.decode(want)!r}"
                )
            print(f"  verified {p!r} -> {self.tok.decode(want)!r}")


# ------------------------------------------------------------------ building


def build(cands: list[dict], decoder: Decoder, min_new: int) -> tuple[list[dict], list[tuple[dict, str]]]:
    tok = decoder.tok

    def n_new(answer: str) -> int:
        return max(min_new, len(tok(" " + answer).input_ids) + 2)

    dropped: list[tuple[dict, str]] = []
    seen: set[str] = set()
    live = []
    for c in cands:
        if c["subject"] not in c["prompt"]:
            raise SystemExit(f"subject {c['subject']!r} not in prompt {c['prompt']!r}")
        if c["prompt"] in seen:
            dropped.append((c, "duplicate prompt"))
            continue
        seen.add(c["prompt"])
        live.append(c)

    outputs: dict[str, str] = {}

    def check(jobs: dict[str, int], answers: dict[str, set[str]], label: str) -> None:
        todo = {p: n for p, n in jobs.items() if p not in outputs}
        print(f"  stage {label}: {len(todo)} prompts to decode", flush=True)
        outputs.update(decoder.run(todo, answers))

    # Stage 1: main prompts and every neighbour prompt (neighbours are needed
    # for the swap below, so check all of them, not only the ones in use).
    jobs, answers = {}, defaultdict(set)
    for c in live:
        for p, a in [(c["prompt"], c["true"])] + [(nb["prompt"], nb["answer"]) for nb in c["neighbors"]]:
            jobs[p] = max(jobs.get(p, 0), n_new(a))
            answers[p].add(a)
    check(jobs, answers, "1 (main prompts + neighbours)")
    neighbor_ok = {}
    for c in live:
        for nb in c["neighbors"]:
            neighbor_ok[(nb["prompt"], nb["answer"])] = gives(outputs[nb["prompt"]], nb["answer"])

    survivors = []
    for c in live:
        if not gives(outputs[c["prompt"]], c["true"]):
            dropped.append((c, f"prompt gave {outputs[c['prompt']].strip()!r}"))
            continue
        bad = [nb for nb in c["neighbors"] if not neighbor_ok[(nb["prompt"], nb["answer"])]]
        if bad:
            nb = bad[0]
            dropped.append((c, f"neighbour {nb['prompt']!r} gave {outputs[nb['prompt']].strip()!r}, not {nb['answer']!r}"))
            continue
        survivors.append(c)

    for k in (0, 1):
        jobs, answers = {}, defaultdict(set)
        for c in survivors:
            p = c["paraphrases"][k]
            jobs[p] = max(jobs.get(p, 0), n_new(c["true"]))
            answers[p].add(c["true"])
        check(jobs, answers, f"{k + 2} (paraphrase {k + 1})")
        nxt = []
        for c in survivors:
            p = c["paraphrases"][k]
            if gives(outputs[p], c["true"]):
                nxt.append(c)
            else:
                dropped.append((c, f"paraphrase {k + 1} {p!r} gave {outputs[p].strip()!r}"))
        survivors = nxt

    # Neighbours must never be edited: a kept fact's main prompt may not be a
    # neighbour prompt of another kept fact. In order: drop a fact whose main
    # prompt is already a kept fact's neighbour; swap a neighbour that is a
    # kept fact's main prompt for another verified one of the same relation.
    by_rel = defaultdict(list)
    for c in live:
        for nb in c["neighbors"]:
            key = (nb["prompt"], nb["answer"])
            if neighbor_ok[key] and key not in by_rel[c["relation"]]:
                by_rel[c["relation"]].append(key)
    kept, mains, used_as_neighbor = [], set(), set()
    for c in survivors:
        if c["prompt"] in used_as_neighbor:
            dropped.append((c, "main prompt is a neighbour of an earlier kept fact"))
            continue
        nbs, ok = [], True
        for nb in c["neighbors"]:
            if nb["prompt"] in mains or nb["prompt"] == c["prompt"]:
                alt = next(
                    (
                        {"prompt": p, "answer": a}
                        for p, a in by_rel[c["relation"]]
                        if p not in mains and p != c["prompt"] and p not in {x["prompt"] for x in c["neighbors"] + nbs}
                    ),
                    None,
                )
                if alt is None:
                    ok = False
                    break
                nb = alt
            nbs.append(nb)
        if not ok:
            dropped.append((c, "neighbour is an edited prompt and no other verified neighbour is free"))
            continue
        kept.append({**c, "neighbors": nbs})
        mains.add(c["prompt"])
        used_as_neighbor.update(nb["prompt"] for nb in nbs)
    return kept, dropped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="converted LoKiFormer directory (empty memory)")
    ap.add_argument("--out", default=str(HERE / "facts.jsonl"), help="output JSONL (default: next to this script)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=8, help="at least this many new tokens per prompt "
                    "(more where the expected answer needs them)")
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--no-verify", action="store_true", help="skip the batched-vs-plain greedy self-check")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    cands = load_candidates()
    print(f"{len(cands)} candidates in {len({c['relation'] for c in cands})} relations")
    decoder = Decoder(args.model, args.batch_size)
    print(f"model {args.model}; memory {'empty: retrieval skipped (adds exactly 0)' if decoder.memory_skipped else 'in use'}")
    if not args.no_verify:
        decoder.verify(["The capital of France is", "The Mona Lisa was painted by", "Juventus is a football club based in"],
                       args.max_new_tokens)
    t_check = time.perf_counter()
    kept, dropped = build(cands, decoder, args.max_new_tokens)
    t_done = time.perf_counter()

    out = Path(args.out)
    with out.open("w", encoding="utf-8") as f:
        for c in kept:
            row = {
                "prompt": c["prompt"],
                "subject": c["subject"],
                "answer": c["new"],
                "original": c["true"],
                "relation": c["relation"],
                "paraphrases": c["paraphrases"],
                "neighbors": c["neighbors"],
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    print("\ndropped:")
    for c, why in dropped:
        print(f"  [{c['relation']}] {c['prompt']!r} -> {c['true']!r}: {why}")
    total, keep = Counter(c["relation"] for c in cands), Counter(c["relation"] for c in kept)
    reasons = Counter(why.split(" ")[0] for _, why in dropped)
    print("\nper relation (kept / candidates):")
    for rel in total:
        print(f"  {rel:20s} {keep[rel]:4d} / {total[rel]}")
    print(f"  {'overall':20s} {len(kept):4d} / {len(cands)}")
    print("drop reasons (first failed check): " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    print(f"check took {t_done - t_check:.0f} s (total {t_done - t_start:.0f} s); wrote {len(kept)} facts to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
