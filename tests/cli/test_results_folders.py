"""Results folders are never mixed (issue 26, Deliver 2): ``--out`` over another result is
refused, ``--force`` replaces wsload's files only, a baseline inside ``--out`` is refused, and
a run that stopped on an error leaves a summary.json that ``wsload report`` renders."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from wsload.cli import app
from wsload.errors import ToolError
from wsload.report.outputs import write_report
from wsload.runner.frame import Output, RunFrame

SCENARIO = """
name = "{name}"
seed = 3
[target]
url = "builtin"
[load]
rate = 100
connections = 20
[[close]]
kind = "clean"
"""


def _run(tmp_path: Path, out: Path, *args: str, name: str = "folders") -> tuple[int, str]:
    scenario = tmp_path / f"{name}.toml"
    scenario.write_text(SCENARIO.format(name=name), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "-q", *args])
    return result.exit_code, result.output


def test_out_over_another_run_is_refused_and_force_replaces_only_wsload_files(
    tmp_path: Path,
) -> None:
    out = tmp_path / "res"
    assert _run(tmp_path, out, name="first")[0] == 0
    assert (out / "report.html").exists()
    code, output = _run(tmp_path, out, "--no-report", name="second")
    assert code == 2
    assert f"--out {out}: not empty" in output and "--force" in output
    assert len(output.strip().splitlines()) == 1
    assert "first" in (out / "scenario.toml").read_text(encoding="utf-8")  # untouched
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    code, _ = _run(tmp_path, out, "--no-report", "--force", name="second")
    assert code == 0
    assert not (out / "report.html").exists()  # the first run's report is gone, not mixed in
    assert json.loads((out / "summary.json").read_text("utf-8"))["scenario"]["name"] == "second"
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_an_unfinished_run_of_the_same_scenario_is_redone_in_place(tmp_path: Path) -> None:
    out = tmp_path / "res"
    out.mkdir()
    (out / "scenario.toml").write_text('name = "folders"\n', encoding="utf-8")
    (out / "summary.json").write_text('{"interrupted": true}', encoding="utf-8")
    (out / "report.html").write_text("old", encoding="utf-8")
    assert _run(tmp_path, out, "--no-report")[0] == 0
    assert not (out / "report.html").exists()
    assert json.loads((out / "summary.json").read_text("utf-8"))["interrupted"] is False
    # the same leftovers of another scenario are another result: refused
    (out / "summary.json").write_text('{"interrupted": true}', encoding="utf-8")
    assert _run(tmp_path, out, name="other")[0] == 2


def test_a_baseline_inside_out_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "ci"
    assert _run(tmp_path, base)[0] == 0
    code, output = _run(tmp_path, base, "--baseline", str(base), "--force")
    assert code == 2
    assert "is inside --out" in output
    code, _ = _run(tmp_path, base / "sub", "--baseline", str(base))
    assert code == 0  # a new folder beside, not over, the baseline's files


def test_a_run_that_stops_on_an_error_leaves_a_summary_report_renders(tmp_path: Path) -> None:
    out = tmp_path / "res"
    try:
        with RunFrame("broken", Output(out=out, quiet=True)) as frame:
            frame.write_scenario('name = "broken"\n')
            raise ToolError("the target process exited with 1 before listening")
    except ToolError:
        pass
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "fail"
    assert [r["message"] for r in summary["reasons"]] == [
        "the run did not finish: the target process exited with 1 before listening"
    ]
    assert summary["reasons"][0]["verdict"] == "fail"
    html = write_report(out).read_text(encoding="utf-8")
    assert 'id="verdict">FAIL' in html
    assert "the run did not finish: the target process exited with 1" in html
    # and the folder is redone in place by the same scenario
    assert _run(tmp_path, out, name="broken")[0] == 0
