"""A scripted OpenAI/Moonshot-compatible model server for tests (standard library only)."""

from tests.fake_llm.competent import CompetentModel
from tests.fake_llm.recorded import RecordedRequest
from tests.fake_llm.script import Fault, Reply, ToolCall, replies_from_json
from tests.fake_llm.server import SCRIPT_EXHAUSTED, FakeLLM, UploadedFile

__all__ = [
    "SCRIPT_EXHAUSTED",
    "CompetentModel",
    "FakeLLM",
    "Fault",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "UploadedFile",
    "replies_from_json",
]
