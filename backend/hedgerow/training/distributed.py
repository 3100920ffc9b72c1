"""Entry point of every process of a multi-process stage (`launch.py` starts them with
`accelerate launch ... -m hedgerow.training.distributed JOB`), and of the launcher itself
(`--launch`, which ties it to the worker, then becomes `accelerate launch`).

Each rank trains its share of every batch (DDP: gradients averaged across ranks); the
main rank alone reports progress (JSON lines on stdout, which the worker turns into
database rows) and saves the stage's model for the worker. A rank that fails writes its
error for the worker's failure reason, then exits non-zero, which ends the group.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hedgerow.training.trainer import Progress, TrainingConfig, TrainingFailure

PROGRESS_MARKER = "HEDGEROW_PROGRESS "
# `-m hedgerow.training.distributed --launch WORKER_PID ARGS`: start the launcher.
LAUNCH_FLAG = "--launch"
ERROR_FILE_PREFIX = "rank-"


def die_with_parent(signal_number: int) -> None:
    """Ask Linux to send `signal_number` when the parent process dies, so no rank keeps
    training after the worker that launched the group is gone (elsewhere: no-op)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal_number)
    except OSError:
        return


def exec_launcher(worker_pid: int, arguments: list[str]) -> None:
    """Become `accelerate launch ARGUMENTS`, set to get SIGTERM when the worker dies (the
    setting survives exec; safer than a hook between fork and exec in a threaded
    worker). On SIGTERM the launcher stops its ranks."""
    die_with_parent(signal.SIGTERM)
    if os.getppid() != worker_pid:  # the worker died before the line above
        sys.exit(1)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", *arguments]
    os.execv(sys.executable, launcher)  # noqa: S606 - our own interpreter and module


def print_progress(progress: Progress) -> None:
    print(PROGRESS_MARKER + json.dumps(asdict(progress)), flush=True)


def run_job(job: dict[str, Any]) -> None:
    from accelerate import PartialState

    from hedgerow.training import dpo, stage_store, trainer

    config = TrainingConfig(**job["config"])
    with Path(job["examples"]).open(encoding="utf-8") as lines:
        examples = [json.loads(line) for line in lines if line.strip()]
    checkpoints = Path(job["checkpoints"])
    resume_from = Path(job["resume_from"]) if job["resume_from"] else None
    if job["stage"] == "dpo":
        outcome = dpo.train_dpo(
            config, job["model"], examples, checkpoints, print_progress, resume_from=resume_from
        )
    else:
        outcome = trainer.train(
            config, job["model"], examples, checkpoints, print_progress, resume_from=resume_from
        )
    if PartialState().is_main_process:
        stage_store.save_stage(outcome, Path(job["output"]))


def main(job_path: str) -> int:
    die_with_parent(signal.SIGKILL)
    job: dict[str, Any] = json.loads(Path(job_path).read_text(encoding="utf-8"))
    rank = int(os.environ.get("RANK", "0"))
    try:
        run_job(job)
    except Exception as error:
        message = (
            str(error) if isinstance(error, TrainingFailure) else f"{type(error).__name__}: {error}"
        )
        errors = Path(job["errors"])
        errors.mkdir(parents=True, exist_ok=True)
        (errors / f"{ERROR_FILE_PREFIX}{rank}.json").write_text(
            json.dumps({"rank": rank, "error": message[:2000]}), encoding="utf-8"
        )
        traceback.print_exc()
        return 1
    finally:
        import torch.distributed

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == LAUNCH_FLAG:
        exec_launcher(int(sys.argv[2]), sys.argv[3:])
    sys.exit(main(sys.argv[1]))
