"""YAML files → located documents (every value knows its file and line) → validated Config.

Safe loading only; duplicate keys are errors (PyYAML would silently keep the last one);
``${VAR}`` and ``${VAR:-default}`` are expanded in string values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from icalproxy.config.model import Config
from icalproxy.errors import ConfigError
from icalproxy.records import record

_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")
)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _PyLoader(yaml.SafeLoader):
    """Safe loading with YAML 1.2 booleans: only true/false are booleans. YAML 1.1 also reads
    yes/no/on/off/y/n that way, so a status catalogue key `No:` or `Off:` became False."""


class _Loader(getattr(yaml, "CSafeLoader", _PyLoader)):  # type: ignore[misc]
    """The same with LibYAML's parser when PyYAML has it (several times faster). Its error
    messages say less ("found character that cannot start any token", not which), so a file
    it refuses is read again by _PyLoader for the message."""


for _kind in (_PyLoader, _Loader):
    _kind.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _kind.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )


@record
class Located:
    """A YAML value with where it stands. Mappings hold str → Located, lists hold Located."""

    value: Any
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def read_yaml(path: Path, env: Mapping[str, str], display: str | None = None) -> Located:
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([f"{name}: file not found"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{name}: cannot read: {exc}"]) from exc
    return parse_yaml(text, name, env)


def parse_yaml(text: str, name: str, env: Mapping[str, str]) -> Located:
    try:
        node = _single_node(_Loader, text)
    except yaml.YAMLError as exc:
        error = exc
        if _Loader is not _PyLoader:
            try:
                _single_node(_PyLoader, text)
            except yaml.YAMLError as detailed:
                error = detailed
        if isinstance(error, yaml.MarkedYAMLError):
            line = error.problem_mark.line + 1 if error.problem_mark else 1
            raise ConfigError([f"{name}:{line}: invalid YAML: {error.problem}"]) from exc
        raise ConfigError([f"{name}:1: invalid YAML: {error}"]) from exc
    if node is None:
        return Located({}, name, 1)
    problems: list[str] = []
    located = _convert(node, name, env, problems, _Loader(""))
    if problems:
        raise ConfigError(problems)
    return located


def _single_node(kind: type[yaml.SafeLoader], text: str) -> yaml.Node | None:
    loader = kind(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _convert(
    node: yaml.Node, name: str, env: Mapping[str, str], problems: list[str], loader: _Loader
) -> Located:
    line = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS:
        problems.append(f"{name}:{line}: unsupported YAML tag {node.tag}")
        return Located(None, name, line)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Located] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)):
                problems.append(f"{name}:{key_node.start_mark.line + 1}: keys must be plain text")
                continue
            key_text = str(key)
            if key_text in result:
                problems.append(f"{name}:{key_node.start_mark.line + 1}: duplicate key {key_text!r}")
                continue
            item = _convert(value_node, name, env, problems, loader)
            item.line = key_node.start_mark.line + 1  # problems point at the key ops wrote
            result[key_text] = item
        return Located(result, name, line)
    if isinstance(node, yaml.SequenceNode):
        return Located([_convert(item, name, env, problems, loader) for item in node.value], name, line)
    value = loader.construct_object(node)
    if isinstance(value, str) and "${" in value:
        value = _expand(value, env, f"{name}:{line}", problems)
    return Located(value, name, line)


def _expand(text: str, env: Mapping[str, str], where: str, problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        value = env.get(match[1])
        if value is None:
            if match[2] is not None:
                return match[2]
            problems.append(f"{where}: environment variable {match[1]} is not set")
            return ""
        return value

    return _ENV.sub(replace, text)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file and every ``rules/*.yaml``; raise ConfigError with all problems."""
    from icalproxy.config.validate import validate  # noqa: PLC0415  (validate imports Located)

    environment = os.environ if env is None else env
    config_path = Path(path).resolve()
    display = str(path)
    document = read_yaml(config_path, environment, display)
    rules_documents: list[Located] = []
    problems: list[str] = []
    rules_dir = _rules_dir(document, config_path.parent)
    rule_files: list[Path] = []
    if rules_dir is not None:
        if not rules_dir.is_dir():
            problems.append(f"{display}:{_line_of(document, 'rules')}: rules directory {rules_dir} not found")
        else:
            rule_files = sorted(p for p in rules_dir.iterdir() if p.suffix in (".yaml", ".yml"))
    for rule_file in rule_files:
        try:
            rules_documents.append(read_yaml(rule_file, environment, _display(rule_file, config_path)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return validate(
        document, rules_documents, config_path, watched=(config_path, *rule_files), rules_dir=rules_dir
    )


def _rules_dir(document: Located, base: Path) -> Path | None:
    if not isinstance(document.value, dict) or "rules" not in document.value:
        return None
    value = document.value["rules"].value
    if not isinstance(value, str):
        return None  # validate() reports the type error
    return (base / value).resolve()


def _line_of(document: Located, key: str) -> int:
    item = document.value.get(key) if isinstance(document.value, dict) else None
    return item.line if item is not None else document.line


def _display(path: Path, config_path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        try:
            return str(path.relative_to(config_path.parent))
        except ValueError:
            return str(path)
