"""``c2c up``'s ports: a second stack beside the first, and what the banner says of the
worker's metrics."""

from __future__ import annotations

from pathlib import Path

from starter.stack.components import UpOptions, banner, child_env


def test_an_offset_moves_every_port_the_worker_metrics_too() -> None:
    moved = UpOptions().shifted(10000)
    assert (moved.temporal_port, moved.ui_port, moved.sandbox_port, moved.api_port) == (
        17233,
        18233,
        18100,
        18000,
    )
    assert moved.worker_metrics_address("127.0.0.1:9464") == "127.0.0.1:19464"
    assert UpOptions(worker_metrics_port=20001).shifted(5).worker_metrics_port == 20006


def test_worker_metrics_off_stay_off_and_unset_follow_the_setting() -> None:
    off = UpOptions(worker_metrics_port=0).shifted(100)
    assert off.worker_metrics_address("127.0.0.1:9464") == ""
    assert UpOptions().worker_metrics_address("0.0.0.0:9500") == "0.0.0.0:9500"
    assert child_env(off, Path("s"), "x", worker_metrics="")["C2C_WORKER_METRICS_ADDRESS"] == ""


def test_an_offset_moves_the_configured_address_and_keeps_metrics_turned_off_off() -> None:
    moved = UpOptions().shifted(100)
    # C2C_WORKER_METRICS_ADDRESS: its port moves with the others, on the host it names.
    assert moved.worker_metrics_address("0.0.0.0:9500") == "0.0.0.0:9600"
    assert moved.worker_metrics_address("127.0.0.1:9464") == "127.0.0.1:9564"
    # Empty (metrics off in the settings): still off, and the banner says so.
    assert moved.worker_metrics_address("") == ""
    assert "(off) (worker)" in banner(moved, Path("s"), worker_metrics="")


def test_the_banner_says_where_worker_metrics_serve_or_that_they_do_not() -> None:
    options = UpOptions()
    assert "http://127.0.0.1:9464/metrics (worker)" in banner(
        options, Path("s"), worker_metrics="127.0.0.1:9464"
    )
    assert "(off) (worker)" in banner(options, Path("s"), worker_metrics="")
    silent = banner(options, Path("s"), worker_metrics="127.0.0.1:9464", serving=False)
    assert "not serving: 127.0.0.1:9464 did not answer" in silent
