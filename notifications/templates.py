"""The notice templates: one Jinja2 file per (notice, locale), checked at load.

Each notice (``deadline_warning``, ``claim_accepted``, …) has a plain-text template per
locale, ``templates/<notice>.<locale>.txt.j2``, with two blocks::

    {% block subject %}…{% endblock %}
    {% block body %}…{% endblock %}

The subject and the body are rendered separately from the notice's context; the HTML
version of a message is the layout ``templates/_email.html.j2`` (autoescaped) wrapped
around the rendered subject and body.

An app overrides any template, the layout included, by putting a file of the same name in
one of its folders and passing them as ``override_dirs``: those are searched first, the
built-in folder last.

Everything that can be checked is checked when the :class:`TemplateSet` is built, and
every problem found is listed in one :class:`~notifications.message.NotificationConfigError`:
a template that is missing, does not parse, lacks a block, or uses a variable its notice
does not provide. At render time only the context can be wrong: a value the template
needs and the context lacks raises :class:`jinja2.UndefinedError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from baoflow.engine import format_due, format_duration, format_when
from baoflow.notifications.message import NotificationConfigError, NotificationError
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)

#: The built-in templates.
BUILTIN_DIR = Path(__file__).parent / "templates"

#: The HTML layout around a rendered subject and body (autoescaped).
LAYOUT = "_email.html.j2"

#: What the layout receives.
LAYOUT_FIELDS = frozenset({"subject", "body", "locale"})

#: The blocks every notice template defines.
BLOCKS = ("subject", "body")

#: The locale every notice must have, and the default of :meth:`TemplateSet.render`.
PRIMARY_LOCALE = "zh-CN"

#: Top-level statements a block rendered on its own never sees.
_OUTSIDE_BLOCKS = (nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.Import, nodes.FromImport)


def _duration(seconds: float, locale: str = PRIMARY_LOCALE) -> str:
    return format_duration(seconds, locale=locale)


class Rendered(NamedTuple):
    """One notice rendered for one locale: a one-line subject, the plain text, and the
    HTML version (the layout around both, autoescaped)."""

    subject: str
    text: str
    html: str


class UnknownTemplate(NotificationError, KeyError):
    """:meth:`TemplateSet.render` was asked for a notice or a locale the set was not
    built with. A ``KeyError`` too, so ``except KeyError`` catches it."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would show the message's repr
        return self.message


def template_name(notice: str, locale: str) -> str:
    """The file name of ``notice``'s template in ``locale``, e.g.
    ``deadline_warning.zh-CN.txt.j2``."""
    return f"{notice}.{locale}.txt.j2"


class TemplateSet:
    """The templates of a set of notices in a set of locales, all loaded and checked
    when it is built.

    Args:
        fields: for each notice, the names of the context values its templates may use
            (``Engine.notice_fields()``: the deadlines' and every registered
            workflow's notices).
        override_dirs: an app's template folders, searched in order before the built-in
            one: a file there replaces the built-in file of the same name.
        locales: the locales every notice must have a template in. ``zh-CN`` is always
            required, whether listed or not.

    Raises:
        NotificationConfigError: listing every problem found: a folder in
            ``override_dirs`` that does not exist, a template that is missing, does not
            parse, lacks the ``subject`` or ``body`` block, defines something outside
            its blocks, or uses a variable its notice does not provide; a missing or
            broken HTML layout.
    """

    def __init__(
        self,
        fields: Mapping[str, Iterable[str]],
        *,
        override_dirs: Sequence[Path | str] = (),
        locales: Sequence[str] = (PRIMARY_LOCALE, "en"),
    ) -> None:
        overrides = [Path(d) for d in override_dirs]
        self._searched = [*overrides, BUILTIN_DIR]
        self._fields = {notice: frozenset(names) for notice, names in fields.items()}
        self._locales = tuple(dict.fromkeys([PRIMARY_LOCALE, *locales]))
        self._env = Environment(
            loader=ChoiceLoader(
                [FileSystemLoader(overrides), FileSystemLoader(BUILTIN_DIR)],
            ),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        # How times read to a person, the same as in the CLI and the case history:
        # ``{{ late_seconds | duration }}`` (``duration("en")``), ``{{ at | when }}``.
        self._env.filters.update(duration=_duration, when=format_when, due=format_due)
        problems = [f"override folder {d} does not exist" for d in overrides if not d.is_dir()]
        self._templates: dict[tuple[str, str], Template] = {}
        for notice in sorted(self._fields):
            for locale in self._locales:
                name = template_name(notice, locale)
                tpl = self._load(name, self._fields[notice], notice, problems)
                if tpl is not None:
                    self._templates[notice, locale] = tpl
        layout = self._load(LAYOUT, LAYOUT_FIELDS, None, problems)
        if problems:
            raise NotificationConfigError("the notice templates", problems)
        assert layout is not None  # no problems: it loaded
        self._layout = layout

    def notices(self) -> list[str]:
        """The notices this set renders, sorted."""
        return sorted(self._fields)

    @property
    def locales(self) -> tuple[str, ...]:
        """The locales every notice has a template in, ``zh-CN`` first."""
        return self._locales

    def render(
        self, notice: str, context: Mapping[str, Any], *, locale: str = PRIMARY_LOCALE
    ) -> Rendered:
        """Render ``notice`` in ``locale`` from ``context``.

        The subject is stripped and collapsed to one line; the text is stripped of
        surrounding whitespace; the HTML is the layout around both.

        Raises:
            UnknownTemplate: the set has no such notice or locale (a ``KeyError``).
            jinja2.UndefinedError: the template needs a value ``context`` lacks.
        """
        tpl = self._templates.get((notice, locale))
        if tpl is None:
            if notice not in self._fields:
                raise UnknownTemplate(
                    f"no notice {notice!r}; the notices are: {', '.join(self.notices())}"
                )
            raise UnknownTemplate(
                f"notice {notice!r} has no locale {locale!r}; "
                f"the locales are: {', '.join(self._locales)}"
            )
        values = dict(context)
        subject = " ".join(self._block(tpl, "subject", values).split())
        text = self._block(tpl, "body", values).strip()
        html = self._layout.render(subject=subject, body=text, locale=locale)
        return Rendered(subject, text, html)

    @staticmethod
    def _block(tpl: Template, block: str, values: dict[str, Any]) -> str:
        return "".join(tpl.blocks[block](tpl.new_context(values)))

    def _load(
        self, name: str, allowed: frozenset[str], notice: str | None, problems: list[str]
    ) -> Template | None:
        """Load and check the template ``name``; append what is wrong with it to
        ``problems`` and return ``None`` if anything is."""
        env = self._env
        assert env.loader is not None
        try:
            source, filename, _ = env.loader.get_source(env, name)
            tpl = env.get_template(name)
        except TemplateNotFound:
            looked = ", ".join(str(d) for d in self._searched)
            problems.append(f"{name} is missing (looked in: {looked})")
            return None
        except TemplateSyntaxError as e:
            where = e.filename or name
            problems.append(f"{name} does not parse: {where}, line {e.lineno}: {e.message}")
            return None
        where = filename or name
        found = len(problems)
        ast = env.parse(source, name, filename)
        if notice is not None:
            for block in BLOCKS:
                if block not in tpl.blocks:
                    problems.append(
                        f"{name} has no block {block!r} ({where}); a notice template defines "
                        "{% block subject %}…{% endblock %} and {% block body %}…{% endblock %}"
                    )
            for node in ast.body:
                if isinstance(node, _OUTSIDE_BLOCKS):
                    problems.append(
                        f"{name} line {node.lineno}: defines something outside the blocks, "
                        "which the subject and body never see (only the blocks are rendered); "
                        "move it into the block that uses it"
                    )
        used = meta.find_undeclared_variables(ast) - set(env.globals)
        for var in sorted(used - allowed):
            provides = ", ".join(sorted(allowed))
            if notice is None:
                problems.append(
                    f"{name} uses {var!r}, which the layout does not receive "
                    f"(it receives: {provides})"
                )
            else:
                problems.append(
                    f"{name} uses {var!r}, which the notice {notice} does not provide "
                    f"(it provides: {provides})"
                )
        return tpl if len(problems) == found else None
