"""Prompt building: the model's Jinja template (sandboxed) or a plain transcript."""
from __future__ import annotations

import pytest

from quantdesk.core.engine.prompt import FALLBACK_STOP, chat_template_prompt, completion_prompt

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
