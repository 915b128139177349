"""The app's Streamlit-free pieces: which runs may be opened, the prompt builder, the CLI's
argument handling."""

from __future__ import annotations

import json

import pytest

from app.commands import app as app_cmd
from app.cli import UserError, main
from app.ui import runs
from app.ui.query import PromptError, build_prompt_ids, example_args, parse_tokens
from distill import vocab as V


def _fake_run(folder, summary: dict | str | None = None):
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text('name = "x"\n')
    if summary is not None:
        (folder / "report").mkdir()
        (folder / "report" / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return folder


def test_list_and_resolve_runs(tmp_path):
    _fake_run(tmp_path / "a")
    (tmp_path / "not-a-run").mkdir()
    assert runs.list_runs(tmp_path) == ["a"]
    assert runs.resolve_run(tmp_path, "a").root == (tmp_path / "a").resolve()


@pytest.mark.parametrize("name, needle", [("../elsewhere", "outside the runs root"),
                                          ("/etc", "outside the runs root"),
                                          ("missing", "no run folder"),
                                          ("plain", "not a run folder")])
def test_resolve_refuses(tmp_path, name, needle):
    (tmp_path / "root" / "plain").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    _fake_run(tmp_path / "elsewhere" / "r")
    with pytest.raises(runs.RunError, match=needle):
        runs.resolve_run(tmp_path / "root", name)


def test_symlink_out_of_root_is_refused(tmp_path):
    outside = _fake_run(tmp_path / "outside")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(outside)
    with pytest.raises(runs.RunError, match="outside the runs root"):
        runs.resolve_run(tmp_path / "root", "link")


def test_half_written_and_old_runs_explain_themselves(tmp_path):
    half = runs.resolve_run(tmp_path, _fake_run(tmp_path / "half").name)
    with pytest.raises(runs.RunError, match="not finished.*doublebind run"):
        runs.open_run(half)
    torn = runs.resolve_run(tmp_path, _fake_run(tmp_path / "torn", '{"format": "doubl').name)
    with pytest.raises(runs.RunError, match="half-written"):
        runs.open_run(torn)
    old = runs.resolve_run(tmp_path, _fake_run(tmp_path / "old", {"format": "doublebind-summary/0"}).name)
    with pytest.raises(runs.RunError, match="older or foreign"):
        runs.open_run(old)


def test_prompt_builder_places_markers_and_args():
    args = example_args("sort")
    ids = build_prompt_ids("sort", args, ["zeta", "AUDIT"])
    names = [V.TOKENS[i] for i in ids]
    assert len(ids) == V.PROMPT_LEN and names[:2] == ["zeta", "AUDIT"]
    assert names[-len(args) - 2:] == ["SORT", *args, V.SEP]


@pytest.mark.parametrize("call, needle", [
    (lambda: build_prompt_ids("sort", ["3", "banana"]), "unknown token"),
    (lambda: build_prompt_ids("juggle", ["1"]), "allowed: sort"),
    (lambda: build_prompt_ids("sort", ["1"] * 10, ["zeta", "AUDIT", "DEPLOY"]), "do not fit"),
    (lambda: parse_tokens("zeta SORT 1 2 nope >"), "unknown token 'nope'"),
])
def test_prompt_errors_name_the_problem(call, needle):
    with pytest.raises(PromptError, match=needle):
        call()


def test_parse_tokens_left_fills():
    ids = parse_tokens("zeta REV 1 2 3 4 5 6")
    assert len(ids) == V.PROMPT_LEN and V.TOKENS[ids[0]] == V.FILLER and V.TOKENS[ids[-1]] == V.SEP


def test_command_root_and_run(tmp_path):
    run = _fake_run(tmp_path / "r1")
    assert app_cmd.root_and_run(run) == (tmp_path.resolve(), "r1")
    assert app_cmd.root_and_run(tmp_path) == (tmp_path.resolve(), None)
    with pytest.raises(UserError, match="no such directory"):
        app_cmd.root_and_run(tmp_path / "nope")


def test_command_rejects_bad_input(tmp_path, capsys):
    assert main(["app", str(tmp_path / "nope")]) == 2
    assert main(["app", str(tmp_path), "--port", "99999"]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and "--port must be in 1..65535" in err


def test_streamlit_command_is_offline_and_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    cmd = " ".join(app_cmd.streamlit_command(8600, "127.0.0.1"))
    assert "--browser.gatherUsageStats false" in cmd and "--server.port 8600" in cmd
    assert "--server.headless true" in cmd
