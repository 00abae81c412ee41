"""The package layering runs one way: lokiserve (model, memory, control,
training, server) never imports vLLM or the plugin, except the launcher;
the plugin implements the rank side of ``lokiserve.control.Rpc``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

BLOCK_VLLM = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('vllm', 'lokiserve_vllm'):
            raise ImportError(f'{name} is blocked: lokiserve must import without it')
sys.meta_path.insert(0, Block())
"""


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_every_lokiserve_module_but_the_launcher_imports_without_vllm():
    code = BLOCK_VLLM + """
import json, pkgutil, importlib, lokiserve
names = [m.name for m in pkgutil.walk_packages(lokiserve.__path__, 'lokiserve.')
         if m.name not in ('lokiserve.server.launcher', 'lokiserve.server.__main__')]
for n in names:
    importlib.import_module(n)
print(json.dumps(names))
"""
    names = json.loads(run(code))
    for must in ("lokiserve.model", "lokiserve.memory", "lokiserve.control", "lokiserve.server.memory_service",
                 "lokiserve.server.app", "lokiserve.train.trainer", "lokiserve.cli"):
        assert must in names


@pytest.mark.parametrize("module, absent", [
    ("lokiserve.train.evaluate", "lokiserve.train.trainer"),
    ("lokiserve.train.field_training", "lokiserve.train.trainer"),
    ("lokiserve.server.memory_service", "lokiserve_vllm"),
    ("lokiserve.server.memory_service", "vllm"),
    ("lokiserve.model", "lokiserve.train"),
    ("lokiserve.memory", "lokiserve.model"),
])
def test_an_import_does_not_pull_in_what_sits_above_it(module, absent):
    code = f"import sys, {module}; print(any(m == {absent!r} or m.startswith({absent!r} + '.') for m in sys.modules))"
    assert run(code) == "False"


def test_the_worker_implements_every_rpc_name():
    from lokiserve.control import WORKER_EXTENSION, Rpc

    module, cls = WORKER_EXTENSION.rsplit(".", 1)
    worker = getattr(__import__(module, fromlist=[cls]), cls)
    missing = [name for name in Rpc.ALL if not callable(getattr(worker, name, None))]
    assert not missing, missing
