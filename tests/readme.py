"""The README's runnable examples: each fenced block preceded by a marker comment

    <!-- readme-test: NAME [file=PATH] -->

is an example a test runs (`file=`: a file the example's reader would save under PATH).
One extraction for every README test (tests/integration/test_readme.py,
tests/integrations/test_readme_examples.py); a block without the marker is illustration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_MARKED = re.compile(
    r"^<!-- readme-test: (?P<name>[\w.-]+)(?P<attrs>(?: \w+=\S+)*) -->\n"
    r"```(?P<lang>\w*)\n(?P<code>.*?)^```$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Example:
    name: str
    lang: str
    code: str
    attrs: dict[str, str]

    @property
    def file(self) -> str | None:
        return self.attrs.get("file")


def examples(prefix: str = "", readme: Path = README) -> dict[str, Example]:
    """The marked examples whose names start with `prefix`, by name, in README order.
    Raises ValueError for a name marked twice, or a marker not followed by a fenced block."""
    text = readme.read_text()
    found: dict[str, Example] = {}
    for m in _MARKED.finditer(text):
        attrs = dict(a.split("=", 1) for a in m["attrs"].split())
        if m["name"] in found:
            raise ValueError(f"README example {m['name']!r} is marked twice")
        found[m["name"]] = Example(m["name"], m["lang"], m["code"], attrs)
    markers = len(re.findall(r"^<!-- readme-test:", text, re.M))
    if markers != len(found):
        raise ValueError(f"{markers - len(found)} readme-test marker(s) not followed by a block")
    return {name: ex for name, ex in found.items() if name.startswith(prefix)}
