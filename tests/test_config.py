"""Config and rules: the example loads; every bad config fails with its exact file:line message."""

from __future__ import annotations

from pathlib import Path

import pytest

from icalproxy.config.load import load_config, parse_yaml
from icalproxy.config.model import AllOf, Not, Subcalendar
from icalproxy.errors import ConfigError
from tests.support import ROOT

BAD = sorted((ROOT / "tests" / "configs" / "bad").glob("*.yaml"))


def test_example_config_loads_with_its_rules() -> None:
    config = load_config(ROOT / "config.example.yaml", env={})
    assert set(config.sources) == {"jobs", "office"}
    assert {"acme", "mueller", "smith-jones", "acme-busy", "jo", "shared-master"} <= set(config.rules.feeds)
    acme = config.rules.feeds["acme"]
    assert acme.title == "Acme Corp — our work for you"
    assert acme.sources == ("jobs", "office")
    assert acme.where == Subcalendar(frozenset({"Client: Acme Corp"}))
    assert config.rules.statuses.defined
    assert config.rules.statuses.entries["waiting on parts"].label == "Delayed"
    assert not config.rules.statuses.entries["on hold"].show
    assert config.sources["jobs"].url == str(ROOT / "fixtures" / "teamup-jobs.ics")
    assert config.state_dir == ROOT / "state"
    mueller = config.rules.feeds["mueller"].where
    assert isinstance(mueller, AllOf) and isinstance(mueller.items[1], Not)


def test_env_vars_expand_with_defaults(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        "state_dir: ${STATE:-st}\n"
        "sources:\n  s: {url: 'https://ics.example/feed/${KEY}/0.ics'}\n"
        "feeds:\n  f: {title: F}\n"
    )
    config = load_config(config_file, env={"KEY": "abc"})
    assert config.sources["s"].url == "https://ics.example/feed/abc/0.ics"
    assert config.state_dir == tmp_path / "st"


def test_builtin_profiles_work_without_rules(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text("sources:\n  s: {url: x.ics}\nfeeds:\n  a: {title: A, profile: busy}\n")
    config = load_config(config_file, env={})
    assert config.rules.feeds["a"].profile == "busy"
    assert {"client", "busy", "technician"} <= set(config.rules.profiles)


@pytest.mark.parametrize("path", BAD, ids=[path.stem for path in BAD])
def test_bad_config_reports_file_and_line(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    relative = path.relative_to(ROOT)
    with pytest.raises(ConfigError) as caught:
        load_config(relative, env={})
    assert f"{relative}:{expected}" in caught.value.problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        "sources:\n  s: {url: x.ics, every: never}\n"
        "feeds:\n  a: {title: A, from: [nope], profile: nope, where: {summary: '('}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, env={})
    assert len(caught.value.problems) == 4


def test_rules_files_merge_and_duplicates_across_files_are_errors(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text("feeds:\n  x: {title: X}\n")
    (tmp_path / "rules" / "b.yaml").write_text("feeds:\n  x: {title: X again}\n")
    config_file = tmp_path / "c.yaml"
    config_file.write_text("rules: rules\nsources:\n  s: {url: x.ics}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, env={})
    assert "feed 'x' is defined twice" in caught.value.problems[0]


def test_yaml_is_loaded_safely() -> None:
    with pytest.raises(ConfigError):
        parse_yaml("x: !!python/object/apply:os.system ['true']\n", "evil.yaml", {})


EXPLOSIVE = [
    r"(a+)+$",  # nested quantifiers
    r"(\w+\s?)+$",  # … also when the inner one is followed by an optional part
    r"([a-z]+\.?)+@",
    r"((ab)*)+",
    r"(a|aa)+$",  # a repeated alternation whose branches start alike
    r"(?:x|xy)*z",
    r"(.*,){20}x",  # nested, the outer bounded but large
    r".*a.*b.*c",  # three wildcards in a row
]
HARMLESS = [
    r"(?i)maintenance",
    r"(?i)boiler.*service",  # two wildcards are fine
    r"^(Client|Kunde): ",
    r"(?:foo|bar)+",  # branches that start differently
    r"(?:\s|-)+",
    r"(\d{1,2}\.){3}\d{1,2}",  # small bounds
    r"(?>\w+\s?)+$",  # atomic and possessive parts never backtrack
    r"(\w++\s?)+$",
    r"[^@\s]+@[^@\s]+",
    r"(?i)\b(cost|price|€)\b",
]


@pytest.mark.parametrize("regex", EXPLOSIVE + HARMLESS)
def test_explosive_regexes_are_rejected_at_check_time(regex: str, tmp_path: Path) -> None:
    """Every place a rule takes a regex is guarded: summary, field and description lines."""
    import time

    config_file = tmp_path / "c.yaml"
    quoted = regex.replace("'", "''")
    config_file.write_text(
        "sources:\n  s: {url: x.ics}\n"
        "profiles:\n"
        f"  p: {{extends: client, drop_description_lines: ['{quoted}']}}\n"
        "feeds:\n"
        f"  a: {{title: A, profile: p, where: {{summary: '{quoted}'}}}}\n"
        f"  b: {{title: B, where: {{field: {{name: Status, regex: '{quoted}'}}}}}}\n"
    )
    if regex in HARMLESS:
        config = load_config(config_file, env={})
        pattern = config.rules.profiles["p"].drop_description_lines[0]
        started = time.perf_counter()
        for text in ("a" * 2000 + "!", "ab" * 1000, "x " * 1000 + "!", "1." * 1000):
            pattern.search(text)
        assert time.perf_counter() - started < 5  # a hang guard, not a benchmark: ms expected
        return
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, env={})
    problems = caught.value.problems
    assert [problem.split(":")[1] for problem in problems] == ["4", "6", "7"], problems
    assert all("backtracking" in problem or "wildcards" in problem for problem in problems)
