"""The upload page's import progress: kept per partner and upload id while the import runs."""

from __future__ import annotations

import pytest

from tessera.admin.stock_pages import ImportProgress


def test_an_import_reports_its_progress_while_it_runs_and_is_forgotten_after() -> None:
    progress = ImportProgress()
    with progress.track(7, "0f1e2d3c-aaaa-bbbb") as update:
        assert update is not None
        assert progress.of(7, "0f1e2d3c-aaaa-bbbb") == (0, 0)
        update(512, 2048)
        assert progress.of(7, "0f1e2d3c-aaaa-bbbb") == (512, 2048)
    assert progress.of(7, "0f1e2d3c-aaaa-bbbb") is None


def test_another_partner_cannot_read_it() -> None:
    progress = ImportProgress()
    with progress.track(7, "0f1e2d3c-aaaa-bbbb") as update:
        assert update is not None
        update(1, 2)
        assert progress.of(8, "0f1e2d3c-aaaa-bbbb") is None


def test_a_failed_import_is_forgotten_too() -> None:
    progress = ImportProgress()
    with pytest.raises(RuntimeError), progress.track(7, "0f1e2d3c-aaaa-bbbb"):
        raise RuntimeError("the file was refused")
    assert progress.of(7, "0f1e2d3c-aaaa-bbbb") is None


@pytest.mark.parametrize("upload_id", [None, "", "short", "x" * 41, "not hex at all!", "../../etc"])
def test_without_a_usable_id_nothing_is_tracked(upload_id: str | None) -> None:
    progress = ImportProgress()
    with progress.track(7, upload_id) as update:
        assert update is None
