"""The harness's pure helpers, without any service."""

from __future__ import annotations

import os

import pytest

from bench.harness import metrics
from bench.harness.services import TargetRefused, check_targets


def test_percentiles_interpolate_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert metrics.percentile(values, 50) == pytest.approx(50.5)
    assert metrics.percentile(values, 99) == pytest.approx(99.01)
    assert metrics.percentile([], 50) is None


def test_it_refuses_to_drop_a_database_not_named_bench():
    with pytest.raises(TargetRefused, match="must contain 'bench'"):
        check_targets("postgres://postgres@127.0.0.1/socialgrid", "redis://127.0.0.1/3")


@pytest.mark.parametrize("db", [0, 1, 2])
def test_it_refuses_to_flush_the_protected_redis_databases(db):
    with pytest.raises(TargetRefused, match="protected"):
        check_targets("postgres://postgres@127.0.0.1/sg_bench_run", f"redis://127.0.0.1/{db}")


def test_it_reads_its_own_cpu_time_and_memory():
    assert metrics.cpu_seconds(os.getpid()) > 0
    assert metrics.peak_rss_kib(os.getpid()) > 0
    assert metrics.cpu_seconds(2**22 + 1) is None


def test_the_table_aligns_values_and_names_each_section_once():
    text = metrics.render_table(
        [("a", "one", "1.0", "x"), ("a", "two", "22.50", ""), ("b", "three", "n/a", "y")]
    )
    lines = text.splitlines()
    assert lines[2].startswith("a ")
    assert lines[3].startswith("  ")
    assert lines[2].index("1.0") + 3 == lines[3].index("22.50") + 5
    assert "" in lines
    assert lines[-1].startswith("b ")
