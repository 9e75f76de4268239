"""The bundle commands through ``hashbert.cli.main``: index build/info/add, search, and chat (in process and as
a subprocess fed by a pipe)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hashbert.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(_base_dual_encoder, small_corpus, module_tmp) -> dict[str, Path]:
    import torch

    torch.set_num_threads(1)
    work = module_tmp
    lines = (small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines()[:80]
    (work / "first.txt").write_text("\n".join(lines[:60]) + "\n", encoding="utf-8")
    (work / "more.txt").write_text("\n".join(lines[60:]) + "\n", encoding="utf-8")
    return {"dual": _base_dual_encoder.save(work / "dual"), "first": work / "first.txt", "more": work / "more.txt",
            "work": work}


def test_index_build_info_search_add(files, capsys):
    bundle = files["work"] / "bundles" / "b"
    argv = ["index", "build", "--out", str(bundle), "--model", str(files["dual"]), "--responses", str(files["first"])]
    assert main([*argv, "--no-progress", "--chunk-size", "16"]) == 0
    assert "60 responses, inner_product" in capsys.readouterr().out
    assert main(["index", "info", str(bundle)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pool_size"] == 60 and info["model_kind"] == "dual_encoder" and info["revision"] == 1
    assert main(["search", "--bundle", str(bundle), "--k", "3", "hi, how are you?", "great, and you?"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split(".")[0].strip() for line in shown[:3]] == ["1", "2", "3"] and "search" in shown[3]
    assert main(["index", "add", str(bundle), "--responses", str(files["more"]), "--no-progress"]) == 0
    assert "80 responses (revision 2)" in capsys.readouterr().out


def test_index_build_refuses_what_hashbert_did_not_write(files, capsys):
    other = files["work"] / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine", encoding="utf-8")
    argv = ["index", "build", "--out", str(other), "--model", str(files["dual"]), "--responses", str(files["first"])]
    assert main(argv) == 2
    assert "not written by hashbert" in capsys.readouterr().err and (other / "todo.txt").is_file()


def test_chat_in_process_picks_saves_and_loads(served_bundle, tmp_path, monkeypatch, capsys):
    saved = tmp_path / "chat.json"
    script = f"hello there\n\nhow was your day?\n2\n/save {saved}\n/reset\n/load {saved}\n/quit\nnever read\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    assert main(["chat", "--bundle", str(served_bundle), "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("bot: ") == 2 and "(saved 4 turns" in out and "(loaded 4 turns" in out
    turns = json.loads(saved.read_text(encoding="utf-8"))["turns"]
    assert [t["speaker"] for t in turns] == [0, 1, 0, 1] and turns[0]["text"] == "hello there"
    assert all(base64.b64decode(t["state"]) for t in turns)  # HDR: every turn carries its cached state


def test_chat_reads_piped_stdin(served_bundle):
    script = "hi, what are you up to?\nnot a number\n1\n/unknown\n"  # ends without /quit: end of input ends it
    result = subprocess.run(
        [sys.executable, "-m", "hashbert.cli", "chat", "--bundle", str(served_bundle), "--k", "2"],
        input=script, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "pick a number from 1 to 2" in result.stdout and result.stdout.count("bot: ") == 1
    assert "unknown command /unknown" in result.stdout
