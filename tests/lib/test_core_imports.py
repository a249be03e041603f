"""The core stays framework-free: importing it pulls in neither Dagster nor Litestar."""

import subprocess
import sys


def test_importing_the_core_imports_neither_dagster_nor_litestar() -> None:
    code = (
        "import sys, pkgutil, importlib, chronos_pipeline.lib as lib\n"
        "for m in pkgutil.walk_packages(lib.__path__, 'chronos_pipeline.lib.'):\n"
        "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'dagster', 'litestar'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
