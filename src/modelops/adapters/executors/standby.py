"""A Python interpreter started ahead of a job, waiting to become that job (standard library only).

The local executor keeps one of these ready per free interpreter: a fresh ``python standby.py``
started exactly as a job's process would be (same interpreter, its own session under the exit
wrapper, stdout and stderr already on the job's log files, the job's allow-listed environment),
blocked on reading its stdin. When a job comes, the executor writes one line of JSON —
``{"argv": [...], "env": {...}, "cwd": "..."}`` with ``argv`` as given after ``python`` (a script
and its arguments, or ``-m module ...``) — and the interpreter becomes the job: it takes the
job's folder, environment and arguments and runs the script as ``__main__``, as
``python script.py`` or ``python -m module`` would. So a job's first line does not wait for an
interpreter to start: that wait was paid before the job was submitted.

Reading end of file instead of a line (the server stopped or dropped this standby) exits quietly.
Runs inside the job's process, never in the server; it never imports anything of modelops.
"""

import sys

# What a fresh interpreter has loaded at this point; anything this file loads on top is
# dropped from sys.modules before the job runs, so a package's own ``types.py`` or ``json.py``
# shadows the standard one exactly as it would in a fresh process.
_FRESH_MODULES = frozenset(sys.modules)

import builtins  # noqa: E402
import importlib.machinery  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pkgutil  # noqa: E402,F401  (runpy imports it to run a module: loaded while waiting)
import runpy  # noqa: E402
import types  # noqa: E402


def _read_assignment() -> dict | None:  # type: ignore[type-arg]
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)  # type: ignore[no-any-return]


def _run(assignment: dict) -> None:  # type: ignore[type-arg]
    # The job's stdin is empty, as for a job started directly.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(assignment["cwd"])
    # The job's environment, plus what the wrapper's shell added to this process's own (PWD,
    # and SHLVL or _ for some shells), as it adds them to a fresh command.
    spawned = set(assignment["spawn_env"])
    added = {name: value for name, value in os.environ.items() if name not in spawned}
    if "PWD" in added:
        added["PWD"] = assignment["cwd"]
    os.environ.clear()
    os.environ.update(assignment["env"])
    os.environ.update(added)
    argv = list(assignment["argv"])
    for name in set(sys.modules) - _FRESH_MODULES:
        if name != "__main__":
            del sys.modules[name]
    if argv[0] == "-m":
        # What ``python -m`` itself calls: argv[0] becomes the module's file, and the module
        # runs as ``__main__``.
        sys.argv = argv[1:]
        sys.path[0] = os.getcwd()
        sys.modules["__main__"] = _fresh_main()  # runpy runs the module in __main__'s namespace
        runpy._run_module_as_main(argv[1], alter_argv=True)  # type: ignore[attr-defined]
        return
    # As ``python script.py``: argv as given, an absolute __file__, the script's folder first
    # on the path, and a fresh ``__main__`` module for good.
    script = os.path.abspath(argv[0])
    sys.argv = argv
    sys.path[0] = os.path.dirname(script)
    main = _fresh_main()
    main.__file__ = script
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    sys.modules["__main__"] = main
    with open(script, "rb") as source:
        code = compile(source.read(), script, "exec")
    exec(code, main.__dict__)


def _fresh_main() -> types.ModuleType:
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    return main


def _report(exc: BaseException) -> None:
    """Print an uncaught exception as Python would, without this file's and runpy's frames."""
    import traceback

    ours = {os.path.abspath(__file__), os.path.abspath(runpy.__file__)}
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) in ours:
        tb = tb.tb_next
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)  # the job's own hook, if it set one
    except Exception:
        traceback.print_exception(type(exc), exc, tb)
    sys.stderr.flush()


def main() -> None:
    assignment = _read_assignment()
    if assignment is None:
        return
    try:
        _run(assignment)
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        _report(exc)
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)  # end as Python does: by the signal itself
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException as exc:
        _report(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
