"""Integration tests for versioning.report: the PNG and HTML logged per compare run.

The files are rendered for realistic decision records (promote, keep with
identical predictions, no_challenger without a table, several challengers),
checked as files (valid PNG, self-contained escaped HTML), and the page is
opened in headless Chromium to prove a real browser renders it.
"""

from __future__ import annotations

import base64
import copy
import html
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from versioning.report import (
    render_contingency_png,
    render_report_html,
    wilson_interval,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")

_VERSIONS = {"mlflow": "3.17.2", "scikit-learn": "1.9.1", "mlxtend": "0.25.0"}
_TEST_SET = {"data_run_id": "d" * 32, "digest": "sha256:5f2c9a", "n_rows": 2000}
_POLICY = {"primary_metric": "accuracy", "tie_breaker": None, "min_delta": None}


def _model(version: str, family: str, accuracy: float, run_id: str) -> dict[str, Any]:
    return {
        "name": "classifier",
        "version": version,
        "run_id": run_id,
        "family": family,
        "accuracy": accuracy,
        "metrics": {"accuracy": accuracy, "f1": accuracy - 0.001, "precision": accuracy,
                    "recall": accuracy - 0.002},
    }


def promote_record() -> dict[str, Any]:
    return {
        "decision": "promote",
        "reason": "Promoted the challenger: accuracy 0.9635 vs 0.9005 and McNemar "
                  "corrected p = 1.4e-23 < alpha 0.05.",
        "dry_run": False,
        "alpha": 0.05,
        "registered_model_name": "classifier",
        "champion": _model("1", "logistic_regression", 0.9005, "a" * 32),
        "challenger": _model("2", "random_forest", 0.9635, "b" * 32),
        "table": [[1786, 15], [141, 58]],
        "n": 2000, "b": 15, "c": 141,
        "method": "corrected", "statistic": 100.16, "p_value": 1.4e-23,
        "p_values": {"exact": 2.1e-26, "midp": 1.1e-26, "corrected": 1.4e-23,
                     "asymptotic": 6.3e-24},
        "delta": {"metric": "accuracy", "value": 0.063, "ci_low": 0.051, "ci_high": 0.075,
                  "confidence": 0.95, "method": "newcombe"},
        "policy": dict(_POLICY),
        "test_set": dict(_TEST_SET),
        "versions": dict(_VERSIONS),
        "run_id": "c" * 32,
    }


def keep_identical_record() -> dict[str, Any]:
    """Identical predictions: b + c = 0, so the test has nothing to say."""
    return {
        "decision": "keep",
        "reason": "Kept the champion: the models disagree on no test row (b + c = 0).",
        "dry_run": True,
        "alpha": 0.05,
        "registered_model_name": "classifier",
        "champion": _model("3", "logistic_regression", 0.95, "a" * 32),
        "challenger": _model("4", "logistic_regression", 0.95, "b" * 32),
        "table": [[1900, 0], [0, 100]],
        "n": 2000, "b": 0, "c": 0,
        "method": "exact", "statistic": None, "p_value": 1.0,
        "p_values": {"exact": 1.0, "midp": 1.0, "corrected": None, "asymptotic": None},
        "delta": {"metric": "accuracy", "value": 0.0, "ci_low": -0.0019, "ci_high": 0.0019,
                  "confidence": 0.95, "method": "newcombe"},
        "policy": dict(_POLICY),
        "test_set": dict(_TEST_SET),
        "versions": dict(_VERSIONS),
        "run_id": "e" * 32,
    }


def no_challenger_record() -> dict[str, Any]:
    """No challenger: no table, no test; several fields missing or null."""
    return {
        "decision": "no_challenger",
        "reason": "No candidate run newer than the champion; nothing to compare.",
        "dry_run": False,
        "alpha": 0.05,
        "registered_model_name": "classifier",
        "champion": _model("2", "random_forest", 0.9635, "b" * 32),
        "challenger": None,
        "table": None,
        "p_value": None,
        "policy": dict(_POLICY),
        "versions": dict(_VERSIONS),
        "run_id": "f" * 32,
    }


def multi_record() -> dict[str, Any]:
    record = promote_record()
    record["reason"] = ("Promoted v2: best of 3 eligible challengers after Holm adjustment "
                        "(p_adj = 4.2e-23 < 0.05).")
    record["comparisons"] = [
        {"version": "2", "table": [[1786, 15], [141, 58]], "p_value": 1.4e-23,
         "p_adjusted": 4.2e-23, "metrics": {"accuracy": 0.9635}, "eligible": True,
         "why": "significant and better"},
        {"version": "3", "table": [[1780, 21], [40, 159]], "p_value": 0.021,
         "p_adjusted": 0.042, "metrics": {"accuracy": 0.91}, "eligible": True,
         "why": "significant and better"},
        {"version": "4", "table": [[1750, 51], [45, 154]], "p_value": 0.61,
         "p_adjusted": 0.61, "metrics": {"accuracy": 0.8975}, "eligible": False,
         "why": "not significant <p_adj >= alpha>"},
        {"version": "5", "table": None, "p_value": None, "p_adjusted": None,
         "metrics": {"accuracy": 0.88}, "eligible": False, "why": "predictions missing"},
    ]
    return record


RECORDS = {
    "promote": promote_record,
    "keep_identical": keep_identical_record,
    "no_challenger": no_challenger_record,
    "multi": multi_record,
}


def _assert_valid_png(path: Path, min_width: int = 400, min_height: int = 250) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, f"tiny image {width}x{height}"
    assert width <= 4000 and height <= 4000, f"huge image {width}x{height}"
    rgb = image[..., :3]
    assert float(rgb.std()) > 0.01, "image is a single flat colour"
    distinct = np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(distinct) > 20, f"only {len(distinct)} distinct colours"


def _external_refs(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, flags=re.I)


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_write_report_renders_png_and_self_contained_html(kind: str, tmp_path: Path) -> None:
    record = RECORDS[kind]()
    out_dir = tmp_path / "nested" / "report"  # write_report creates missing dirs
    paths = write_report(record, out_dir)

    assert [p.name for p in paths] == ["contingency.png", "report.html"]
    assert all(p.parent == out_dir and p.is_file() for p in paths)
    png_path, html_path = paths
    _assert_valid_png(png_path)

    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert re.search(r"<title>[^<]*classifier[^<]*" + re.escape(record["decision"]), page)
    assert record["decision"] in page
    assert html.escape(record["reason"], quote=True) in page
    # The embedded image is exactly the PNG written next to it.
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match, "PNG is not embedded as a data URI"
    assert base64.b64decode(match.group(1)) == png_path.read_bytes()
    assert _external_refs(page) == [], "page references external resources"
    assert "<link" not in page.lower() and "<script" not in page.lower()
    assert "@import" not in page and "url(" not in page


def test_promote_report_shows_key_numbers(tmp_path: Path) -> None:
    record = promote_record()
    _, html_path = write_report(record, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    for expected in (
        "logistic_regression", "random_forest", "0.9005", "0.9635",
        "1.40e-23", "2.10e-26", "1.10e-26", "6.30e-24",  # all four p-values
        "100.1600", "corrected", "+0.0630", "+0.0510", "+0.0750", "newcombe",
        "sha256:5f2c9a", "3.17.2", "1.9.1", "0.25.0", "2,000", ">15<", ">141<",
    ):
        assert expected in page, f"{expected!r} missing from report"


def test_keep_identical_and_no_challenger_degrade_gracefully(tmp_path: Path) -> None:
    page = write_report(keep_identical_record(), tmp_path / "keep")[1].read_text("utf-8")
    assert "dry run" in page
    assert "n/a" in page  # the null statistic is shown as n/a, not "None"
    assert "None" not in page

    page = write_report(no_challenger_record(), tmp_path / "none")[1].read_text("utf-8")
    assert "None" not in page
    assert "No challenger" in page


def test_multi_comparison_lists_every_challenger(tmp_path: Path) -> None:
    record = multi_record()
    png_path, html_path = write_report(record, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert "All challengers (4)" in page
    assert page.count('class="selected"') == 1
    assert "not significant &lt;p_adj &gt;= alpha&gt;" in page
    assert "predictions missing" in page
    # The extra panel makes the figure taller than the two-panel one.
    single = render_contingency_png(promote_record(), tmp_path / "single.png")
    assert matplotlib.image.imread(png_path).shape[0] > matplotlib.image.imread(single).shape[0]


def test_user_controlled_strings_are_escaped(tmp_path: Path) -> None:
    record = multi_record()
    evil = '<script>alert("x")</script>'
    record["reason"] = f"Promoted {evil} & more"
    record["registered_model_name"] = f'clf"><img src=x onerror=alert(1)>'
    record["champion"]["family"] = evil
    record["comparisons"][1]["why"] = evil
    record["decision"] = "promote<b>"
    page = write_report(record, tmp_path)[1].read_text(encoding="utf-8")

    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Promoted &lt;script&gt;" in page and "&amp; more" in page
    assert "clf&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_malformed_and_minimal_records_do_not_crash(tmp_path: Path) -> None:
    bootstrap = {"decision": "bootstrap", "reason": "First model registered.",
                 "challenger": {"name": "classifier", "version": "1", "accuracy": 0.9}}
    broken = promote_record()
    broken["table"] = [[1, 2, 3]]  # not 2x2: rendered as "no table"
    broken["p_values"] = "garbage"
    broken["comparisons"] = [None, {"version": "9", "table": [["x", 1], [2, 3]]}]
    for index, record in enumerate(({}, bootstrap, broken)):
        png_path, html_path = write_report(record, tmp_path / str(index))
        _assert_valid_png(png_path)
        assert "<html" in html_path.read_text(encoding="utf-8")


def test_render_functions_are_usable_separately(tmp_path: Path) -> None:
    record = copy.deepcopy(promote_record())
    png = render_contingency_png(record, tmp_path / "a" / "c.png")
    out = render_report_html(record, png, tmp_path / "b" / "r.html")
    assert png.is_file() and out.is_file()
    assert record == promote_record(), "renderers must not mutate the record"


def test_wilson_interval_matches_statsmodels() -> None:
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for successes, n in ((1801, 2000), (1927, 2000), (0, 10), (10, 10), (7, 13)):
        low, high = wilson_interval(successes, n)
        ref_low, ref_high = proportion.proportion_confint(successes, n, alpha=0.05,
                                                          method="wilson")
        assert low == pytest.approx(ref_low, abs=1e-9)
        assert high == pytest.approx(ref_high, abs=1e-9)
    assert wilson_interval(0, 0) is None


def test_import_leaves_global_matplotlib_state_alone() -> None:
    # Read rcParams through dict.items: RcParams["backend"] would itself resolve the
    # backend and import pyplot, which is exactly what this test must not trigger.
    code = (
        "import sys, matplotlib\n"
        "before = dict(dict.items(matplotlib.rcParams))\n"
        "import versioning.report\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'report imported pyplot'\n"
        "after = dict(dict.items(matplotlib.rcParams))\n"
        "changed = {k for k in before if before[k] != after[k]}\n"
        "assert not changed, changed\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["promote", "multi"])
def test_report_renders_in_headless_chromium(kind: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed: the headless-browser check needs Debian "
                    "chromium (CI installs it; apt-get install chromium)")
    _, html_path = write_report(RECORDS[kind](), tmp_path / "report")
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={shot}",
        "--window-size=1200,1600", html_path.resolve().as_uri(),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    except subprocess.TimeoutExpired:
        pytest.fail("headless chromium did not finish within 120 s")
    assert shot.is_file(), f"no screenshot (rc={result.returncode}):\n{result.stderr[-2000:]}"
    image = matplotlib.image.imread(shot)
    assert image.shape[1] == 1200 and image.shape[0] >= 1000
    rgb = image[..., :3]
    assert float(rgb.std()) > 0.02, "screenshot is blank"
    distinct = np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(distinct) > 200, f"screenshot has only {len(distinct)} colours"
