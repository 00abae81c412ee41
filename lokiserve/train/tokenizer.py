"""Byte-level BPE trained on the world, saved in HF form (tokenizer.json +
tokenizer_config.json) so transformers and vLLM load it offline.

Special tokens: ``<pad>`` (0), ``<s>`` (bos, 1), ``</s>`` (eos, 2) and
``<abstain>`` (3), what the model says when the field that should hold a
fact is absent. Encoding a text adds ``<s>`` in front (a post-processor), so
a prompt sent through vLLM or ``AutoTokenizer`` gets the same ids as training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
from lokiserve.train.world import ABSTAIN  # noqa: E402

SPECIAL_TOKENS = [PAD, BOS, EOS, ABSTAIN]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> Tokenizer:
    """Deterministic for a given text sequence (single-threaded BPE merges)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    return tok


def save_hf_tokenizer(tok: Tokenizer, out_dir: str | Path, model_max_length: int = 1024):
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=None,
        additional_special_tokens=[ABSTAIN],
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    hf.save_pretrained(str(out_dir))
    return hf


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    """The raw `tokenizers` object (fast, what training and eval use)."""
    return Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))


def encode(tok: Tokenizer, text: str) -> list[int]:
    """Ids of ``text`` without special tokens."""
    return tok.encode(text, add_special_tokens=False).ids


def special_ids(tok: Tokenizer) -> dict[str, int]:
    return {
        "pad": tok.token_to_id(PAD),
        "bos": tok.token_to_id(BOS),
        "eos": tok.token_to_id(EOS),
        "abstain": tok.token_to_id(ABSTAIN),
    }
