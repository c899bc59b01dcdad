"""The documentation a user reads is in step with the code: the configuration reference is the one
``marl.reference`` generates from the dataclasses, and the README stays an entry page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from marl.reference import config_reference

REPO = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_generated_from_the_code():
    doc = (REPO / "docs" / "configuration.md").read_text()
    assert doc == config_reference(), "docs/configuration.md is stale: run `make docs`"
    for key in ("algo.epochs", "algo.team_advantage", "comm.graph", "sharing.diversity", "critic.ensemble"):
        assert key in doc, key


def test_reference_check_flag_fails_on_a_stale_file(tmp_path):
    out = subprocess.run([sys.executable, "-m", "marl.reference", "--check"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_is_an_entry_page_linking_every_doc():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 220
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in readme, doc.name
    for needle in ("make demo", "make test", "marl.train(", "marl.load_policy(", "marl.evaluate("):
        assert needle in readme, needle
