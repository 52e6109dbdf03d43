"""The docs a newcomer follows: the README's examples run against a live server, and every relative link resolves."""
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from collection.models import Batch
from tests.conftest import start_web

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
END_STATES = {"admitted", "quarantined", "rejected", "failed", "duplicate"}

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (links and code marks dropped), lower case, punctuation
    removed, spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's slug in a Markdown file, repeats numbered as GitHub numbers them (-1, -2, ...)."""
    seen: dict[str, int] = {}
    slugs = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def broken_links(path: Path) -> list[str]:
    """The relative links (and images) of a Markdown file whose file is missing or whose #anchor is no heading."""
    broken = []
    for line in prose_lines(path.read_text()):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto:
            name, _, anchor = target.partition("#")
            resolved = (path.parent / name).resolve() if name else path
            if not resolved.exists():
                broken.append(f"{target}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{target}: no heading with that anchor")
    return broken


def code_block(path: Path, *, section: str, language: str) -> str:
    """The first fenced block of that language under that heading."""
    text = path.read_text()
    start = text.index(f"\n{section}\n")
    match = re.compile(rf"^```{language}\n(.*?)^```", re.S | re.M).search(text, start)
    assert match, f"no {language} block under {section!r} in {path.name}"
    return match.group(1)


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) < 200


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "guide.md").write_text("# The `guide`: rules, and more\n\n## Twice\n\n## Twice\n")
    (tmp_path / "index.md").write_text(
        "[ok](guide.md#the-guide-rules-and-more) [ok](guide.md#twice-1) ![ok](guide.md) [web](https://x.org/#a)\n"
        "[gone](missing.md) [bad anchor](guide.md#nope) [self](#nowhere)\n"
        "```\n[in code](also-missing.md)\n```\n`[inline](skipped.md)`\n")
    assert broken_links(tmp_path / "index.md") == [
        "missing.md: no such file", "guide.md#nope: no heading with that anchor",
        "#nowhere: no heading with that anchor"]


def readme_client(*, url: str, key: str) -> str:
    """The README's Python client with the server's address and the source's key filled in."""
    code = code_block(README, section="## Send a batch", language="python")
    for name, value in (("URL", url), ("KEY", key)):
        pattern = re.compile(rf'^{name} = "[^"]*"', re.M)
        assert len(pattern.findall(code)) == 1, f"the client should set {name} once"
        code = pattern.sub(f"{name} = {value!r}", code)
    return code


def orders(prefix: str) -> bytes:
    return b"".join(orjson.dumps({"external_id": f"{prefix}-{i}", "features": {"price": i * 1.5, "country": "DE"}})
                    + b"\n" for i in range(50))


@pytest.mark.worker
@pytest.mark.slow
def test_the_readme_python_client_sends_new_batches_and_prints_their_end_state(
        worker, source_key, tmp_path, data_dir, celery_queue):
    web, url = start_web(tmp_path, data_dir=data_dir, queue=celery_queue)
    try:
        (tmp_path / "client.py").write_text(readme_client(url=url, key=source_key))
        printed = []
        for prefix in ("first", "second"):
            (tmp_path / "orders.ndjson").write_bytes(orders(prefix))
            result = subprocess.run([sys.executable, "client.py"], cwd=tmp_path, capture_output=True, text=True,
                                    timeout=120)
            assert result.returncode == 0, result.stderr
            match = re.match(r"batch (\d+): (\w+) \((\d+) records\)", result.stdout)
            assert match, result.stdout
            printed.append((int(match.group(1)), match.group(2), int(match.group(3))))
    finally:
        web.stop()
    (first_id, *_), (second_id, *_) = printed
    assert first_id != second_id  # a fresh Idempotency-Key: the second file is a new batch, not a replay
    for batch_id, status, count in printed:
        # The fixture's source has no baseline yet, so each batch ends quarantined ("no baseline").
        assert status == Batch.objects.get(pk=batch_id).status == "quarantined"
        assert count == 50


def test_the_readme_curl_batch_is_accepted(api):
    script = code_block(README, section="## Send a batch", language="sh")
    records = re.findall(r"'(\{.*?\})'", script)
    assert len(records) >= 2
    body = "".join(record + "\n" for record in records).encode()
    response = api.post("/api/v1/batches", data=body, content_type="application/x-ndjson",
                        HTTP_IDEMPOTENCY_KEY="orders-1")
    assert response.status_code == 202, response.content


def test_the_api_reference_feedback_example_is_accepted(api):
    script = code_block(ROOT / "docs" / "api.md", section="## Feedback", language="sh")
    events = orjson.loads(re.search(r"-d '(.*?)'", script, re.S).group(1))
    assert {"external_id", "signal", "occurred_at"} <= events[0].keys()
    response = api.post("/api/v1/feedback", data=events, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["accepted"] == len(events)
