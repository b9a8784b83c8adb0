"""CC^L against a fake OpenAI-compatible endpoint on 127.0.0.1: good, malformed and slow answers."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ovss.concepts import LLMClient, LLMSource, contrastive_concepts, parse_concept_list, parse_yes_no
from ovss.errors import OvssError


class FakeLLM:
    """Answers with ``self.reply`` (text content), or raw ``self.body``, after ``self.delay`` s."""

    def __init__(self):
        self.reply, self.body, self.delay, self.status = "", None, 0.0, 200
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                size = int(self.headers["Content-Length"])
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                      "json": json.loads(self.rfile.read(size))})
                time.sleep(fake.delay)
                body = fake.body if fake.body is not None else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": fake.reply}}]}).encode()
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.close()


def cached(folder):
    return sorted(folder.glob("*.json"))


def test_good_answer_is_parsed_sent_right_and_cached(llm, tmp_path):
    llm.reply = 'Answer: ["water", "dock", "sky", "water"]'
    client = LLMClient(llm.url, "mixtral", api_key="k", timeout=5, cache_dir=tmp_path)
    assert client.contrastive_concepts("boat") == ["water", "dock", "sky"]
    sent = llm.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer k"
    assert sent["json"]["model"] == "mixtral"
    prompt = sent["json"]["messages"][0]["content"]
    assert "surrounding the input object boat without any synonym" in prompt and "{q}" not in prompt
    [entry] = cached(tmp_path)
    assert json.loads(entry.read_text())["answer"] == llm.reply
    # asked again: from the cache, the server is not called
    llm.reply = '["something else"]'
    assert client.contrastive_concepts("boat") == ["water", "dock", "sky"]
    assert len(llm.requests) == 1
    # another model or endpoint is another cache key
    assert LLMClient(llm.url, "other", timeout=5, cache_dir=tmp_path).contrastive_concepts("boat") == ["something else"]
    assert len(cached(tmp_path)) == 2


def test_malformed_answer_is_a_clear_error_and_not_cached(llm, tmp_path):
    client = LLMClient(llm.url, "m", timeout=5, cache_dir=tmp_path)
    llm.reply = "I am sorry, but I cannot help you with that request today."
    with pytest.raises(OvssError, match="malformed LLM answer for 'boat'.*nothing was cached"):
        client.contrastive_concepts("boat")
    assert cached(tmp_path) == []
    llm.body = b"<html>gateway error</html>"
    with pytest.raises(OvssError, match="malformed response"):
        client.contrastive_concepts("boat")
    assert cached(tmp_path) == []
    llm.body, llm.status = b'{"error": "no such model"}', 404
    with pytest.raises(OvssError, match="HTTP 404"):
        client.contrastive_concepts("boat")
    assert cached(tmp_path) == []
    # the next good answer is used and cached
    llm.body, llm.status, llm.reply = None, 200, "water, sky"
    assert client.contrastive_concepts("boat") == ["water", "sky"]
    assert len(cached(tmp_path)) == 1


def test_timeout_is_a_clear_error_and_not_cached(llm, tmp_path):
    llm.reply, llm.delay = '["water"]', 1.5
    client = LLMClient(llm.url, "m", timeout=0.3, cache_dir=tmp_path)
    start = time.monotonic()
    with pytest.raises(OvssError, match=r"did not answer within 0.3 s"):
        client.contrastive_concepts("boat")
    assert time.monotonic() - start < 1.4
    assert cached(tmp_path) == []


def test_unreachable_endpoint_and_bad_settings(tmp_path):
    with pytest.raises(OvssError, match="cannot reach LLM endpoint"):
        LLMClient("http://127.0.0.1:9/v1", "m", timeout=2, cache_dir=tmp_path).contrastive_concepts("boat")
    with pytest.raises(OvssError, match="http"):
        LLMClient("localhost:8000", "m")
    with pytest.raises(OvssError, match="model"):
        LLMClient("http://localhost:8000/v1", "")


def test_llm_source_and_visibility_filter(llm, tmp_path):
    client = LLMClient(llm.url + "/chat/completions", "m", timeout=5, cache_dir=tmp_path)
    llm.reply = "1. Water\n2. Boat\n3. Pier"
    cc = contrastive_concepts("boat", LLMSource(client))
    assert cc.concepts == ["water", "pier", "background"]
    assert llm.requests[0]["path"] == "/v1/chat/completions"
    llm.reply = "No."
    assert client.is_visible("liberty") is False
    llm.reply = "Maybe, it depends."
    with pytest.raises(OvssError, match="expected yes or no"):
        client.is_visible("fog")


@pytest.mark.parametrize("answer,words", [
    ('["bottle", "knife", "table"]', ["bottle", "knife", "table"]),
    ("['bottle', 'knife']", ["bottle", "knife"]),
    ('```json\n{"objects": ["Bottle", "Knife"]}\n```', ["bottle", "knife"]),
    ("- bottle\n- knife\n* table\n\u2022 napkin", ["bottle", "knife", "table", "napkin"]),
    ("1. bottle\n2) knife\n3. table.", ["bottle", "knife", "table"]),
    ("Here are some objects: bottle, knife, and bread.", ["bottle", "knife", "bread"]),
    ("- bottle: often on a table\n- knife: next to the fork", ["bottle", "knife"]),
    ('"bottle", "knife"', ["bottle", "knife"]),
    ("[bottle, knife, table]", ["bottle", "knife", "table"]),
    ("<think>the user wants words</think>bottle, knife", ["bottle", "knife"]),
    ("dining table; wine glass", ["dining table", "wine glass"]),
])
def test_parse_concept_list(answer, words):
    assert parse_concept_list(answer) == words


@pytest.mark.parametrize("answer", ["", "   ", "I cannot do that because it is against my rules.", "[]", "1. \n2. "])
def test_parse_concept_list_rejects_non_lists(answer):
    with pytest.raises(OvssError, match="malformed"):
        parse_concept_list(answer)


def test_parse_yes_no():
    assert parse_yes_no("Yes") is True and parse_yes_no(" no, it is abstract") is False
    with pytest.raises(OvssError):
        parse_yes_no("yeah")
