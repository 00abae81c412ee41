"""vLLM's own OpenAI server runs LoKiFormer through the plugin alone (no
--trust-remote-code), answering the official openai client."""

from __future__ import annotations

import pytest

from tests.server_utils import PYTHON, free_port, running
from tests.test_vllm_engine import checkpoint  # noqa: F401

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    url = {}

    def launch():  # a fresh port on each try (``running`` retries after a port clash)
        port = free_port()
        url["base"] = f"http://127.0.0.1:{port}"
        return [PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint),
                "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager"], \
            f"{url['base']}/health"

    with running(launch, log=log):
        yield f"{url['base']}/v1", str(checkpoint)


@pytest.fixture
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server[0], api_key="unused")


PROMPT = "the capital of Zorvia is"


def test_non_streaming_with_logprobs(client, server):
    r = client.completions.create(model=server[1], prompt=PROMPT, max_tokens=6, temperature=0, logprobs=3)
    choice = r.choices[0]
    assert r.usage.completion_tokens == len(choice.logprobs.tokens) > 0
    assert all(len(top) <= 3 for top in choice.logprobs.top_logprobs)
    again = client.completions.create(model=server[1], prompt=PROMPT, max_tokens=6, temperature=0)
    assert again.choices[0].text == choice.text  # greedy is deterministic


def test_streaming_equals_non_streaming(client, server):
    full = client.completions.create(model=server[1], prompt=PROMPT, max_tokens=8, temperature=0)
    stream = client.completions.create(model=server[1], prompt=PROMPT, max_tokens=8, temperature=0, stream=True)
    pieces = [chunk.choices[0].text for chunk in stream if chunk.choices]
    assert len(pieces) > 1
    assert "".join(pieces) == full.choices[0].text


def test_n_greater_than_one(client, server):
    r = client.completions.create(model=server[1], prompt=PROMPT, max_tokens=5, temperature=1.0, n=3, seed=1)
    assert sorted(c.index for c in r.choices) == [0, 1, 2]


def test_stop_string_cuts_the_completion(client, server):
    keep_going = {"ignore_eos": True}  # a long enough text to cut, whatever the model says
    full = client.completions.create(model=server[1], prompt=PROMPT, max_tokens=16, temperature=0,
                                     extra_body=keep_going).choices[0].text
    assert len(full) > 4
    stop = full[2:4]
    cut = client.completions.create(model=server[1], prompt=PROMPT, max_tokens=16, temperature=0, stop=[stop],
                                    extra_body=keep_going)
    assert cut.choices[0].text == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
