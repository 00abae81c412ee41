"""Writing an output folder all at once: everything goes into a hidden temp
folder beside OUT and is renamed into place only when complete, so an error
(or Ctrl-C) never leaves a half-written model where a loader would find it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from lokiserve.convert.errors import ConvertError


def check_output(out: Path, force: bool = False) -> None:
    """Refuse an existing OUT (unless ``force``) before any work is done."""
    if out.exists() and not force:
        raise ConvertError(f"output {out} already exists (use --force to replace it)")
    if out.exists() and not out.is_dir():
        raise ConvertError(f"output {out} exists and is not a directory")
    if not out.parent.is_dir():
        raise ConvertError(f"parent folder {out.parent} of the output does not exist")


@contextlib.contextmanager
def staged_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temp dir beside ``out``; on success it becomes ``out``
    (replacing an old one only with ``force``), on error it is removed."""
    out = Path(out).expanduser().absolute()
    check_output(out, force)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        yield tmp
        if out.exists():  # force: move the old folder aside, then swap
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = ["check_output", "staged_dir"]
