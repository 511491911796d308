"""Which Python functions an app created through the API may name.

An app names its reference, assimilator and (optionally) comparator by dotted path, and the
server imports them. Through the API that would let anyone with a token make the server
import any module, so a path is accepted only when

- it is a plain dotted name of identifiers, none starting with ``_``;
- it lies in one of the packages of ``COMPUTE["APP_CODE_PACKAGES"]`` (default: the examples
  and ``apps.``, the package an operator installs project code into), or is one of the
  built-in handlers in :data:`BUILT_IN`;
- and it names a function defined in that module (not one the module imported, such as
  ``os.system`` pulled in by ``from os import system``).

The check runs before anything is imported, so a refused path is never imported at all.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

from compute.dotted import resolve

DEFAULT_PACKAGES = ("compute.examples.", "apps.")
BUILT_IN = frozenset({"compute.assimilation.store_output"})
_DOTTED = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")


def allowed_packages() -> tuple[str, ...]:
    packages = settings.COMPUTE.get("APP_CODE_PACKAGES", DEFAULT_PACKAGES)
    # A package given without its trailing dot must not admit its namesakes ("apps" vs
    # "appsevil").
    return tuple(p if p.endswith(".") else p + "." for p in packages)


def check_code_path(path: str) -> None:
    """Raise ValidationError unless ``path`` names an allowed function (see the module)."""
    if path in BUILT_IN:
        return
    if len(path) > 200 or not _DOTTED.fullmatch(path):
        raise ValidationError(f"{path!r} is not a dotted path such as apps.myapp.run")
    packages = allowed_packages()
    if not path.startswith(packages):
        raise ValidationError(
            f"{path!r} is not in a package this server allows for app code "
            f"({', '.join(p + '…' for p in packages)})"
        )
    try:
        target = resolve(path)
    except ImportError as e:
        raise ValidationError(str(e)) from e
    module = path.rpartition(".")[0]
    if getattr(target, "__module__", None) != module:
        raise ValidationError(f"{path!r} is not a function defined in {module}")
