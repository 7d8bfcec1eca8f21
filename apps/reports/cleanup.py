"""Deleting old generated report files, strictly inside the reports storage area."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from apps.reports.results import FileCleanupResult


class OutsideReportsArea(ValueError):
    """A path that does not resolve inside the reports storage area."""


def reports_root() -> Path:
    return (Path(settings.MEDIA_ROOT) / "reports").resolve()


def resolve_inside_reports(dir_path: str) -> Path:
    root = reports_root()
    candidate = Path(dir_path)
    target = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not target.is_relative_to(root):
        raise OutsideReportsArea(f"{dir_path!r} is outside the reports storage area")
    return target


def delete_old_files(
    dir_path: str, hours_old: float = 12, now: float | None = None
) -> FileCleanupResult:
    if hours_old < 0:
        raise ValueError("hours_old must not be negative")
    folder = resolve_inside_reports(dir_path)
    cutoff = (now or time.time()) - hours_old * 3600
    deleted = kept = 0
    if folder.is_dir():
        for path in folder.rglob("*"):
            # Only regular files whose real location is still inside the area (no symlink way out).
            if (
                path.is_symlink()
                or not path.is_file()
                or not path.resolve().is_relative_to(reports_root())
            ):
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
            else:
                kept += 1
    return {"deleted": deleted, "kept": kept}
