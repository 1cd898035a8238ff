"""LangChain against a ``twist``-started gateway: langchain-google-genai (Gemini API) and langchain-openai (chat completions).

Each: a plain answer, a bound tool whose call LangChain parses into
``tool_calls`` (and a second turn with the ToolMessage), and
``with_structured_output`` of a pydantic model, which pydantic validates.
"""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
    """Get the current weather for a city."""
    return f"sunny in {city}"


class Trip(BaseModel):
    """A short trip plan."""

    city: str = Field(description="Where to go")
    days: int = Field(ge=1, le=14)
    sights: list[str] = Field(min_length=1)
    budget: Literal["low", "medium", "high"]


def google(gw: ClientStack):
    from langchain_google_genai import ChatGoogleGenerativeAI

    return ChatGoogleGenerativeAI(model="gemini-3-flash", google_api_key="test-key", base_url=gw.url, max_retries=1, timeout=30)


def openai_chat(gw: ClientStack):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gemini-3-flash", base_url=f"{gw.url}/v1", api_key="test-key", use_responses_api=False,
                      max_retries=0, timeout=30)


MODELS = [pytest.param(google, id="google-genai"), pytest.param(openai_chat, id="openai-chat")]


@pytest.mark.parametrize("make", MODELS)
def test_plain_and_streamed(gw: ClientStack, make) -> None:
    chat = make(gw)
    assert chat.invoke("Hello LangChain").text == "Echo: Hello LangChain"
    assert "".join(chunk.text for chunk in chat.stream("Stream LangChain")) == "Echo: Stream LangChain"


@pytest.mark.parametrize("make", MODELS)
def test_tool_call_and_result(gw: ClientStack, make) -> None:
    chat = make(gw).bind_tools([get_weather])
    question = HumanMessage("What is the weather in Oslo?")
    first = chat.invoke([question])
    assert [c["name"] for c in first.tool_calls] == ["get_weather"]
    args = first.tool_calls[0]["args"]
    assert args == {"city": "Oslo", "unit": "celsius"}
    result = get_weather.invoke(args)
    second = chat.invoke([question, first, ToolMessage(result, tool_call_id=first.tool_calls[0]["id"])])
    assert not second.tool_calls and "sunny in Oslo" in second.text


@pytest.mark.parametrize("make", MODELS)
def test_structured_output_with_pydantic(gw: ClientStack, make) -> None:
    trip = make(gw).with_structured_output(Trip).invoke("Plan 4 days in Kyoto on a low budget")
    assert isinstance(trip, Trip)
    assert trip.city == "Kyoto" and trip.days == 4 and trip.budget == "low" and trip.sights


@pytest.mark.parametrize("make", MODELS)
def test_structured_output_through_a_forced_tool(gw: ClientStack, make) -> None:
    """``method="function_calling"``: a forced tool call (mode ANY) whose arguments pydantic validates."""
    trip = make(gw).with_structured_output(Trip, method="function_calling").invoke("Plan 2 days in Rome on a high budget")
    assert isinstance(trip, Trip) and trip.city == "Rome" and trip.days == 2 and trip.budget == "high"
    config = gw.requests("generateContent")[-1]["body"]["request"]["toolConfig"]["functionCallingConfig"]
    assert config["mode"] == "ANY"
