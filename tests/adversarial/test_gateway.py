"""Attacks on the worker's model gateway and egress proxy from inside a DevBox: the
sockets are DevBox-reachable, so every byte sent to them is hostile."""

from __future__ import annotations

from tests.adversarial.test_control_channel import execs
from tests.integration.harness import FerryStack

GW = "/ferry/gateway/model.sock"
PY = "python3 -I -c"


def test_the_gateway_sockets_refuse_forged_tokens_garbage_and_floods(astack: FerryStack) -> None:
    raw_proxy = (
        "import socket,sys\n"
        "def ask(data):\n"
        "    s=socket.socket(socket.AF_UNIX); s.connect('/ferry/gateway/egress.sock')\n"
        "    s.sendall(data); s.shutdown(socket.SHUT_WR)\n"
        "    out=s.recv(200); print(out.split(b'\\r\\n')[0].decode() or 'closed')\n"
        "ask(b'GARBAGE\\r\\n\\r\\n')\n"
        "ask(b'CONNECT x:1 HTTP/1.1\\r\\n' + b'X: ' + b'a'*200000 + b'\\r\\n\\r\\n')\n"
        "ask(b'CONNECT 127.0.0.1:22 HTTP/1.1\\r\\nProxy-Authorization: Basic !!!\\r\\n\\r\\n')\n"
    )
    script = "\n".join([
        # A forged or absent token: 401, whoever asks and however.
        f"curl -sS --unix-socket {GW} -o /dev/null -w '%{{http_code}}\\n' "
        "-H 'x-api-key: ferry-turn-forged' -d '{}' http://x/anthropic/v1/messages",
        f"curl -sS --unix-socket {GW} -o /dev/null -w '%{{http_code}}\\n' "
        "-H 'authorization: Bearer sk-whatever' -d '{}' http://x/openai/v1/responses",
        # A 40 MB body with this turn's own token: refused without being buffered.
        f"head -c 40000000 /dev/zero | curl -sS --unix-socket {GW} -o /dev/null "
        "-w '%{http_code}\\n' -H \"x-api-key: $FERRY_GATEWAY_TOKEN\" --data-binary @- "
        "http://x/anthropic/v1/messages",
        # Paths outside the two upstreams do not exist.
        f"curl -sS --unix-socket {GW} -o /dev/null -w '%{{http_code}}\\n' "
        "-H \"x-api-key: $FERRY_GATEWAY_TOKEN\" http://x/../../etc/passwd",
        f"{PY} \"$(printf '%s' '{raw_proxy.replace(chr(39), chr(39) + chr(92) + chr(39) + chr(39))}')\"",
        # The sockets are the worker's: the DevBox cannot replace them.
        "rm -f /ferry/gateway/model.sock 2>/dev/null || echo refused-rm",
    ])
    run = astack.create_run(script)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done
    out = [e["output_excerpt"].strip().splitlines() for e in execs(astack, run["id"])]
    assert out[0][-1] == "401" and out[1][-1] == "401"
    assert out[2][-1] == "413"
    assert out[3][-1] == "404"
    assert out[4] == ["HTTP/1.1 400 Bad Request", "closed",
                      "HTTP/1.1 407 Proxy Authentication Required"]
    assert out[5][-1] == "refused-rm"
    # The gateway still serves honest requests after all that.
    again = astack.create_run(
        f"curl -sS --unix-socket {GW} -o /dev/null -w '%{{http_code}}\\n' -d '{{}}' "
        "-H 'x-api-key: nope' http://x/anthropic/v1/messages")
    done = astack.wait_status(again["id"], {"completed", "failed"}, timeout=120)
    assert execs(astack, again["id"])[0]["output_excerpt"].strip() == "401"
