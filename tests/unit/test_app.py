"""The Celery configuration docproc's settings make."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from docproc.app import celery_config
from docproc.settings import load_settings


def test_delivery_settings_are_what_the_readme_says(make_config: Callable[..., Path]) -> None:
    for hard, soft in ((60, 50), (7200, 7000)):
        settings = load_settings(make_config(workers={"task_time_limit": hard,
                                                      "task_soft_time_limit": soft}), environ={})
        config = celery_config(settings)
        assert config["task_acks_late"] is True
        assert config["task_reject_on_worker_lost"] is True
        assert config["accept_content"] == ["json"]
        assert config["task_serializer"] == config["result_serializer"] == "json"
        assert config["broker_transport_options"]["visibility_timeout"] > hard
        assert config["broker_connection_max_retries"] is None  # connection retries forever


