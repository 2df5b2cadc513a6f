"""Request bodies of the three generation endpoints, validated by pydantic. Unknown fields are
ignored (clients send many we do not use); the fields we use are checked strictly, so a bad value
is a 400 naming the field, never a 500.

The context size of the load is a Quantdesk extension field, `n_ctx`, in any of the bodies (with
the OpenAI client: extra_body={"n_ctx": 8192}); without it the server's default context is used.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP = 16


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    n_ctx: int | None = Field(default=None, ge=64)
    # llama.cpp's option (chat and messages): "none" keeps a model's reasoning inline
    reasoning_format: Literal["auto", "deepseek", "none"] | None = None
    # more chat-template variables (llama.cpp's and vLLM's option): {"enable_thinking": false}
    chat_template_kwargs: dict[str, Any] | None = None


def _stop_list(value) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    if len(items) > MAX_STOP:
        raise ValueError(f"at most {MAX_STOP} stop sequences")
    if any(not s for s in items):
        raise ValueError("stop sequences must not be empty")
    return items


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    image_url: dict[str, Any] | str | None = None    # {"url": "data:image/png;base64,..."}


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    arguments: str = "{}"


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = ""
    type: str = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = "function"
    function: FunctionSpec | None = None


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=1)
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("stop")
    @classmethod
    def _stop(cls, v):
        return _stop_list(v)


class CompletionRequest(_Body):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)   # OpenAI's default for this endpoint
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=1)
    echo: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("stop")
    @classmethod
    def _stop(cls, v):
        return _stop_list(v)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v):
        if isinstance(v, list):
            if len(v) != 1:
                raise ValueError("exactly one prompt per request")
            return v[0]
        return v


class AnthropicBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    source: dict[str, Any] | None = None        # image: {type: base64, media_type, data}
    id: str | None = None                       # tool_use
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None              # tool_result
    content: str | list[dict[str, Any]] | None = None


class AnthropicTool(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["user", "assistant"]
    content: str | list[AnthropicBlock]


class MessagesRequest(_Body):
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)                       # required by the Anthropic API
    system: str | list[AnthropicBlock] | None = None
    stop_sequences: list[str] | None = None
    top_k: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None      # {"type": "enabled" | "disabled", ...}

    @field_validator("stop_sequences")
    @classmethod
    def _stop(cls, v):
        return _stop_list(v)


def text_of(content, where: str, images: bool = False):
    """The text of a message's content: a string, or text parts joined. Anything else (audio,
    tool blocks) is refused by name: we never drop part of what the caller sent. images: a
    user message's image_url parts are kept: then the content is the engine's list of parts
    (core.engine.images reads the data: URLs and refuses other URLs)."""
    from .errors import ApiError
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts, parts = [], []
    for j, part in enumerate(content):
        if images and part.type == "image_url":
            if part.image_url is None:
                raise ApiError(400, f"{where}.{j}: image_url has no url", param=where)
            parts.append({"type": "image_url", "image_url": part.image_url})
            continue
        if part.type != "text" or part.text is None:
            raise ApiError(400, f"{where}: content of type {part.type!r} is not supported "
                                f"(text{' and image_url' if images else ' only'})", param=where)
        texts.append(part.text)
        parts.append({"type": "text", "text": part.text})
    if any(p["type"] == "image_url" for p in parts):
        return parts
    return "".join(texts)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    n_ctx: int | None = Field(default=None, ge=64)
