"""Metric names and their label names, read from PromQL, from Prometheus exposition text
and from the catalog in ops/METRICS.md.

A name maps to the set of label names it is known to carry. Names are series names as
Prometheus stores them: a counter is `..._total`, a histogram is `..._bucket`, `..._sum`
and `..._count`.
"""

from __future__ import annotations

import re

__all__ = [
    "TARGET_LABELS",
    "catalog_metrics",
    "exported_metrics",
    "label_matchers",
    "metric_names",
]

# Labels Prometheus attaches to every scraped series (compose and Kubernetes configs).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_BRACES = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_AT = re.compile(r"@\s*(?:start\(\)|end\(\)|[0-9.]+)")
_NUMBER = re.compile(
    r"(?<![\w:])(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+)"
)
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_NOT_METRICS = frozenset(
    {
        # binary and grouping keywords
        "and", "or", "unless", "bool", "by", "without", "on", "ignoring",
        "group_left", "group_right", "offset", "inf", "nan",
        # aggregation operators: `sum by (le) (...)` puts a keyword between name and "("
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
        "count_values", "bottomk", "topk", "quantile",
    }
)  # fmt: skip


def _mask_strings(expr: str) -> str:
    return _STRING.sub('""', _COMMENT.sub("", expr))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions and keywords left out)."""
    text = _mask_strings(expr)
    for pattern in (_BRACKETS, _BRACES, _GROUPING, _OFFSET, _AT, _NUMBER):
        text = pattern.sub(" ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("(") or name.lower() in _NOT_METRICS:
            continue  # a function or aggregation call, or a keyword
        names.add(name)
    return names


def label_matchers(expr: str) -> dict[str, set[str]]:
    """For each `metric{...}` selector, the label names its matchers use."""
    used: dict[str, set[str]] = {}
    for match in _SELECTOR.finditer(_mask_strings(expr)):
        labels = {label.group(1) for label in _MATCHER.finditer(match.group(2))}
        used.setdefault(match.group(1), set()).update(labels - {"__name__"})
    return used


def _add(known: dict[str, set[str]], name: str, labels: set[str]) -> None:
    known.setdefault(name, set()).update(labels)


def _add_family(known: dict[str, set[str]], name: str, kind: str, labels: set[str]) -> None:
    """A metric family's series names, as Prometheus stores them."""
    if kind == "histogram":
        base = name.removesuffix("_bucket")
        _add(known, f"{base}_bucket", labels | {"le"})
        for suffix in ("_sum", "_count", "_created"):
            _add(known, f"{base}{suffix}", labels)
    elif kind == "summary":
        _add(known, name, labels | {"quantile"})
        for suffix in ("_sum", "_count", "_created"):
            _add(known, f"{name}{suffix}", labels)
    elif kind == "counter":
        base = name.removesuffix("_total")
        _add(known, f"{base}_total", labels)
        _add(known, f"{base}_created", labels)
    else:
        _add(known, name, labels)


_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')


def exported_metrics(exposition: str) -> dict[str, set[str]]:
    """The series names in a /metrics page, with the label names seen on each.

    Families declared by `# TYPE` count even without samples yet (a labelled counter
    nobody has incremented), so their series names are known too, without labels.
    """
    known: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            _add_family(known, name, kind.strip(), set())
        elif line and not line.startswith("#"):
            sample = _SAMPLE.match(line)
            if sample is None:
                raise ValueError(f"unreadable exposition line: {line!r}")
            labels = {label.group(1) for label in _LABEL.finditer(sample.group(2) or "")}
            _add(known, sample.group(1), labels)
    return known


_CATALOG_ENTRY = re.compile(r"\b(signer_[a-z0-9_]+)(?:\{([^}]*)\})?")
_CATALOG_KIND = re.compile(r"\b(counter|gauge|histogram|summary)\b")
_CATALOG_LABELS_IN_PROSE = re.compile(r"with labels? ([a-z_]+(?:\s*,\s*[a-z_]+)*)")


def catalog_metrics(markdown: str) -> dict[str, set[str]]:
    """The series names of ops/METRICS.md with their labels.

    Each entry is a name with optional `{labels}`; its kind is the first of counter,
    gauge, histogram or summary in the text before the next name (counters lacking
    `_total` get it, as prometheus-client adds it on exposition).
    """
    known: dict[str, set[str]] = {}
    entries = list(_CATALOG_ENTRY.finditer(markdown))
    for index, entry in enumerate(entries):
        end = entries[index + 1].start() if index + 1 < len(entries) else len(markdown)
        after = markdown[entry.end() : end]
        kind = _CATALOG_KIND.search(after)
        labels = {label.strip() for label in (entry.group(2) or "").split(",") if label.strip()}
        prose = _CATALOG_LABELS_IN_PROSE.search(after)
        if prose:
            labels |= {label.strip() for label in prose.group(1).split(",")}
        _add_family(known, entry.group(1), kind.group(1) if kind else "", labels)
    return known
