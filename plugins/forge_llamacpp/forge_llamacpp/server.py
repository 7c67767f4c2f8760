"""llama-cpp-python's OpenAI-compatible server as a managed process.

The server runs in its own session (so it outlives ``forge deploy`` and can be
stopped as a group); its pid file and log live in the run's ``deploy/`` folder:

* ``llamacpp.pid``: the server's pid (also its process-group id);
* ``llamacpp.log``: everything the server prints.

:func:`start_server` picks a free port when the configured one is taken, waits
until ``/v1/models`` lists the model's alias and the server is alive and listening
(so another process that took the port meanwhile is never mistaken for it), and
checks that one chat request decodes; :func:`stop_server` sends SIGTERM to the
group, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from forge_core.runs import RunError

PID_FILE = "llamacpp.pid"
LOG_FILE = "llamacpp.log"
#: What the server's command line contains (checked before signalling a pid from a file).
SERVER_MODULE = "llama_cpp.server"
#: Servers this process started, kept so their Popen objects are not collected while they run.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}
#: llama-cpp-python's name for the GGUF's own ``tokenizer.chat_template``. Without it,
#: llama-cpp-python swaps a template that is exactly ChatML (or Llama 3, Mistral) for a
#: built-in formatter that renders differently (ChatML's adds an empty system turn and BOS).
GGUF_CHAT_FORMAT = "chat_template.default"
#: /proc/net/tcp's state of a listening socket.
_TCP_LISTEN = "0A"


class LlamaCppError(RunError):
    """The llama.cpp server could not be started, reached or stopped."""


@dataclass
class ServerProcess:
    """A started server."""

    pid: int
    host: str
    port: int
    endpoint: str
    pid_file: Path
    log_file: Path
    notes: list[str] = field(default_factory=list)


def port_is_free(host: str, port: int) -> bool:
    """Whether a listening socket could bind ``host:port`` now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """A port the system says is free on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def client_host(host: str) -> str:
    """The address clients use for a listen address (``0.0.0.0`` → loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file (for error messages)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def server_command(
    gguf: Path, host: str, port: int, n_ctx: int, alias: str, chat_format: str | None = None
) -> list[str]:
    """The server's command line; without ``chat_format`` the GGUF's chat template is used.

    Requests are served one after another, none interrupting another's answer.
    """
    return [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--model",
        str(gguf),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--chat_format",
        chat_format or GGUF_CHAT_FORMAT,
        # A request waits its turn: by default a new one (even `GET /v1/models`, which
        # `forge chat` and `forge ask` send first) cuts off the answer being streamed.
        "--interrupt_requests",
        "false",
    ]


def failure_message(what: str, code: int | None, log_file: Path) -> str:
    """Why the server failed, with its log tail (and the usual cause of SIGILL)."""
    message = f"the llama.cpp server {what}"
    if code is not None:
        message += f" (exit code {code})"
    tail = log_tail(log_file)
    if code == -signal.SIGILL or "illegal instruction" in tail.lower():
        message += (
            ". It died of SIGILL (illegal instruction): this CPU advertises instructions "
            "(typically AMX, in virtual machines) that it does not execute, and llama.cpp "
            "repacks quantised weights for them. Deploy an F16 GGUF "
            '(export.quantizations = ["F16"]) or rebuild llama-cpp-python without them: '
            "CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON' "
            "pip install --force-reinstall --no-cache-dir 'llama-cpp-python[server]'"
        )
    elif "address already in use" in tail.lower():
        message += (
            ". Its port was taken by another process after Forge found it free; "
            "deploy again, or pick another port with deploy.port"
        )
    return f"{message}; last lines of {log_file}:\n{tail}"


def ensure_alive(process: subprocess.Popen[bytes], what: str, log_file: Path) -> None:
    """Fail with the log tail if the server has exited (``what`` says when)."""
    code = process.poll()
    if code is not None:
        raise LlamaCppError(failure_message(f"exited {what}", code, log_file))


def listens_on(pid: int, port: int) -> bool | None:
    """Whether ``pid`` holds a listening TCP socket on ``port``; None where /proc does not tell."""
    fd_folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_folder)
    except OSError:
        return None
    sockets = set()
    for name in names:
        with contextlib.suppress(OSError):  # a descriptor closed meanwhile
            target = os.readlink(f"{fd_folder}/{name}")
            if target.startswith("socket:["):
                sockets.add(target[len("socket:[") : -1])
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:  # sl local_address rem_address st ... uid timeout inode
            fields = row.split()
            if len(fields) < 10 or fields[3] != _TCP_LISTEN or fields[9] not in sockets:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:  # local_address is ADDR:PORT (hex)
                return True
    return False


def listed_models(url: str) -> list[str] | None:
    """The model ids ``/v1/models`` lists, or None when nothing answers it properly."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            listing = json.load(response)
        return [str(model["id"]) for model in listing["data"]]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return None


def check_decoding(
    process: subprocess.Popen[bytes], endpoint: str, alias: str, log_file: Path, timeout: float
) -> None:
    """One one-token chat request: the model decodes, not only the HTTP server runs."""
    body = {
        "model": alias,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "temperature": 0,
    }
    request = urllib.request.Request(
        f"{endpoint}/chat/completions",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        what = f"answered a one-token chat request with HTTP {exc.code}: {detail}"
        raise LlamaCppError(failure_message(what, process.poll(), log_file)) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2.0)
        what = f"failed a one-token chat request ({exc})"
        raise LlamaCppError(failure_message(what, process.poll(), log_file)) from exc


def wait_until_ready(
    process: subprocess.Popen[bytes],
    endpoint: str,
    alias: str,
    port: int,
    log_file: Path,
    timeout: float,
) -> None:
    """Poll ``/v1/models`` until it lists ``alias`` and ``process`` listens on ``port``.

    Only then is the answer this server's: another process may have taken the port
    after the free-port check, and this server then dies (address already in use)
    while the other one answers. Fails with the log tail if the server dies."""
    deadline = time.monotonic() + timeout
    url = f"{endpoint}/models"
    answered: list[str] | None = None
    while time.monotonic() < deadline:
        ensure_alive(process, "before answering", log_file)
        models = listed_models(url)
        if models is not None:
            if alias in models and listens_on(process.pid, port) is not False:
                return
            answered = models
        time.sleep(0.25)
    what = f"did not answer {url} within {timeout:g}s (raise deploy.startup_timeout)"
    if answered is not None:
        what = (
            f"did not answer {url} within {timeout:g}s: another process answers there "
            f"(its models: {answered}); pick another port with deploy.port"
        )
    raise LlamaCppError(failure_message(what, process.poll(), log_file))


def start_server(
    gguf: Path,
    folder: Path,
    *,
    host: str,
    port: int,
    n_ctx: int,
    alias: str,
    timeout: float = 120.0,
    chat_format: str | None = None,
) -> ServerProcess:
    """Start the server for ``gguf``, wait until it answers, and record its pid and log."""
    folder.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    if not port_is_free(host, port):
        chosen = free_port(host)
        notes.append(f"port {port} on {host} is busy; the server uses port {chosen} instead")
        port = chosen
    log_file, pid_file = folder / LOG_FILE, folder / PID_FILE
    endpoint = f"http://{client_host(host)}:{port}/v1"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            server_command(gguf, host, port, n_ctx, alias, chat_format),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: outlives us, stops as a group
            close_fds=True,
        )
    _STARTED[process.pid] = process
    write_pid_file(pid_file, process.pid)
    try:
        wait_until_ready(process, endpoint, alias, port, log_file, timeout)
        check_decoding(process, endpoint, alias, log_file, timeout)
        ensure_alive(process, "after answering a chat request", log_file)
    except BaseException:
        stop_process(process.pid)
        pid_file.unlink(missing_ok=True)
        raise
    return ServerProcess(process.pid, host, port, endpoint, pid_file, log_file, notes)


def write_pid_file(path: Path, pid: int) -> None:
    """Write the pid file atomically."""
    partial = path.with_suffix(".partial")
    partial.write_text(f"{pid}\n", encoding="utf-8")
    partial.replace(path)


def read_pid_file(path: Path) -> int | None:
    """The pid in a pid file, or None when there is no readable one."""
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _reap(pid: int) -> bool:
    """Collect our own exited child; True once ``pid`` no longer exists."""
    started = _STARTED.get(pid)
    if started is not None:
        if started.poll() is None:
            return False
        del _STARTED[pid]
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_server(pid: int) -> bool:
    """Whether ``pid`` is alive and (where /proc tells) a llama.cpp server."""
    if _reap(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return SERVER_MODULE in cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return False
    return True


def stop_process(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process group of ``pid``, then SIGKILL; True if something was stopped."""
    if _reap(pid):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError as exc:
            raise LlamaCppError(f"not allowed to stop process {pid}: {exc}") from exc
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _reap(pid):
                return True
            time.sleep(0.1)
    raise LlamaCppError(f"process {pid} did not stop after SIGKILL")


def stop_server(folder: Path, timeout: float = 10.0) -> int | None:
    """Stop the server recorded in ``folder``; the pid stopped, or None if none was running."""
    pid_file = folder / PID_FILE
    pid = read_pid_file(pid_file)
    if pid is None:
        return None
    stopped = is_server(pid) and stop_process(pid, timeout)
    pid_file.unlink(missing_ok=True)
    return pid if stopped else None


def server_status(folder: Path) -> dict[str, object]:
    """What the pid file and the endpoint (from ``deployment.json``) say about the server."""
    pid = read_pid_file(folder / PID_FILE)
    running = pid is not None and is_server(pid)
    status: dict[str, object] = {"pid": pid, "running": running, "log": str(folder / LOG_FILE)}
    deployment = folder / "deployment.json"
    if deployment.is_file():
        with contextlib.suppress(OSError, ValueError):
            status["endpoint"] = json.loads(deployment.read_text(encoding="utf-8"))["endpoint"]
    if running and "endpoint" in status:
        try:
            with urllib.request.urlopen(f"{status['endpoint']}/models", timeout=2.0) as answer:
                status["healthy"] = answer.status == 200
        except (urllib.error.URLError, OSError):
            status["healthy"] = False
    return status
