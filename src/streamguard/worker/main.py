"""`streamguard worker`: load and check every input file, then run the faust worker.

Everything that can be wrong with the operator's files is found before the first connection to
Kafka, and reported in one line with a non-zero exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys

from streamguard.core.registry import load_agencies_csv
from streamguard.core.statutes import load_statutes
from streamguard.exceptions import InputFileError, StreamguardError, error_line
from streamguard.settings import ENV_PREFIX, WorkerSettings, settings_table
from streamguard.worker.app import StreamguardWorker, build_worker
from streamguard.worker.keys import KeyRing
from streamguard.worker.metrics import StreamguardMetrics
from streamguard.worker.startup import FatalRecordFilter, describe_failure, wait_for_broker

__all__ = ("load_salt", "main_worker", "prepare_worker")

log = logging.getLogger("streamguard.worker")
_SALT_FILE = "plate_salt"


def load_salt(settings: WorkerSettings) -> bytes:
    """The plate-hash salt: the setting, else DATA_DIR/plate_salt (created once, mode 0600).

    A generated salt must survive restarts, or the same plate would hash differently before and
    after one and the audit trail could no longer join its records.
    """
    if settings.plate_salt is not None:
        return settings.plate_salt.encode()
    path = settings.data_dir / _SALT_FILE
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32))
        salt = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read or create the salt file {path}: {exc}"
        raise InputFileError(msg) from exc
    if len(salt) < 16:
        msg = f"salt file {path} holds fewer than 16 characters"
        raise InputFileError(msg)
    return salt.encode()


def prepare_worker(settings: WorkerSettings, *, web_enabled: bool = True) -> StreamguardWorker:
    """Load keys, agencies, statutes and salt (failing on any bad file), then build the app."""
    # Loaded (and checked) now: an unusable keys file stops the worker before it connects.
    # Later versions of the file are picked up while it runs (KeyRing, checked every 2 s).
    keys = KeyRing(settings.keys_path)
    agencies = load_agencies_csv(settings.agencies_path) if settings.agencies_path else []
    statutes = load_statutes(enforce_unverified=settings.enforce_unverified)
    salt = load_salt(settings)
    metrics = StreamguardMetrics.create()
    metrics.register_owners(a.agency_id for a in agencies)
    worker = build_worker(
        settings,
        statutes=statutes,
        file_agencies=agencies,
        keys=keys,
        salt=salt,
        metrics=metrics,
        web_enabled=web_enabled,
    )
    metrics.install_faust_sensors(worker.app)
    if web_enabled:
        metrics.mount_metrics_page(worker.app)
    if not keys:
        log.warning("no %sKEYS: every policy change will be rejected", ENV_PREFIX)
    elif not any(key.is_registry for key in keys.values()):
        log.warning(
            "no registry key in %sKEYS: every agency record on the agencies topic will be "
            "rejected (the agencies file is loaded as it is)",
            ENV_PREFIX,
        )
    return worker


def _parser() -> argparse.ArgumentParser:
    rows = "\n".join(f"  {env:<40} {default:<24} {doc}" for env, default, doc in settings_table())
    return argparse.ArgumentParser(
        prog="streamguard worker",
        description="Run the StreamGuard Faust worker. All settings come from the environment.",
        epilog=f"environment:\n{rows}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main_worker(argv: list[str]) -> int:
    """Entry point of `streamguard worker`; returns the exit code.

    2 when the worker cannot start (a bad file or setting, no broker within the wait), 1 when
    faust stops it with an error (a port taken, a store that cannot open, a crash); either way
    the last line on stderr is `streamguard worker: error: <cause>`.
    """
    _parser().parse_args(argv)
    try:
        settings = WorkerSettings.from_env()
        worker = prepare_worker(settings)
        wait_for_broker(settings)
    except StreamguardError as exc:
        print(error_line("worker", exc), file=sys.stderr)
        return 2
    return _run(worker, settings)


def _run(worker: StreamguardWorker, settings: WorkerSettings) -> int:
    import faust  # the worker's runtime only; not needed to check the files above

    level = settings.log_level.upper()
    numeric = logging.getLevelName(level)
    fatal = FatalRecordFilter(verbose=isinstance(numeric, int) and numeric <= logging.DEBUG)

    # Named Worker: mode labels its log lines with the class name (`[^Worker]: Starting...`).
    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            for handler in logger.handlers:
                handler.addFilter(fatal)

    runner = Worker(worker.app, loglevel=level)
    # The Kafka client logs every request at debug; building those records (and dropping them
    # in the handler) cost a tenth of the worker's time. Filter at the logger instead.
    for name in ("aiokafka", "faust", "mode", "kafka"):
        logging.getLogger(name).setLevel(
            max(numeric, logging.INFO) if isinstance(numeric, int) else logging.INFO
        )
    try:
        runner.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        cause = fatal.failure or exc.__context__
        if code != 0 and cause is not None:
            print(error_line("worker", describe_failure(cause, settings)), file=sys.stderr)
        return code
