"""Running a stage as a group of processes, one per GPU, launched with accelerate.

The worker writes the stage's job (configuration, examples, checkpoint to resume from)
into the run's work directory and runs `accelerate launch --num_processes N -m
hedgerow.training.distributed JOB`. It picks the checkpoint itself, so every rank resumes
from the same one. While the group trains, the worker relays the main rank's progress
lines to its own progress callback (the database, the CLI's bar); when the group ends, it
loads the model the main rank saved. A group that fails raises `TrainingFailure` with the
failing rank's error and the tail of the group's stderr.

The group is tied to the worker: it runs in its own session, Linux sends the launcher
SIGTERM when the worker dies (the launcher then stops its ranks, and each rank gets
SIGKILL if the launcher dies), and any exit from here with the group still running (an
exception, Ctrl-C) kills it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

from hedgerow.training.distributed import ERROR_FILE_PREFIX, LAUNCH_FLAG, PROGRESS_MARKER
from hedgerow.training.trainer import (
    Progress,
    ProgressCallback,
    TrainingConfig,
    TrainingFailure,
    TrainOutcome,
)

logger = logging.getLogger(__name__)

ENTRY_MODULE = "hedgerow.training.distributed"
# Lines of the group's stderr quoted in a failure reason.
STDERR_TAIL_LINES = 25
# After asking a group to stop, how long it gets before it is killed.
STOP_GRACE_SECONDS = 20
# Where the launcher's own report of a failed group starts (its log lines and traceback):
# the ranks' stderr above it says what went wrong.
LAUNCHER_REPORT_MARKERS = ("torch/distributed/elastic/", "torch.distributed.elastic.")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_command(config: TrainingConfig, job_path: Path, port: int) -> list[str]:
    command = [
        sys.executable,
        "-m",
        ENTRY_MODULE,
        LAUNCH_FLAG,
        str(os.getpid()),
        "--num_processes",
        str(config.num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "bf16" if config.bf16 else "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]
    if config.accelerate_config:
        # DeepSpeed, FSDP...: the operator's `accelerate config` says how.
        command += ["--config_file", config.accelerate_config]
    else:
        command.append("--multi_gpu")
    return [*command, "-m", ENTRY_MODULE, str(job_path)]


def run_stage_in_processes(
    stage: str,
    config: TrainingConfig,
    model: str,
    examples: list[dict[str, Any]],
    checkpoints_dir: Path,
    resume_from: Path | None,
    output_dir: Path,
    work_dir: Path,
    report: ProgressCallback,
) -> TrainOutcome:
    """Train `stage` ("sft" or "dpo") of `model` on `examples` in `config.num_processes`
    processes; returns the saved model, loaded for evaluation."""
    from hedgerow.training import stage_store

    job_dir = work_dir / f"{stage}-job"
    job_dir.mkdir(parents=True, exist_ok=True)
    errors_dir = job_dir / "errors"
    for stale in errors_dir.glob(f"{ERROR_FILE_PREFIX}*.json"):
        stale.unlink()
    examples_path = job_dir / "examples.jsonl"
    with examples_path.open("w", encoding="utf-8") as lines:
        for example in examples:
            lines.write(json.dumps(example, ensure_ascii=False) + "\n")
    job = {
        "stage": stage,
        "config": config.as_dict(),
        "model": model,
        "examples": str(examples_path),
        "checkpoints": str(checkpoints_dir),
        "resume_from": str(resume_from) if resume_from else None,
        "output": str(output_dir),
        "errors": str(errors_dir),
    }
    job_path = job_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=2), encoding="utf-8")
    command = launch_command(config, job_path, free_port())
    logger.info("launching %s processes for %s: %s", config.num_processes, stage, " ".join(command))
    stderr_path = job_dir / "stderr.log"
    with stderr_path.open("wb") as stderr:
        exit_code = _run_group(command, stderr, report)
    output = stderr_path.read_text(encoding="utf-8", errors="replace")
    if output.strip():
        logger.info("output of the %s processes:\n%s", stage, output.rstrip())
    if exit_code != 0 or stage_store.stage_facts(output_dir) is None:
        raise TrainingFailure(_failure_message(stage, exit_code, errors_dir, output))
    return stage_store.load_stage(output_dir, config)


def _run_group(command: list[str], stderr: IO[bytes], report: ProgressCallback) -> int:
    environment = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
        command,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=environment,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line.startswith(PROGRESS_MARKER):
                report(_progress(line.removeprefix(PROGRESS_MARKER)))
            elif line.strip():
                logger.info("%s", line)
        return process.wait()
    finally:
        _stop(process)


def _progress(payload: str) -> Progress:
    known = {field.name for field in fields(Progress)}
    values = {key: value for key, value in json.loads(payload).items() if key in known}
    return Progress(**values)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the whole group (launcher and ranks) if it is still running."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _failure_message(stage: str, exit_code: int, errors_dir: Path, output: str) -> str:
    errors = []
    for path in sorted(errors_dir.glob(f"{ERROR_FILE_PREFIX}*.json")):
        error = json.loads(path.read_text(encoding="utf-8"))
        errors.append(f"rank {error['rank']}: {error['error']}")
    what = "; ".join(errors) if errors else f"exit code {exit_code}"
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if any(marker in line for marker in LAUNCHER_REPORT_MARKERS):
            lines = lines[:index]
            break
    tail = "\n".join(lines[-STDERR_TAIL_LINES:]).strip()
    message = f"The {stage.upper()} training processes failed ({what})."
    if "out of memory" in output.lower():
        message += (
            " Out of memory: lower HEDGEROW_TRAINING_BATCH_SIZE or HEDGEROW_TRAINING_MAX_LENGTH, "
            "raise HEDGEROW_TRAINING_GRADIENT_ACCUMULATION, or train with LoRA."
        )
    if tail:
        message += f"\nLast lines of their stderr:\n{tail}"
    return message
