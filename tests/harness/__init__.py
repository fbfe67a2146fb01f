"""Run the hub as its operators do, for the tests and the benchmarks alike: start its processes, wait
for conditions, make scratch databases, sign in to the console, hold exports at a known point.

    processes  free_port, with_new_port, settings_env, Process, start_process, start_worker,
               start_scheduler, web_server, extra_web, running, exporthub_command, ROOT, LOG_DIR
    waiting    wait_for, wait_for_async, wait_http
    databases  with_database, recreate_database, drop_database, scratch_database
    console    hidden_token, sign_in
    pauses     Pauses: the test side of the pipeline's pause hook (EXPORTHUB_TEST_PAUSE_DIR)

Import from `tests.harness`, never from its modules: these names are the API bench/ relies on.
"""

from tests.harness.console import hidden_token, sign_in
from tests.harness.databases import drop_database, recreate_database, scratch_database, with_database
from tests.harness.pauses import Pauses
from tests.harness.processes import (
    LOG_DIR,
    ROOT,
    Process,
    exporthub_command,
    extra_web,
    free_port,
    running,
    settings_env,
    start_process,
    start_scheduler,
    start_worker,
    web_server,
    with_new_port,
)
from tests.harness.waiting import wait_for, wait_for_async, wait_http

__all__ = [
    "LOG_DIR",
    "ROOT",
    "Pauses",
    "Process",
    "drop_database",
    "exporthub_command",
    "extra_web",
    "free_port",
    "hidden_token",
    "recreate_database",
    "running",
    "scratch_database",
    "settings_env",
    "sign_in",
    "start_process",
    "start_scheduler",
    "start_worker",
    "wait_for",
    "wait_for_async",
    "wait_http",
    "web_server",
    "with_database",
    "with_new_port",
]
