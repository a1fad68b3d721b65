"""``python -m bsync.sandbox [--seed demo|empty] [--port-base N]``: serve every emulator.

Prints one JSON line with each API's base URL (SPEC §7) and serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from bsync.sandbox import Sandbox
from bsync.sandbox.seed import DEMO_TIMEZONE, seed_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bsync.sandbox", description=__doc__)
    parser.add_argument("--seed", choices=("demo", "empty"), default="demo",
                        help="demo: sample bookings in the Notion database; empty: no pages")
    parser.add_argument("--port-base", type=int, default=None,
                        help="listen on N (Notion), N+1 (Google), N+2 (Cal.com), N+3 (SendGrid), "
                             "N+4 (Twilio); default: free ports")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Sandbox(args.host, args.port_base) as sandbox:
        if args.seed == "demo":
            seed_demo(sandbox.notion, datetime.now(ZoneInfo(DEMO_TIMEZONE)).date())
        print(json.dumps(sandbox.describe()), flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
