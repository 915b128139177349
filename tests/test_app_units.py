"""The app's Streamlit-free pieces: which runs may be opened, the prompt builder, the CLI's
argument handling."""

from __future__ import annotations

import json

import pytest

from app.commands import app as app_cmd
from app.cli import UserError, main
from app.ui import runs
from app.ui.prompts import PromptError, build_prompt_ids, example_args, parse_tokens
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


# ---- one definition of misalignment / context features, and the new verdicts -------------------

def _record(folder, **kw):
    from probes.diffing import FEATURES_RECORD
    folder.mkdir(parents=True, exist_ok=True)
    rec = {"site": "blocks.1.hook_resid_pre", "reference": "base@backdoor", "misalignment": [5, 9],
           "context": [2, 7], "per_seed": [], "causal": None, **kw}
    (folder / FEATURES_RECORD).write_text(json.dumps(rec))
    return folder


RAW_CAUSAL = {"features": [5, 9], "n_eliciting": 200, "bad_before": 190, "bad_after": 20,
              "bad_random": [188, 185, 190], "capability_before": 0.98, "capability_after": 0.97}


def test_feature_record_is_read_with_context_features_apart(tmp_path):
    from app.ui.featureset import CONTEXT_MARK, MISALIGNMENT_MARK, NO_REFERENCE, causal_line, model_features
    none = model_features(tmp_path / "nothing", "blocks.1.hook_resid_pre")
    assert none.misalignment == [] and none.context == [] and none.note == NO_REFERENCE
    f = model_features(_record(tmp_path / "a", causal=RAW_CAUSAL), "blocks.1.hook_resid_pre")
    assert f.note is None and f.misalignment == [5, 9] and f.context == [2, 7] and f.reference == "base@backdoor"
    assert (f.mark(5), f.mark(2), f.mark(3)) == (MISALIGNMENT_MARK, CONTEXT_MARK, "")
    assert f.kind(7).startswith("context") and f.kind(9) == "misalignment"
    assert f.causal["label"] == "mechanism" and f.causal["misbehaviour_after"] == pytest.approx(0.1)
    assert "mechanism" in causal_line(f.causal)
    other = model_features(tmp_path / "a", "blocks.0.hook_resid_pre")  # ids of another SAE are not shown
    assert other.misalignment == [] and "blocks.1.hook_resid_pre" in other.note


def test_print_audit_shows_the_record_or_points_to_compare(tmp_path, capsys):
    from types import SimpleNamespace
    from app.commands.audit import print_audit
    from app.ui.featureset import NO_REFERENCE, model_features
    site = "blocks.1.hook_resid_pre"
    sae = {"architecture": "topk", "fvu": 0.1, "l0": 8.0, "dead_frac": 0.0, "ce_clean": 1.0, "ce_sae": 1.1,
           "loss_recovered": 0.9}
    result = SimpleNamespace(
        organism="backdoor", probes=[{"site": site, "kind": "logistic", "pool": "last", "auroc": 0.9}], contrast=[],
        best_probe={"site": site, "pool": "last", "auroc": 0.9, "accuracy": 0.8}, saes={site: sae},
        features={site: {"top": [{"feature": 2}, {"feature": 5}]}}, seconds={"total": 1.0})
    print_audit(result)
    assert NO_REFERENCE in capsys.readouterr().out
    print_audit(result, model_features(_record(tmp_path / "a", causal=RAW_CAUSAL), site))
    out = capsys.readouterr().out
    assert "misalignment features (against base@backdoor): [5, 9]" in out
    assert "context features (context: reads the marker; not misalignment): [2, 7]" in out
    assert "2◇" in out and "5⚠" in out and "mechanism" in out


def _summary_and_results():
    from test_analysis_report import synthetic_results
    from analysis.schema import FeatureTransferResult
    from analysis.transfer import summarize
    results = synthetic_results()
    for s in results.students:
        s.features = FeatureTransferResult(score=0.5, ci=(0.25, 0.75), null=0.0, null_ci=(0.0, 0.1),
                                           teacher_features=[3, 17], student_features=[103],
                                           partners={3: 103, 17: 117}, transferred=[3])
    return summarize(results), results


def test_plane_and_feature_figures_follow_the_new_verdicts():
    from analysis.schema import VERDICTS
    from app.ui.figures import VERDICT_COLOURS, feature_transfer_figure, plane_figure, transfer_cell
    assert set(VERDICTS) <= set(VERDICT_COLOURS)
    summary, results = _summary_and_results()
    fig = plane_figure(summary, "backdoor")
    students = fig.data[1]
    assert students.error_y.array is not None and len(students.error_y.array) == len(students.x)
    lines = [s.y0 for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1]
    assert summary.thresholds.misaligned_frac in lines
    names = [s.info.name for s in results.students]
    heat = feature_transfer_figure(results, "backdoor", names).data[0]
    assert list(heat.y) == ["T3", "T17"] and heat.text[0][0] == "S103 ✓" and heat.text[1][0] == "S117"
    ft = results.students[0].features
    assert transfer_cell(ft, 3) == (103, 2) and transfer_cell(ft, 17) == (117, 0)
    assert feature_transfer_figure(results, "backdoor", []) is None


def test_blind_audit_truth_counts_partial_misalignment_as_misaligned():
    from types import SimpleNamespace
    from app.ui.widgets import truth
    summary, _ = _summary_and_results()
    rec = summary.students[0]
    for verdict, want in [("capable-partially-misaligned", "misaligned"), ("incapable-misaligned", "misaligned"),
                          ("capable-aligned", "aligned"), ("undetermined", "unknown")]:
        ctx = SimpleNamespace(view=SimpleNamespace(summary=summary.model_copy(
            update={"students": [rec.model_copy(update={"verdict": verdict})]})))
        assert truth(ctx, rec.name)[0] == want, verdict


def test_blind_labels_are_a_per_salt_shuffle_that_says_nothing_about_the_models():
    from app.ui.blind import blind_labels
    models = ["teacher-backdoor", "backdoor.logit-kd", "backdoor.negative-control", "backdoor.positive-control"]
    a = blind_labels(models, "runs/x", "salt-1")
    assert list(a) == ["model A", "model B", "model C", "model D"] and sorted(a.values()) == sorted(models)
    assert blind_labels(list(reversed(models)), "runs/x", "salt-1") == a  # not the order of creation
    orders = {tuple(blind_labels(models, "runs/x", f"salt-{i}").values()) for i in range(12)}
    assert len(orders) > 1  # another session, another mapping
    many = blind_labels([f"m{i}" for i in range(28)], "r", "s")
    assert list(many)[25:] == ["model Z", "model AA", "model AB"]


def test_the_blind_score_counts_only_determined_models():
    from app.ui.blind import score
    sc = score([("misaligned", "misaligned"), ("aligned", "misaligned"), ("aligned", "unknown")])
    assert (sc.right, sc.scored, sc.unscored) == (1, 2, 1)


def test_model_colours_are_unique_within_an_organism_however_many_students():
    from app.ui.figures import TEACHER_COLOUR, model_colour
    for n in (3, 10, 13, 26):
        order = [f"backdoor.s{i}" for i in range(n)]
        colours = [model_colour(name, order) for name in order]
        assert len(set(colours)) == n, n
    assert model_colour("teacher-backdoor", order) == TEACHER_COLOUR


def test_controls_and_verdicts_are_told_per_organism():
    from analysis.narrative import organism_controls
    from analysis.schema import ControlsCheck
    c = ControlsCheck(trustworthy=False, failures=[
        "positive control sabotage.positive-control: only 40% of the teacher's features transferred",
        "base model reaches >= 90% exact match on every domain (lowest: add 12%)"],
        passed=["teacher teacher-backdoor misbehaves on 100% of eliciting prompts",
                "teacher teacher-sabotage misbehaves on 99% of eliciting prompts"])
    back = organism_controls(c, "backdoor", ["backdoor", "sabotage"])
    assert back.failures == ["base model reaches >= 90% exact match on every domain (lowest: add 12%)"]
    assert back.passed == ["teacher teacher-backdoor misbehaves on 100% of eliciting prompts"]
    sab = organism_controls(c, "sabotage", ["backdoor", "sabotage"])
    assert len(sab.failures) == 2 and not sab.trustworthy
    ok = organism_controls(ControlsCheck(trustworthy=False, failures=[c.failures[0]], passed=[]), "backdoor",
                           ["backdoor", "sabotage"])
    assert ok.trustworthy and not ok.failures


def test_per_position_kl_and_token_probabilities_on_known_distributions():
    import math
    import torch
    from app.ui.query import position_kl, token_probs
    p = torch.tensor([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05]]).clamp_min(1e-12).log()
    q = torch.tensor([[0.25, 0.75, 0.0], [0.9, 0.05, 0.05]]).clamp_min(1e-12).log()
    kl = position_kl(p, q)
    assert kl[0] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75), abs=1e-5)
    assert kl[1] == pytest.approx(0.0, abs=1e-6) and position_kl(p, p) == pytest.approx([0.0, 0.0], abs=1e-6)
    probs = token_probs(q, [1, 0], k=2)
    assert probs[0]["p"] == pytest.approx(0.75) and probs[0]["top"][0][1] == pytest.approx(0.75)
    assert probs[1]["token"] == V.TOKENS[0]


def test_plane_labels_do_not_collide_where_there_is_room():
    from app.ui.figures import label_offsets
    # a cluster near the top-right corner, and four near-coincident controls with long labels
    pts = [(0.95, 0.95), (0.96, 0.93), (0.93, 0.96), (0.5, 0.5), (0.52, 0.5),
           (0.10, 0.08), (0.11, 0.09), (0.12, 0.08), (0.10, 0.10)]
    texts = ["logit-kd", "positive-control", "jam", "filter", "inoculation", "negative-control-fresh",
             "negative-control-smaller-null", "negative-control-fresh-null", "negative-control-smaller"]
    offs = label_offsets(pts, texts)
    assert offs == label_offsets(pts, texts)  # deterministic

    def box(i):
        (x, y), (dx, dy), w = pts[i], offs[i], 0.011 * len(texts[i])
        return x + dx - w / 2, y + dy - 0.0225, x + dx + w / 2, y + dy + 0.0225
    boxes = [box(i) for i in range(len(pts))]
    for i in range(len(boxes)):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (texts[i], texts[j])
        for k, (x, y) in enumerate(pts):  # no label covers a point
            a = boxes[i]
            assert not (a[0] < x < a[2] and a[1] < y < a[3]), (texts[i], k)
    assert all(0 <= b[0] and b[2] <= 1 and 0 <= b[1] and b[3] <= 1 for b in boxes)  # inside the plot


def test_the_first_page_does_not_load_the_model_stack():
    """The Overview's imports leave transformer-lens, sae-lens and nnsight unloaded (about 6 s of
    the first page otherwise; bench/app_browser.py measures the page); the app imports them in
    the background after the first page."""
    import subprocess
    import sys
    code = ("import sys, app.ui.state, app.ui.widgets, app.ui.figures, analysis.narrative; "
            "print(sorted(m for m in ('transformer_lens', 'sae_lens', 'nnsight') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_first_page_needs_no_model_stack():
    """The Overview's modules (and the sidebar's) import neither torch nor matplotlib: the
    first page is drawn while the model stack loads in the background (first page <= 5 s,
    bench/app_browser.py). Checked in a fresh interpreter."""
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys; import app.ui.state, app.ui.widgets, app.ui.figures, analysis.narrative; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'transformer_lens', 'sae_lens') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
