"""A Dockerfile read into its stages and instructions (continuation lines joined, comments and
parser directives dropped), for the structural checks and for the test that repeats the
image's install steps outside Docker."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array form's words (CMD ["python", "app.py"]), or None for the shell form."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        words = json.loads(text)
        assert isinstance(words, list) and all(isinstance(w, str) for w in words)
        return words


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def copies(self) -> list[tuple[str | None, list[str], str]]:
        """(the --from stage or None, sources, destination) of each COPY."""
        result = []
        for instruction in self.all("COPY"):
            words = shlex.split(instruction.arguments)
            source_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            result.append((source_stage, paths[:-1], paths[-1]))
        return result

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.arguments):
                name, _, value = word.partition("=")
                values[name] = value
        return values


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def parse(path: Path) -> Dockerfile:
    lines: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arguments.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(image, name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = arguments.partition("=")
            global_args[name.strip()] = default.strip()
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments.strip()))
    return Dockerfile(global_args, stages)
