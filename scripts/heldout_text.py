#!/usr/bin/python3
"""Writes the held-out text of the bundled model (examples/rwkvc-tiny.pth): the last 2% of the
corpus scripts/train_tiny.py trained it on (the Python 3.11 documentation's reStructuredText
sources from Debian's python3.11-doc, printable ASCII and newlines, files joined by blank lines),
which training never saw. The same bytes as train_tiny.py's `val`, without torch.

    scripts/heldout_text.py OUT      # 220,958 bytes
"""
import glob
import sys

DATA_GLOB = "/usr/share/doc/python3.11/html/_sources/**/*.rst.txt"


def heldout(pattern=DATA_GLOB):
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        sys.exit("heldout_text.py: no files match %s (apt-get install python3.11-doc)" % pattern)
    keep = bytes(c for c in range(256) if c == 10 or 32 <= c < 127)
    drop = bytes(c for c in range(256) if c not in keep)
    data = b"\n\n".join(open(f, "rb").read().translate(None, drop) for f in files)
    nval = max(len(data) // 50, 20000)  # as train_tiny.py
    return data[-nval:]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    text = heldout()
    with open(sys.argv[1], "wb") as f:
        f.write(text)
    print("%s: %d bytes" % (sys.argv[1], len(text)))
