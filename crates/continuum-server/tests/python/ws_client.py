"""A WebSocket client written with the `websockets` library, as a Python agent would follow a
tenant's events: prints every JSON message on a line of its own until the event at position
UNTIL arrives. A refused handshake prints `REFUSED <status>`.

usage: ws_client.py URL KEY UNTIL header|first-message
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def main(url: str, key: str, until: int, mode: str) -> None:
    headers = {"X-API-Key": key} if mode == "header" else None
    try:
        async with connect(url, additional_headers=headers, open_timeout=20) as ws:
            if mode == "first-message":
                await ws.send(json.dumps({"type": "auth", "key": key}))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                print(json.dumps(message), flush=True)
                if message.get("seq") == until:
                    return
    except InvalidStatus as e:
        print(f"REFUSED {e.response.status_code}", flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
