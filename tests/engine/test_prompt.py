"""Prompt building: the model's Jinja template (sandboxed) or a plain transcript."""
from __future__ import annotations

import pytest

from quantdesk.core.engine.chat_template import RENDER_MEMORY_BYTES, RENDER_SECONDS
from quantdesk.core.engine.prompt import (FALLBACK_STOP, TemplateError, chat_template_prompt,
                                          completion_prompt)

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
          "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Capital of France?"}]


def test_chat_template_is_rendered_with_generation_prompt():
    p = chat_template_prompt(CHATML, CHAT, bos_token="<s>", eos_token="<|im_end|>")
    assert p.text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                      "<|im_start|>assistant\nHello!<|im_end|>\n"
                      "<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n")
    assert p.used_chat_template and p.stop == ["<|im_end|>"] and p.add_bos is False


def test_template_runs_sandboxed():
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ValueError, match="chat template rejected"):
        chat_template_prompt(evil, CHAT, bos_token="", eos_token="")


def test_template_errors_are_one_line():
    strict = "{{ raise_exception('Conversation roles must alternate\nuser/assistant') }}"
    with pytest.raises(ValueError) as info:
        chat_template_prompt(strict, CHAT, bos_token="", eos_token="")
    assert "roles must alternate user/assistant" in str(info.value)
    assert "\n" not in str(info.value)


def test_models_without_template_get_a_transcript():
    p = completion_prompt(CHAT)
    assert p.text == "Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Capital of France?\nAssistant:"
    assert not p.used_chat_template and p.add_bos and p.stop == FALLBACK_STOP


# -- hostile templates: the file is the attacker; each must end fast, small, with one line -------
HOSTILE = {
    "repeat": ("{{ 'x' * 1500000000 }}", "tried to make a repeated value"),
    "pad": ("{{ 'x'.ljust(10**10) }}", "ljust() text"),
    "center filter": ("{{ 'x'|center(10**10) }}", "center() text"),
    "format width": ("{{ '{:>1000000000}'.format('x') }}", "formatted text"),
    "printf width": ("{{ '%1000000000s' % 'x' }}", "%-formatted text"),
    "doubling ~": ("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                   "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "tried to make a text"),
    "doubling +": ("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                   "{% set ns.s = ns.s + ns.s %}{% endfor %}", "tried to make a value"),
    "list of refs": ("{% set b = 'x' * 3000000 %}{{ [b] * 100000 }}", "tried to make a text"),
    "join": ("{% set b = 'x' * 3000000 %}{{ ([b] * 1000)|join }}", "join filter"),
    "replace": ("{{ ('a' * 1000000).replace('a', 'b' * 1000) }}", "replaced text"),
    "indent": ("{{ ('\n' * 1000000)|indent(100000) }}", "indented text"),
    "tojson indent": ("{{ [1]|tojson(indent=10**9) }}", "JSON text"),
    "power": ("{% set n = 10 %}{{ n ** 100000000 }}", "a power of"),
    # 1,000 characters a step: the output cap is reached in milliseconds, well before the time
    # limit even on a loaded machine (one character a step reached it only under load).
    "output": ("{% for a in range(100000) %}{% for b in range(100000) %}{{ 'x' * 1000 }}"
               "{% endfor %}{% endfor %}", "a prompt of more than"),
    "nested loops": ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
                     "{% endfor %}", "took longer than"),
    "growing list": ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
                     "{% set ns.l = ns.l + [('x' * 3000000) ~ i] %}{% endfor %}", "MB of memory"),
    "recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
    "lipsum": ("{{ lipsum(10**9) }}", "'lipsum' is undefined"),
    "empty": ("", "empty prompt"),
    "syntax": ("{% for x in %}", "not valid Jinja (line 1:"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_template_is_stopped_with_one_line_naming_the_template(name):
    import time

    import psutil
    template, expected = HOSTILE[name]
    rss = psutil.Process().memory_info().rss
    start = time.monotonic()
    with pytest.raises(TemplateError) as info:
        chat_template_prompt(template, CHAT, bos_token="", eos_token="")
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert expected in message
    assert message.startswith("the model's chat template ") and "\n" not in message
    assert elapsed < RENDER_SECONDS + 1.0
    # The watchdog's budget is 256 MB; nothing here may keep more than that afterwards either.
    assert psutil.Process().memory_info().rss - rss < RENDER_MEMORY_BYTES


def test_limits_leave_ordinary_templates_alone():
    # The same text as before the limits, for a long conversation and a template that uses
    # loop controls, tojson, % and format, and the {% generation %} tag.
    template = ("{% for m in messages %}{% if loop.index0 > 50 %}{% break %}{% endif %}"
                "{{ m|tojson }}{% generation %}{{ '%s:%d ' % (m.role, loop.index) }}"
                "{% endgeneration %}{{ '{}|'.format(m.content) }}{% endfor %}")
    long_chat = CHAT * 10
    text = chat_template_prompt(template, long_chat, bos_token="", eos_token="").text
    assert text.startswith('{"role": "system", "content": "Be brief."}system:1 Be brief.|')
    assert text.count("|") == len(long_chat)
