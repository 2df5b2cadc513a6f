"""Does a model's chat template compile? `template_problem(text) -> None | one line`.

llama-cpp-python compiles `tokenizer.chat_template` with jinja2 when it loads the model; a
template with a syntax error then surfaces as a bare "unexpected '}'". Checked here the way it
compiles it (an immutable sandbox, trim/lstrip blocks, loop controls, Hugging Face's
`{% generation %}` tag), so `quantdesk inspect` can say whose template it is before any load.
Compiling only: rendering (and its time and size limits) is the engine host's business.
"""
from __future__ import annotations

from quantdesk.core.text import shown


def template_problem(template: str | None) -> str | None:
    """None when `template` is absent or compiles; else one line starting "the model's chat
    template": a syntax error with its line, or a nesting too deep to compile."""
    if not template:
        return None
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):   # llama-cpp-python's IgnoreGenerationTags, the same rule
        tags = {"generation"}

        def parse(self, parser):
            parser.stream.skip(1)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True,
                                        lstrip_blocks=True, extensions=[GenerationTag, loopcontrols])
    try:
        env.from_string(template)
    except jinja2.TemplateSyntaxError as exc:
        return (f"the model's chat template has a syntax error on line {exc.lineno}: "
                f"{shown(exc.message or 'invalid syntax', 160)}")
    except (RecursionError, MemoryError):
        return "the model's chat template is nested too deeply to compile"
    except jinja2.TemplateError as exc:
        return f"the model's chat template cannot be compiled: {shown(str(exc), 160)}"
    return None
