"""Storylines: Markdown files with YAML front matter, kept in ``cure/portal/storylines/``.

The front matter names the storyline's demonstration products (app, date, region, parameters);
fenced blocks whose info string starts with ``cure-`` place widgets among the text:

    ```cure-map
    product: heat
    ```

``cure-map`` (a product's raster), ``cure-chart`` (``kind``: ``histogram`` of the raster, or
``statistics`` with the ``fields`` of its statistics to compare) and ``cure-table`` (the
statistics of one or more ``products``). Everything else is CommonMark (with tables), rendered
without raw HTML.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

STORYLINES_DIR = Path(__file__).parent / "storylines"
WIDGETS = ("map", "chart", "table")
CHART_KINDS = ("histogram", "statistics")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class StorylineError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DemoProduct(_Strict):
    """A demonstration product: an order of ``app`` over ``region`` on ``date``, run on the demo
    data and published in the catalogue (``cure portal prepare``)."""

    app: str = Field(pattern=r"^[a-z0-9_]{1,63}$")
    title: str
    date: date
    region: tuple[float, float, float, float]  # WGS84 bbox: west, south, east, north
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("region")
    @classmethod
    def _box(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        west, south, east, north = value
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(
                "region must be west, south, east, north with west < east, south < north"
            )
        return value


class FrontMatter(_Strict):
    title: str
    summary: str
    city: str
    position: int = 100  # storylines are listed by position, then title
    products: dict[str, DemoProduct] = Field(min_length=1)


class Widget(_Strict):
    type: str
    product: str | None = None
    products: list[str] = Field(default_factory=list)
    kind: str | None = None
    fields: list[str] = Field(default_factory=list)
    caption: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "Widget":
        if self.type in ("map", "chart") and self.product is None:
            raise ValueError(f"a {self.type} names its product")
        if self.type == "chart" and self.kind not in CHART_KINDS:
            raise ValueError(f"a chart's kind is one of {', '.join(CHART_KINDS)}")
        if self.type == "chart" and self.kind == "statistics" and not self.fields:
            raise ValueError("a statistics chart names the fields it compares")
        if self.type == "table" and not self.products:
            raise ValueError("a table names its products")
        return self

    def product_names(self) -> list[str]:
        return [self.product] if self.product else list(self.products)


@dataclass(frozen=True)
class Storyline:
    slug: str
    front: FrontMatter
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def parse(slug: str, text: str) -> Storyline:
    """A storyline from its file's text; a StorylineError says what is wrong."""
    if not _SLUG.match(slug):
        raise StorylineError(f"{slug}: a storyline's file name is lowercase letters, digits, -")
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise StorylineError(f"{slug}: the file does not start with --- front matter ---")
    try:
        front = FrontMatter.model_validate(yaml.safe_load(match.group(1)) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise StorylineError(f"{slug}: front matter: {exc}") from exc
    markdown = _markdown()
    tokens = markdown.parse(text[match.end() :])
    blocks: list[dict[str, Any]] = []
    pending: list[Token] = []

    def flush() -> None:
        if pending:
            html = markdown.renderer.render(pending, markdown.options, {})
            blocks.append({"type": "html", "html": html})
            pending.clear()

    for token in tokens:
        kind = token.info.strip().removeprefix("cure-") if token.type == "fence" else ""
        if token.type == "fence" and token.info.strip().startswith("cure-"):
            flush()
            blocks.append(_widget(slug, front, kind, token.content))
        else:
            pending.append(token)
    flush()
    return Storyline(slug=slug, front=front, blocks=blocks)


def _widget(slug: str, front: FrontMatter, kind: str, content: str) -> dict[str, Any]:
    if kind not in WIDGETS:
        raise StorylineError(f"{slug}: unknown widget cure-{kind}; use one of {WIDGETS}")
    try:
        widget = Widget.model_validate({"type": kind, **(yaml.safe_load(content) or {})})
    except (yaml.YAMLError, ValidationError, TypeError) as exc:
        raise StorylineError(f"{slug}: cure-{kind}: {exc}") from exc
    unknown = [name for name in widget.product_names() if name not in front.products]
    if unknown:
        raise StorylineError(
            f"{slug}: cure-{kind} names products not in the front matter: {unknown}"
        )
    return widget.model_dump(exclude_none=True, exclude_defaults=False)


@lru_cache(maxsize=8)
def _load(folder: Path, stamp: tuple[tuple[str, float], ...]) -> tuple[Storyline, ...]:
    stories = [
        parse(path.stem, path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.md"))
    ]
    return tuple(sorted(stories, key=lambda s: (s.front.position, s.front.title)))


def load_all(folder: Path = STORYLINES_DIR) -> tuple[Storyline, ...]:
    """Every storyline in the folder, in their order; read again when a file changes."""
    stamp = tuple((p.name, p.stat().st_mtime) for p in sorted(folder.glob("*.md")))
    return _load(folder, stamp)
