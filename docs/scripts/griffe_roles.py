"""A griffe extension for the documentation site: the docstrings' reStructuredText roles
(``:class:`~uprm.VideoClip```, ``:func:`build_model```, ``:mod:`uprm.synthetic```) become
mkdocstrings cross-references, and RST's ``::`` before a literal block becomes ``:``.

How a role becomes a link:

- a target inside a UPRM package (``uprm``, ``uprm_expert_*``) that griffe resolves from the
  docstring's scope is a link (an *optional* one: a public object the reference pages do
  not show is plain code instead of a broken link);
- a dotted target that names a UPRM package but resolves to nothing (a typo, a removed
  name) stays a strict cross-reference, so ``mkdocs build --strict`` fails on it;
- anything else (``torch.Tensor``, a name griffe cannot resolve) is plain code.

``~`` shows the last component only, as in Sphinx. Doctest blocks (``>>>``) become
``pycon`` code blocks; ``Shapes:`` (the tensor shapes, a block or one line) becomes a
section of its own whose entries are a list, shown as a "Shapes" box.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const|type):`(?P<tilde>~?)(?P<target>[^`<>]+)`")
LITERAL = re.compile(r"(\S)::\n")
DOCTEST = re.compile(r"(?m)^(?P<indent>[ \t]*)>>> .*(?:\n(?P=indent)(?!\s*$).*)*")
PACKAGES = ("uprm", "uprm_expert_")


def _ours(path: str) -> bool:
    top = path.split(".")[0]
    return top == "uprm" or top.startswith("uprm_expert_")


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path of ``target`` seen from ``obj`` (its own members, its class, its module)."""
    scopes = [obj, obj.parent, obj.module] if obj.parent is not None else [obj]
    for scope in scopes:
        if scope is None:
            continue
        head, _, rest = target.partition(".")
        try:
            if head in scope.members:
                return f"{scope.members[head].path}.{rest}" if rest else scope.members[head].path
            path = scope.resolve(head)
        except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError, ValueError):
            continue
        return f"{path}.{rest}" if rest else path
    return None


def _exists(loader: griffe.GriffeLoader, path: str) -> bool:
    try:
        loader.modules_collection.get_member(path)
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    return True


def convert(text: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
    """``text`` with its roles as cross-references or code, and ``::`` as ``:``."""

    def role(match: re.Match[str]) -> str:
        target = match["target"].strip().removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        code = f"<code>{shown}</code>"
        path = target if _ours(target) and _exists(loader, target) else _resolve(obj, target)
        if path and _ours(path) and _exists(loader, path):
            if any(part.startswith("_") and not part.startswith("__") for part in path.split(".")):
                return f"`{shown}`"
            return f'<autoref identifier="{path}" optional>{code}</autoref>'
        if _ours(target) and "." in target:
            return f"[`{shown}`][{target}]"  # names a UPRM object that does not exist: fail the build
        return f"`{shown}`"

    return _fence_doctests(shapes_sections(LITERAL.sub(r"\1:\n", ROLE.sub(role, text))))


SHAPES = re.compile(r"^(?P<indent>[ \t]*)Shapes:[ \t]*(?P<rest>.*)$")
ENTRY = re.compile(r"^(?:- |[A-Za-z_][\w .,()\[\]*-]*: )")


def shapes_sections(text: str) -> str:
    """``Shapes:`` (a block, or one line) as a Google-style section whose entries are a list,
    one ``name: shape`` entry an item; griffe renders the section as a "Shapes" box."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = SHAPES.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        base = len(match["indent"])
        body = [match["rest"]] if match["rest"].strip() else []
        i += 1
        while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > base:
            body.append(lines[i].strip())
            i += 1
        items: list[str] = []
        for line in body:
            if items and not ENTRY.match(line):
                items[-1] += " " + line
            else:
                items.append(line.removeprefix("- "))
        pad = match["indent"] + "    "
        if out and out[-1].strip():
            out.append("")
        out.append(f"{match['indent']}Shapes:")
        out += [f"{pad}- {item}" if len(items) > 1 else f"{pad}{item}" for item in items]
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


def _fence_doctests(text: str) -> str:
    """Doctest blocks (``>>>`` lines and their output, up to a blank line) as ``pycon`` code."""
    if ">>> " not in text or "```" in text:
        return text

    def fence(match: re.Match[str]) -> str:
        indent = match["indent"]
        return f"{indent}```pycon\n{match[0]}\n{indent}```"

    return DOCTEST.sub(fence, text)


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring of the UPRM packages once they are loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if not _ours(pkg.path):
            return
        self._walk(pkg, loader, set())

    def _walk(self, obj: griffe.Object, loader: griffe.GriffeLoader, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value, obj, loader)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, loader, seen)
