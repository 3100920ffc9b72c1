"""Job health: every Celery job run is recorded in Redis for the status page."""

from __future__ import annotations

from hedgerow.growth.jobs import top_up_lotteries_job
from hedgerow.ops.job_health import job_runs


def test_a_job_run_is_recorded_with_its_outcome(database_url: str) -> None:
    assert job_runs()["growth.top_up_lotteries"] == {}
    top_up_lotteries_job.apply()
    run = job_runs()["growth.top_up_lotteries"]
    assert run["state"] == "SUCCESS" and run["at"].tzinfo is not None
