"""Issue 5: `discovery locate` finds a person's labelled photos on every shared face set."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from conftest import labelled, shared_path
from helpers import cli

DATASETS = ["deepface", "face_recognition", "openface"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_locate_recall_and_precision(dataset, tmp_path, settings):
    root = shared_path("faces", dataset)
    images = labelled(dataset)
    library = settings.library
    assert cli(library, "init").exit_code == 0
    assert cli(library, "users", "add", "cus", "--role", "custodian").exit_code == 0
    statement = tmp_path / "statement.txt"
    statement.write_text("I will use vault access only for this matter.")
    assert (
        cli(library, "attest", "cus", "--statement-file", str(statement), user="cus").exit_code == 0
    )
    result = cli(library, "ingest", str(root), "--json")
    assert result.exit_code == 0, result.output

    truth: dict[str, set[str]] = defaultdict(set)
    for path, identity in images:
        truth[identity].add(str(path.resolve()))
    found_total = relevant_total = false_total = 0
    for identity, paths in sorted(truth.items()):
        reference = sorted(paths)[0]
        located = cli(library, "discovery", "locate", "--photo", reference, "--matter",
                      f"test {identity}", "--include-vault", "--json", user="cus")  # fmt: skip
        assert located.exit_code == 0, located.output
        photos = json.loads(located.stdout)["photos"]
        found = {s["locator"] for p in photos for s in p["provenance"]}
        found_total += len(paths & found)
        relevant_total += len(paths)
        # A located photo labelled as someone else is a false match.
        others = {p for i, ps in truth.items() if i != identity for p in ps}
        false_total += len(found & others)
    recall = found_total / relevant_total
    assert recall >= 0.95, f"{dataset}: locate found {recall:.3f} of the labelled photos"
    assert false_total <= 0.05 * relevant_total, f"{dataset}: {false_total} false matches"
