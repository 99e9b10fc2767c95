"""A stand-in browser for sign-in tests: fetches the address it is given and follows the redirects, as a
browser whose user approves at once would (kimicode runs it as $BROWSER)."""

import sys
import urllib.request

if __name__ == "__main__":
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy
    with opener.open(sys.argv[1], timeout=30) as response:
        sys.exit(0 if response.status == 200 else 1)
