"""A client generated from openapi.yaml by openapi-python-client, against a
running kchat: POST /messages on the producer, then GET /messages on the
consumer until the message comes back (README, "Generated clients").
Usage: python_check.py <producer base URL> <consumer base URL>"""

import sys
import time
import uuid

from kchat_rest_api_client import Client
from kchat_rest_api_client.api.messages import get_messages, post_message
from kchat_rest_api_client.models import GetMessagesType, MessageInput, MessageInputType, MessagesOutput, Queued

producer = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)
consumer = Client(base_url=sys.argv[2], raise_on_unexpected_status=True)

message_id = str(uuid.uuid4())
sent = post_message.sync_detailed(
    client=producer,
    body=MessageInput(session_id="generated-client", user_id="python", type_=MessageInputType.QUERY,
                      message="Does a generated client work?", message_id=message_id),
)
assert sent.status_code == 202, f"POST /messages: {sent.status_code} {sent.content!r}"
assert isinstance(sent.parsed, Queued) and sent.parsed.message_id == message_id, sent.parsed
print(f"POST /messages: 202, {message_id} at {sent.parsed.topic}[{sent.parsed.partition}]@{sent.parsed.offset}")

deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    page = get_messages.sync(client=consumer, type_=GetMessagesType.QUERY, limit=100, wait="2s")
    assert isinstance(page, MessagesOutput), f"GET /messages: {page!r}"
    for m in page.messages:
        if m.value and m.value.message_id == message_id:
            print(f"GET /messages: 200, got {message_id} back at offset {m.offset}")
            sys.exit(0)
sys.exit(f"GET /messages: {message_id} did not come back within 60 s")
