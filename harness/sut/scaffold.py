"""`harness init [DIR]`: the files a team needs to run the harness on its own pipeline.

Writes a commented SUT file (`harness.toml`), a scenarios folder with one example (`chaos/`), a contracts
config (`contracts.toml`), and CI files that run the nightly chaos suite on a schedule and the contracts and the
pre-release gate on pull requests: a GitHub Actions workflow and a GitLab CI file. Nothing is overwritten:
a file that exists is kept and said so. Where the folder already holds a migrations folder, the SUT file
points at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput

TEMPLATES = Path(__file__).with_name("templates")
# template -> where it goes, relative to the folder
FILES = {
    "harness.toml": "harness.toml",
    "example-scenario.yaml": "chaos/example.yaml",
    "contracts.toml": "contracts.toml",
    "github-workflow.yml": ".github/workflows/pipeline-harness.yml",
    "gitlab-ci.yml": ".gitlab/pipeline-harness.gitlab-ci.yml",
}


@dataclass(frozen=True)
class Written:
    path: Path
    created: bool  # False: it was there already and is kept


def find_migrations(folder: Path) -> str:
    """The first folder named `migrations` holding .sql files (at most three levels down), relative."""
    for depth in range(1, 4):
        for candidate in sorted(folder.glob("/".join(["*"] * depth))):
            if candidate.is_dir() and candidate.name == "migrations" and any(candidate.glob("*.sql")):
                return candidate.relative_to(folder).as_posix()
    return "db/migrations"


def scaffold(folder: Path) -> list[Written]:
    """Write the starter files into `folder` (created if missing); existing files are kept."""
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} is a file; give harness init a folder (or nothing, for this one)")
    folder.mkdir(parents=True, exist_ok=True)
    values = {
        "@NAME@": folder.resolve().name or "our-pipeline",
        "@MIGRATIONS@": find_migrations(folder),
        "@SCENARIOS@": "chaos",
        "@SUT@": "harness.toml",
    }
    written = []
    for template, target in FILES.items():
        path = folder / target
        if path.exists():
            written.append(Written(path, False))
            continue
        text = (TEMPLATES / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(Written(path, True))
    return written
