"""Build step that pyproject.toml cannot declare: compile the gettext catalogs (``*.po`` to ``*.mo``).

The ``.mo`` files are build products, not committed (.gitignore). Building a wheel writes them into
the build directory beside the copied ``.po``; an editable install (``pip install -e .``) writes them
beside the ``.po`` in the source tree, because that is where the installed package reads them from.
Babel is a build requirement only ([build-system] in pyproject.toml): at run time the standard
library's gettext reads the compiled files (kiosk/ui/i18n.py, server_sync/i18n.py).

Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py as _build_py


def compile_catalog(po: Path, mo: Path) -> None:
    """Compile one ``locale/<lang>/LC_MESSAGES/<domain>.po``; a malformed catalog fails the build."""
    lang = po.parent.parent.name
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=po.stem, abort_invalid=True)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    mo.parent.mkdir(parents=True, exist_ok=True)
    # Replace, never rewrite in place: a running kiosk or portal may have the old file open.
    tmp = mo.with_name(mo.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, mo)


class build_py(_build_py):
    """setuptools' build_py, plus the compiled catalogs of every package it builds."""

    def _catalogs(self) -> list[tuple[Path, Path]]:
        """(source ``.po``, its ``.mo`` in the build directory) for every catalog under a top-level package."""
        out = []
        for top in sorted({p.split(".")[0] for p in self.packages or ()}):
            src = Path(self.get_package_dir(top))
            for po in sorted(src.rglob("*.po")):
                out.append((po, Path(self.build_lib, top, po.relative_to(src)).with_suffix(".mo")))
        return out

    def run(self) -> None:
        super().run()
        for po, built in self._catalogs():
            compile_catalog(po, po.with_suffix(".mo") if self.editable_mode else built)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:  # type: ignore[override]
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:  # already listed, from get_output_mapping
            return outputs
        return outputs + [str(built) for _, built in self._catalogs() if str(built) not in outputs]

    def get_output_mapping(self) -> dict[str, str]:
        # Used by editable installs in strict mode, which link each build path to its source file.
        mapping = super().get_output_mapping()
        mapping.update({str(built): str(po.with_suffix(".mo")) for po, built in self._catalogs()})
        return dict(sorted(mapping.items()))


setup(cmdclass={"build_py": build_py})
