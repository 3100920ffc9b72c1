"""`make run` installs only the runtime dependencies (`pip install -e .`), while the tests
run with the dev and train extras. A module the platform imports from an extra works in
every test and fails on a newcomer's machine (it happened: the chat's httpx). This runs the
processes' imports with every distribution outside the runtime closure hidden."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# In a child process: hide every top-level module that belongs to a distribution outside
# the closure of hedgerow's runtime requirements, then import what `hedgerow up` starts.
CHILD = textwrap.dedent(
    """
    import importlib.abc
    import importlib.metadata as metadata
    import sys

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name


    def runtime_closure():
        allowed, todo = set(), [("hedgerow", frozenset())]
        while todo:
            name, extras = todo.pop()
            key = (canonicalize_name(name), extras)
            if key in allowed:
                continue
            allowed.add(key)
            for line in metadata.requires(name) or []:
                requirement = Requirement(line)
                marker = requirement.marker
                if marker is None or any(
                    marker.evaluate({"extra": extra}) for extra in (extras or {""})
                ):
                    todo.append((requirement.name, frozenset(requirement.extras)))
        return {name for name, _ in allowed}


    allowed = runtime_closure()
    owners = metadata.packages_distributions()
    hidden = {
        module
        for module, distributions in owners.items()
        if not any(canonicalize_name(d) in allowed for d in distributions)
    }


    class HideExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            if fullname.partition(".")[0] in hidden:
                raise ModuleNotFoundError(f"{fullname} is not a runtime dependency", name=fullname)
            return None


    sys.meta_path.insert(0, HideExtras())
    assert "torch" in hidden and "pytest" in hidden, "the check hides nothing"

    import hedgerow.cli
    import hedgerow.worker
    from hedgerow.app import create_app

    create_app()
    print("imports ok")
    """
)


def test_the_processes_of_make_run_import_with_runtime_dependencies_only() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HEDGEROW_ENVIRONMENT": "test"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imports ok" in result.stdout
