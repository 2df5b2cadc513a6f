"""A host never outlives its client, and a stop is a stop, also in the middle of the prompt.

Real processes and the real starter model: a client killed with kill -9 (in the prompt's
evaluation, while tokens stream, and with its pipe held open by another process), Ctrl-C in
`quantdesk chat`, cancel while llama.cpp evaluates a long prompt, and hostile chat templates in
a real GGUF through the CLI.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from quantdesk.core.engine import Done, EngineClient, SamplingParams, Token

from template_models import with_chat_template

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")]

HERE = Path(__file__).parent
GONE_WITHIN_S = 2.0
LONG_WORDS = 400      # a prompt of ~1,500 tokens: seconds of evaluation on one thread


def _wait_gone(pid: int, timeout: float) -> float | None:
    """Seconds until process `pid` is gone (a zombie counts as gone), None if it outlived."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return time.monotonic() - start
        except psutil.NoSuchProcess:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def _kill_if_alive(pid: int | None) -> None:
    if pid is None:
        return
    try:
        psutil.Process(pid).kill()
    except psutil.NoSuchProcess:
        pass


def _read_until(proc: subprocess.Popen, word: str, seen: dict) -> None:
    for line in proc.stdout:
        key, _, value = line.strip().partition(" ")
        seen[key] = int(value) if value.isdigit() else True
        if key == word:
            return
    raise AssertionError(f"the client ended before {word!r}: {proc.stderr.read()}")


@pytest.mark.parametrize("phase,extra", [("prompt", []), ("tokens", []),
                                          ("prompt", ["--hold-pipe"])],
                         ids=["in-prompt", "in-tokens", "pipe-held-open"])
def test_host_ends_within_2s_after_its_client_is_killed(starter_model, phase, extra):
    words = LONG_WORDS if phase == "prompt" else 5
    client = subprocess.Popen(
        [sys.executable, str(HERE / "client_script.py"), str(starter_model), str(words), "2048",
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict = {}
    try:
        _read_until(client, "generating" if phase == "prompt" else "token", seen)
        host = seen["host"]
        time.sleep(0.5)                       # deep in the prompt's evaluation, or in the tokens
        assert psutil.Process(host).cpu_percent(interval=0.3) > 10   # busy (an idle host: 0 %; the CI machine is shared)
        if phase == "prompt":
            assert "token" not in seen
        client.send_signal(signal.SIGKILL)
        client.wait(5)
        took = _wait_gone(host, 10.0)
        print(f"host gone {took} s after kill -9 of its client ({phase} {extra})")
        assert took is not None and took < GONE_WITHIN_S, f"host lived {took} s after its client"
        if "holder" in seen:                  # the pipe was open all along: the parent watch did it
            assert psutil.Process(seen["holder"]).is_running()
    finally:
        client.kill()
        _kill_if_alive(seen.get("host"))
        _kill_if_alive(seen.get("holder"))
        client.wait(5)


def _host_of(cli: subprocess.Popen, timeout: float = 60.0) -> psutil.Process:
    """The engine host among the CLI's children (not multiprocessing's resource tracker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(cli.pid).children():
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.05)
    raise AssertionError("the CLI started no engine host")


def _maps(proc: psutil.Process, path: Path) -> bool:
    try:
        return any(m.path == str(path) for m in proc.memory_maps())
    except psutil.Error:
        return False


def _terminal_sigint() -> None:
    """In the child before exec: SIGINT as a terminal's foreground command has it. A test run
    started in the background by a non-interactive shell (`... &`) ignores SIGINT, and an ignored
    signal stays ignored across exec, so the CLI would never see this Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("phase", ["prompt", "tokens"])
def test_ctrl_c_ends_quantdesk_chat_and_its_host_within_2s(starter_model, phase):
    words = LONG_WORDS if phase == "prompt" else 5
    prompt = " ".join(f"word{i}" for i in range(words)) + "\nWrite a very long story about this."
    # A session of its own, and SIGINT to the whole group: what Ctrl-C in a terminal does.
    cli = subprocess.Popen(
        [sys.executable, "-m", "quantdesk.core.cli", "chat", str(starter_model), "--prompt", prompt,
         "--ctx", "2048", "--gpu-layers", "0", "--threads", "1", "--max-tokens", "1500",
         "--temperature", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=_terminal_sigint)
    host = None
    try:
        host = _host_of(cli)
        if phase == "tokens":
            assert cli.stdout.read(1)          # the reply is streaming
        else:
            deadline = time.monotonic() + 60
            while not _maps(host, starter_model) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)                    # loaded (mmap: a fraction of a second), evaluating
            assert host.cpu_percent(interval=0.3) > 10
        os.killpg(cli.pid, signal.SIGINT)
        start = time.monotonic()
        code = cli.wait(10)
        took = time.monotonic() - start
        out, err = cli.communicate()
        assert code == 130, err
        assert took < GONE_WITHIN_S, f"the CLI took {took:.2f} s to end"
        assert err.decode().strip().splitlines()[-1] == "quantdesk: interrupted"
        if phase == "prompt":
            assert out == b""                  # it was stopped before the first token
        gone = _wait_gone(host.pid, 10.0)
        print(f"Ctrl-C ({phase}): CLI ended in {took:.2f} s, host gone {gone} s later")
        assert gone is not None and took + gone < GONE_WITHIN_S
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
        _kill_if_alive(host.pid if host else None)
        cli.wait(5)


def test_cancel_stops_a_long_prompt_evaluation(starter_model):
    with EngineClient() as client:
        client.load(starter_model, n_ctx=2048, n_threads=1)
        # This machine's prompt speed, from a short prompt: how long the long one would take.
        short = [{"role": "user", "content": " ".join(f"w{i}" for i in range(60))}]
        done = [e for e in client.generate(short, SamplingParams(temperature=0.0, max_tokens=1))
                if isinstance(e, Done)][0]
        speed = done.prompt_tokens / done.prompt_seconds
        long = [{"role": "user", "content": " ".join(f"word{i}" for i in range(LONG_WORDS))}]
        asked_at: list[float] = []

        def cancel_soon() -> None:
            time.sleep(0.5)
            asked_at.append(time.monotonic())
            client.cancel()

        threading.Thread(target=cancel_soon).start()
        events = list(client.generate(long, SamplingParams(temperature=0.0, max_tokens=8)))
        ended = time.monotonic()
        done = events[-1]
        assert isinstance(done, Done) and done.finish_reason == "cancelled"
        assert not any(isinstance(e, Token) for e in events) and done.completion_tokens == 0
        full = done.prompt_tokens / speed            # what evaluating it all would have taken
        latency = ended - asked_at[0]
        print(f"cancel mid-prompt: {latency:.2f} s (the whole prompt: about {full:.1f} s)")
        assert latency < min(1.0, full / 3), (latency, full)
        # The half-evaluated prompt left nothing behind: the next reply is the greedy reply.
        paris = [{"role": "user", "content": "What is the capital of France?"}]
        greedy = SamplingParams(temperature=0.0, max_tokens=12)
        first = "".join(e.text for e in client.generate(paris, greedy) if isinstance(e, Token))
        client.unload()
        client.load(starter_model, n_ctx=2048, n_threads=1)
        fresh = "".join(e.text for e in client.generate(paris, greedy) if isinstance(e, Token))
        assert first == fresh and first.strip()


def test_a_cancel_token_stops_a_long_prompt_through_the_model_manager(starter_model):
    # The window's Stop button sets the reply job's CancelToken; no token has arrived yet to
    # look at it between, so the client must look at it while it waits.
    from quantdesk.core.cancel import CancelToken
    from quantdesk.core.runtime import LoadRequest, ModelManager
    models = ModelManager()
    try:
        host = models.load(LoadRequest(starter_model, n_ctx=2048, gpu_layers=0, n_threads=1))
        long = [{"role": "user", "content": " ".join(f"word{i}" for i in range(LONG_WORDS))}]
        token = CancelToken()
        asked_at: list[float] = []

        def cancel_soon() -> None:
            time.sleep(0.5)
            asked_at.append(time.monotonic())
            token.cancel()

        threading.Thread(target=cancel_soon).start()
        events = list(host.generate(long, SamplingParams(temperature=0.0, max_tokens=8), token))
        latency = time.monotonic() - asked_at[0]
        assert isinstance(events[-1], Done) and events[-1].finish_reason == "cancelled"
        assert len(events) == 1 and latency < 1.0, latency
    finally:
        models.shutdown()


HOSTILE_TEMPLATES = {
    "empty": ("{# renders nothing #}", "empty prompt"),
    "huge repeat": ("{{ 'x' * 1500000000 }}", "tried to make a repeated value"),
    "nested loops": ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
                     "{% endfor %}", "took longer than"),
    "syntax": ("{% for m in messages %}{{ m.content }", "is not valid Jinja"),
}


@pytest.mark.parametrize("name", list(HOSTILE_TEMPLATES))
def test_cli_chat_with_a_hostile_template_exits_2_with_one_line(starter_model, tmp_path, name):
    template, expected = HOSTILE_TEMPLATES[name]
    model = with_chat_template(starter_model, tmp_path / "hostile.gguf", template)
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "quantdesk.core.cli", "chat", str(model), "--prompt", "Hi",
         "--ctx", "512", "--gpu-layers", "0", "--threads", "1"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantdesk: the model's chat template ")
    assert expected in lines[0] and "Traceback" not in out.stderr
    assert time.monotonic() - start < 60
