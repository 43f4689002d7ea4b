"""`harness check` and `harness replay` as a user meets them after a run: a stored run folder judged again
gives the same verdicts and the same report bytes; an edited record is judged on what it now holds; a
scenario replayed from its folder runs again with its recorded seed, faults and SUT file, and a planted bug
it caught is caught again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario import SCENARIO_DIR
from harness.sut.config import reference_sut, to_toml
from tests.quality.test_planted_pipelines import planted_folder

HARNESS = [sys.executable, "-m", "harness.cli"]


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stored") / "run"
    done = _harness(
        "run",
        str(SCENARIO_DIR / "steady-state.yaml"),
        str(SCENARIO_DIR / "crash-after-side-effect.yaml"),
        "--report-dir",
        str(folder),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


def test_a_stored_run_is_judged_again_to_the_same_bytes(run_dir: Path) -> None:
    done = _harness("check", str(run_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reports identical to the originals, byte for byte" in done.stdout
    for name in ("report.json", "junit.xml", "report.html"):
        assert (run_dir / "recheck" / name).read_bytes() == (run_dir / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_every_nightly_scenario_stored_is_judged_again_to_the_same_bytes(tmp_path: Path) -> None:
    """The whole nightly suite (about 4 minutes, hence `-m slow`): every scenario's recorded run, read back
    from its folder, gets the verdict and the report bytes it got when it ran."""
    folder = tmp_path / "nightly"
    done = _harness("run", "nightly", "--report-dir", str(folder))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    again = _harness("check", str(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    for name in ("report.json", "junit.xml", "report.html"):
        assert (folder / "recheck" / name).read_bytes() == (folder / name).read_bytes(), name


def test_an_edited_record_is_judged_on_what_it_now_holds(run_dir: Path, tmp_path: Path) -> None:
    # A copy of the run whose final read lost one job: the same files judged again now find it lost.
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(run_dir, copy)
    final = copy / "steady-state" / "final.json"
    data = json.loads(final.read_text())
    gone = next(j for j in data["jobs"] if j["job_type"] == "tsa")
    data["jobs"] = [j for j in data["jobs"] if j is not gone]
    final.write_text(json.dumps(data))
    done = _harness("check", str(copy), "--scenario", "steady-state")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no_lost_job" in done.stdout


def test_a_bad_folder_is_one_line_exit_3(tmp_path: Path) -> None:
    done = _harness("check", str(tmp_path))
    assert done.returncode == 3 and done.stderr.count("\n") == 1, done.stderr
    assert "report.json" in done.stderr
    replay = _harness("replay", str(tmp_path))
    assert replay.returncode == 3 and "record.json" in replay.stderr, replay.stderr


def test_a_replayed_planted_bug_is_caught_again(tmp_path: Path) -> None:
    sut = tmp_path / "sut.toml"
    sut.write_text(to_toml(reference_sut(), planted_folder(tmp_path, "trigger-skips-events")))
    first = _harness(
        "run",
        str(SCENARIO_DIR / "steady-state.yaml"),
        "--sut",
        str(sut),
        "--report-dir",
        str(tmp_path / "first"),
    )
    assert first.returncode == 1, first.stdout + first.stderr
    again = _harness(
        "replay", str(tmp_path / "first" / "steady-state"), "--report-dir", str(tmp_path / "again")
    )
    assert again.returncode == 1, again.stdout + again.stderr
    assert "steady-state: original invalid" in again.stdout and "replay invalid" in again.stdout
    replayed = json.loads((tmp_path / "again" / "steady-state" / "record.json").read_text())
    recorded = json.loads((tmp_path / "first" / "steady-state" / "record.json").read_text())
    assert replayed["scenario"]["seed"] == recorded["scenario"]["seed"]
    assert replayed["scenario"]["faults"] == recorded["scenario"]["faults"]
    assert replayed["sut_file"] == recorded["sut_file"] == str(sut)
