"""mkdocs hook: the settings tables of docs/api/settings.md, generated from the declarations
(surfrec.settings.declare.setting) at build time, so the page cannot drift from the code."""

from __future__ import annotations

MARKER = "<!-- settings tables -->"


def _row(field, s) -> str:
    from surfrec.settings.declare import _default_text

    valid = f"one of {', '.join(s.choices)}" if s.choices else s.range.describe() if s.range else ""
    flag = f"`{s.flag}`" if s.flag else ""
    text = s.help.replace("|", "\\|")
    return f"| `{field.name}` | `{_default_text(field)}` | {valid} | {flag} | {text} |"


def tables() -> str:
    from surfrec.settings import FitConfig, InputConfig, MeshConfig, ModelConfig, RefineConfig, SupportConfig, SurfaceConfig
    from surfrec.settings.declare import declared

    out = []
    for cls, stage in ((InputConfig, "input"), (FitConfig, "fit"), (ModelConfig, "fit.model"), (MeshConfig, "mesh"),
                       (RefineConfig, "mesh.refine_config"), (SurfaceConfig, "mesh.surface_config"),
                       (SupportConfig, "mesh.surface_config.support")):
        out.append(f"## `{cls.__name__}` (`{stage}`)\n\n{cls.__doc__.split(chr(10) + chr(10))[0]}\n")
        out.append("| setting | default | valid | option | what it does |\n|---|---|---|---|---|")
        out += [_row(f, s) for f, s in declared(cls)]
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(MARKER, tables()) if MARKER in markdown else markdown
